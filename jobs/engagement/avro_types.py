"""Avro contracts as Flink SQL columns, and the projections the job reads.

Flink's ``avro-confluent`` format, given an explicit schema (``avro-confluent.schema``), requires
the table's row type to equal that schema converted by Flink (``AvroSchemaConverter``) and maps
fields by position. So the job never writes column lists by hand: it projects a contract onto the
fields it reads (``project``: a reader schema Avro resolves any writer version against, names and
namespaces kept so nested records still resolve), then derives the columns (``columns``) with
Flink's own mapping rules: nullable only through ``["null", T]`` unions (the only unions Flink's
Avro maps), ``timestamp-millis`` as ``TIMESTAMP(3)``, enums as ``STRING``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from jobs.engagement.errors import SchemaMappingError

_PRIMITIVES = {
    "string": "STRING",
    "long": "BIGINT",
    "int": "INT",
    "double": "DOUBLE",
    "float": "FLOAT",
    "boolean": "BOOLEAN",
    "bytes": "BYTES",
}

Projection = Mapping[str, "Projection | None"]
"""Field name -> None (the whole field) or a nested projection (for a field holding a record)."""


def project(schema: Mapping[str, Any], keep: Projection) -> dict[str, Any]:
    """``schema`` (a record) with only the fields in ``keep``, in ``keep``'s order, recursively.

    A field kept from a record that carries a default keeps it; a nested projection applies to a
    field whose type is a record or a nullable union of one. Unknown names are an error.
    """
    fields = {field["name"]: field for field in schema["fields"]}
    out: list[dict[str, Any]] = []
    for name, inner in keep.items():
        if name not in fields:
            raise SchemaMappingError(f"{schema['name']} has no field {name!r}")
        field = copy.deepcopy(fields[name])
        field.pop("doc", None)
        if inner is not None:
            field["type"] = _project_type(field["type"], inner, name)
        out.append(field)
    projected = {key: value for key, value in schema.items() if key not in ("fields", "doc")}
    projected["fields"] = out
    return projected


def _project_type(avro_type: Any, inner: Projection, name: str) -> Any:
    if isinstance(avro_type, dict) and avro_type.get("type") == "record":
        return project(avro_type, inner)
    branches = _nullable_branch(avro_type)
    if branches is not None:
        return ["null", _project_type(branches, inner, name)]
    raise SchemaMappingError(f"field {name!r} holds no record to project")


def _nullable_branch(avro_type: Any) -> Any | None:
    """``T`` of ``["null", T]`` (either order); None for anything else."""
    if isinstance(avro_type, list) and len(avro_type) == 2 and "null" in avro_type:
        return avro_type[1] if avro_type[0] == "null" else avro_type[0]
    return None


def flink_type(avro_type: Any, *, nullable: bool = False) -> str:
    """The Flink SQL type Flink's Avro format maps ``avro_type`` to."""
    suffix = "" if nullable else " NOT NULL"
    if isinstance(avro_type, str):
        if avro_type in _PRIMITIVES:
            return _PRIMITIVES[avro_type] + suffix
        raise SchemaMappingError(f"Avro type {avro_type!r} is not mapped (named types must be inline)")
    if isinstance(avro_type, list):
        branch = _nullable_branch(avro_type)
        if branch is None:
            raise SchemaMappingError(f"union {avro_type} is not a nullable union; Flink cannot map it")
        return flink_type(branch, nullable=True)
    kind = avro_type.get("type")
    logical = avro_type.get("logicalType")
    if logical == "timestamp-millis" and kind == "long":
        return "TIMESTAMP(3)" + suffix
    if kind == "enum":
        return "STRING" + suffix
    if kind == "array":
        return f"ARRAY<{flink_type(avro_type['items'])}>" + suffix
    if kind == "record":
        inner = ", ".join(f"`{f['name']}` {flink_type(f['type'])}" for f in avro_type["fields"])
        return f"ROW<{inner}>" + suffix
    if isinstance(kind, str) and kind in _PRIMITIVES:
        return _PRIMITIVES[kind] + suffix
    raise SchemaMappingError(f"Avro type {avro_type} is not mapped")


def columns(schema: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(name, Flink SQL type) of each field of a record schema, in order."""
    return [(field["name"], flink_type(field["type"])) for field in schema["fields"]]


def column_ddl(schema: Mapping[str, Any], extra: Sequence[str] = ()) -> str:
    """The column list of a ``CREATE TABLE`` for ``schema``, plus ``extra`` clauses (watermarks)."""
    lines = [f"`{name}` {sql_type}" for name, sql_type in columns(schema)] + list(extra)
    return ",\n  ".join(lines)
