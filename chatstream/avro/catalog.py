"""The contracts on disk: ``schemas/avro/<topic>.avsc``, one per topic value.

Keys are plain strings (the ``conversation_id``), so no key schemas. Subjects follow Confluent's
TopicNameStrategy: ``<topic>-value``. Schemas are self-contained (no references) because Flink's
``avro-confluent`` format and ClickHouse's ``AvroConfluent`` read them without resolving any.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import SchemaParseException

from chatstream.avro.errors import ContractError
from chatstream.settings import REPO_ROOT

SCHEMA_DIR = REPO_ROOT / "schemas" / "avro"


@dataclass(frozen=True)
class Contract:
    """One topic's value schema."""

    topic: str
    path: Path
    schema: dict[str, Any]

    @property
    def subject(self) -> str:
        return f"{self.topic}-value"

    @property
    def canonical(self) -> str:
        """The schema text sent to the registry (compact JSON of the file)."""
        return json.dumps(self.schema, separators=(",", ":"))

    @property
    def record_name(self) -> str:
        return f"{self.schema.get('namespace', '')}.{self.schema['name']}".lstrip(".")


def load_contract(path: Path) -> Contract:
    """Read and validate one ``.avsc``; the topic is the file name without ``.avsc``."""
    try:
        schema = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ContractError(f"{path}: not readable JSON ({exc})") from exc
    try:
        fastavro.parse_schema(schema)
    except (SchemaParseException, ValueError, TypeError, KeyError) as exc:
        raise ContractError(f"{path}: not a valid Avro schema ({exc})") from exc
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise ContractError(f"{path}: a topic value schema must be a record")
    return Contract(topic=path.name.removesuffix(".avsc"), path=path, schema=schema)


def load_catalog(schema_dir: Path = SCHEMA_DIR) -> dict[str, Contract]:
    """Every contract in ``schema_dir``, by topic, in name order."""
    paths = sorted(schema_dir.glob("*.avsc"))
    if not paths:
        raise ContractError(f"no .avsc files in {schema_dir}")
    return {contract.topic: contract for contract in map(load_contract, paths)}
