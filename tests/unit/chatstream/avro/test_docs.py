from __future__ import annotations

from typing import Any

import pytest

from chatstream.avro import docs
from chatstream.avro.catalog import load_catalog


def test_events_md_is_up_to_date() -> None:
    """docs/events.md is generated; run `chatstream schemas docs` after changing a schema."""
    assert docs.DOCS_PATH.read_text() == docs.render(load_catalog())


def test_every_field_of_every_contract_is_documented() -> None:
    text = docs.render(load_catalog())
    for contract in load_catalog().values():
        assert f"## {contract.topic}" in text
        for field in contract.schema["fields"]:
            assert f"| `{field['name']}` |" in text


@pytest.mark.parametrize(
    ("avro_type", "name"),
    [
        ("string", "string"),
        (["null", "string"], "string?"),
        (["null", "string", "int"], "string | int | null"),
        ({"type": "long", "logicalType": "timestamp-millis"}, "long (timestamp-millis)"),
        ({"type": "array", "items": "string"}, "array<string>"),
        ({"type": "map", "values": "string"}, "map<string, string>"),
        ({"type": "enum", "name": "E", "symbols": ["A"]}, "enum E"),
        ({"type": "record", "name": "R", "fields": []}, "[R](#r)"),
    ],
)
def test_type_names(avro_type: Any, name: str) -> None:
    assert docs.type_name(avro_type) == name
