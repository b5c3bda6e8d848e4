"""``docs/events.md``, generated from the ``.avsc`` files (a test fails when it is stale)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chatstream.avro.catalog import Contract
from chatstream.settings import REPO_ROOT

DOCS_PATH = REPO_ROOT / "docs" / "events.md"

HEADER = """# Events

Generated from `schemas/avro/*.avsc` by `chatstream schemas docs`; do not edit by hand.

Every value is Avro in Confluent's wire format (magic byte 0, 4-byte schema id, Avro binary),
its schema registered under the subject `<topic>-value`; keys are UTF-8 strings. Evolution is
BACKWARD_TRANSITIVE. A type written `T?` is the nullable union `["null", T]` with default null.
"""


def type_name(avro_type: Any) -> str:
    """A short human name for an Avro type."""
    if isinstance(avro_type, str):
        return avro_type
    if isinstance(avro_type, list):
        others = [t for t in avro_type if t != "null"]
        inner = " | ".join(type_name(t) for t in others)
        return f"{inner}?" if "null" in avro_type and len(others) == 1 else f"{inner} | null"
    kind = avro_type["type"]
    if "logicalType" in avro_type:
        return f"{kind} ({avro_type['logicalType']})"
    if kind == "array":
        return f"array<{type_name(avro_type['items'])}>"
    if kind == "map":
        return f"map<string, {type_name(avro_type['values'])}>"
    if kind == "enum":
        return f"enum {avro_type['name']}"
    if kind == "record":
        return f"[{avro_type['name']}](#{avro_type['name'].lower()})"
    return str(kind)


def _named(avro_type: Any) -> list[dict[str, Any]]:
    """The records and enums defined inside ``avro_type``, outermost first."""
    if isinstance(avro_type, list):
        return [n for t in avro_type for n in _named(t)]
    if not isinstance(avro_type, dict):
        return []
    kind = avro_type.get("type")
    if kind == "record":
        return [avro_type] + [n for f in avro_type["fields"] for n in _named(f["type"])]
    if kind == "enum":
        return [avro_type]
    if kind == "array":
        return _named(avro_type["items"])
    if kind == "map":
        return _named(avro_type["values"])
    return []


def _default(field: dict[str, Any]) -> str:
    return f"`{json.dumps(field['default'])}`" if "default" in field else ""


def _record_table(record: dict[str, Any]) -> list[str]:
    lines = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for f in record["fields"]:
        doc = (f.get("doc") or "").replace("|", "\\|")
        lines.append(f"| `{f['name']}` | {type_name(f['type'])} | {_default(f)} | {doc} |")
    return lines


def render(catalog: dict[str, Contract]) -> str:
    out = [HEADER]
    out.append("| topic | value record | subject |")
    out.append("|---|---|---|")
    for c in catalog.values():
        out.append(f"| `{c.topic}` | [{c.schema['name']}](#{c.schema['name'].lower()}) | `{c.subject}` |")
    for c in catalog.values():
        named = _named(c.schema)
        out += ["", f"## {c.topic}", "", c.schema.get("doc", ""), ""]
        for item in named:
            if item is not c.schema:
                out.append("")
            out += [f"### {item['name']}", ""]
            if item["type"] == "enum":
                out.append("Symbols: " + ", ".join(f"`{s}`" for s in item["symbols"]))
                continue
            if item is not c.schema and item.get("doc"):
                out += [item["doc"], ""]
            out += _record_table(item)
    return "\n".join(out).rstrip() + "\n"


def write(catalog: dict[str, Contract], path: Path = DOCS_PATH) -> bool:
    """Write the docs; True when the file changed."""
    text = render(catalog)
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return True
