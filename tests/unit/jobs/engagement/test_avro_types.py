"""Contracts as Flink SQL columns: Flink's own mapping rules, projections Avro can resolve."""

from __future__ import annotations

from typing import Any

import fastavro
import pytest

from chatstream.avro.catalog import load_catalog
from jobs.engagement.avro_types import columns, flink_type, project
from jobs.engagement.errors import SchemaMappingError
from jobs.engagement.sql import ACTIONS_FIELDS, RESPONSES_FIELDS, activity_reader, source_schemas

CATALOG = load_catalog()


@pytest.mark.parametrize(("avro", "sql"), [
    ("string", "STRING NOT NULL"),
    (["null", "long"], "BIGINT"),
    ({"type": "long", "logicalType": "timestamp-millis"}, "TIMESTAMP(3) NOT NULL"),
    ({"type": "string", "logicalType": "uuid"}, "STRING NOT NULL"),
    ({"type": "enum", "name": "E", "symbols": ["A"]}, "STRING NOT NULL"),
    ({"type": "array", "items": "long"}, "ARRAY<BIGINT NOT NULL> NOT NULL"),
    (["null", {"type": "record", "name": "R", "fields": [{"name": "m", "type": ["null", "string"]}]}],
     "ROW<`m` STRING>"),
])  # fmt: skip
def test_types_map_as_flinks_avro_format_maps_them(avro: Any, sql: str) -> None:
    assert flink_type(avro) == sql


def test_a_union_other_than_nullable_is_refused() -> None:
    with pytest.raises(SchemaMappingError, match="not a nullable union"):
        flink_type(["string", "long"])


def test_every_output_contract_maps_to_columns() -> None:
    for topic in ("analytics.engagement.v1", "analytics.sessions.v1", "analytics.late_events.v1"):
        names = [name for name, _ in columns(CATALOG[topic].schema)]
        assert names == [f["name"] for f in CATALOG[topic].schema["fields"]]


def test_the_sources_read_a_projection_that_resolves_against_the_contract() -> None:
    actions, responses = source_schemas(CATALOG["chat.actions.v1"].schema, CATALOG["ai.responses.v1"].schema)
    assert [f["name"] for f in actions["fields"]] == list(ACTIONS_FIELDS)
    assert [f["name"] for f in responses["fields"]] == list(RESPONSES_FIELDS)
    details = dict(columns(actions))
    assert details["feedback_given"] == "ROW<`rating` STRING NOT NULL>"
    # a record written with the whole contract reads back through the projection
    written = {"chat.actions.v1": actions, "ai.responses.v1": responses}
    for topic, reader in written.items():
        assert fastavro.parse_schema(reader)["name"] == CATALOG[topic].schema["namespace"] + "." + CATALOG[topic].schema["name"]


def test_projecting_an_unknown_field_names_it() -> None:
    with pytest.raises(SchemaMappingError, match="no field 'nope'"):
        project(CATALOG["chat.actions.v1"].schema, {"nope": None})


@pytest.mark.parametrize("topic", ["analytics.engagement.v1", "analytics.sessions.v1", "analytics.late_events.v1"])
def test_the_outputs_are_written_as_avro_java_prints_them(topic: str) -> None:
    """Flink's sink registers its schema on every start, printed by Avro's ``Schema.toString()``;
    the registry keeps one version only if our text is that text: keys in Avro's order, ASCII."""
    schema = CATALOG[topic].schema
    assert list(schema) == ["type", "name", "namespace", "doc", "fields"]
    order = ["name", "type", "doc", "default"]
    for field in schema["fields"]:
        assert list(field) == [key for key in order if key in field], field["name"]
    assert CATALOG[topic].canonical.isascii()


def test_one_reader_schema_holds_both_topics_the_other_topics_fields_null_by_default() -> None:
    """Avro Java (Flink's) resolves it against either writer; the integration tests read both through it."""
    reader = activity_reader(CATALOG["chat.actions.v1"].schema, CATALOG["ai.responses.v1"].schema)
    names = [f["name"] for f in reader["fields"]]
    assert names == list(ACTIONS_FIELDS) + list(RESPONSES_FIELDS)[7:]
    for field in reader["fields"][7:]:
        assert field["type"][0] == "null" and field["default"] is None, field["name"]
    assert [name for name, _ in columns(reader)] == names
    fastavro.parse_schema(reader)
