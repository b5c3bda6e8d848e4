"""One identity rule per table in both stores: the mapping's key is ClickHouse's sort key and
PostgreSQL's primary key, and the PostgreSQL sink's merge keeps the copy ClickHouse keeps.

The engagement job's tables (ClickHouse only) hold derived rows whose copies are equal by
construction (deterministic ids and figures): they replace by ``inserted_at``, the contract's."""

from __future__ import annotations

import re

import pytest
from psycopg import sql

from connectors.mappings import AI_ATTEMPTS, AI_REQUESTS, CHAT_EVENT_KEY, CHAT_EVENTS, MAPPINGS, Mapping
from connectors.postgres_sink import merge_staged
from connectors.sink import Route
from infra.db.migrate import MIGRATIONS, discover, split_statements
from pipelines.sinks import SINK_TABLES

DERIVED = {"engagement_windows", "engagement_sessions", "late_events"}
POSTGRES = [MAPPINGS[table] for _, table in SINK_TABLES["postgres"]]


def latest_ddl(table: str) -> str:
    """The last migration that creates ``table`` (0006 re-creates 0001's engagement_windows)."""
    marker = f"CREATE TABLE IF NOT EXISTS {table}\n"
    return [s for m in discover(MIGRATIONS / "clickhouse") for s in split_statements(m.sql) if s.startswith(marker)][-1]


def columns_of(text: str) -> set[str]:
    return {c.strip() for c in text.split(",")}


def test_a_chat_event_is_its_tenant_event_id_action_and_time() -> None:
    assert CHAT_EVENTS.key == CHAT_EVENT_KEY == ("tenant_id", "event_id", "action", "occurred_at")
    assert CHAT_EVENTS.version == "kafka_offset"


def test_an_ai_request_row_is_its_tenant_request_id_and_time_and_an_attempt_is_an_event() -> None:
    assert AI_REQUESTS.key == ("tenant_id", "request_id", "requested_at")
    assert AI_ATTEMPTS.key == ("tenant_id", "event_id", "occurred_at")
    assert AI_REQUESTS.version == AI_ATTEMPTS.version == "kafka_offset"


def test_every_routed_table_is_in_its_store_and_every_mapping_is_routed() -> None:
    assert {table for routes in SINK_TABLES.values() for _, table in routes} == set(MAPPINGS)
    for store in ("clickhouse", "postgres"):
        text = "\n".join(m.sql for m in discover(MIGRATIONS / store))
        for _, table in SINK_TABLES[store]:
            assert re.search(rf"(CREATE TABLE IF NOT EXISTS {table}\b|chatstream_create_timeseries\(\s*'{table}')", text), (store, table)


@pytest.mark.parametrize("mapping", MAPPINGS.values(), ids=list(MAPPINGS))
def test_clickhouse_sorts_and_replaces_by_the_key_and_version(mapping: Mapping) -> None:
    ddl = latest_ddl(mapping.table)
    engine = re.search(r"ENGINE = ReplacingMergeTree\((\w+)\)", ddl)
    order = re.search(r"ORDER BY \(([^)]*)\)", ddl)
    assert engine is not None and order is not None
    assert engine.group(1) == ("inserted_at" if mapping.table in DERIVED else mapping.version)
    assert columns_of(order.group(1)) == set(mapping.key)


@pytest.mark.parametrize("mapping", POSTGRES, ids=[m.table for m in POSTGRES])
def test_the_latest_postgresql_key_of_each_table_is_the_mapping_key(mapping: Mapping) -> None:
    keys = [found for m in discover(MIGRATIONS / "postgres") if re.search(rf"\b{mapping.table}\b", m.sql)
            for found in re.findall(r"PRIMARY KEY \(([^)]*)\)", m.sql)]  # fmt: skip
    assert keys, f"no migration keys {mapping.table}"
    assert columns_of(keys[-1]) == set(mapping.key)


def test_chat_events_keep_event_id_and_time_first_in_postgresql() -> None:
    keys = [found for m in discover(MIGRATIONS / "postgres") if "chat_events" in m.sql
            for found in re.findall(r"PRIMARY KEY \(([^)]*)\)", m.sql)]  # fmt: skip
    assert {"event_id", "occurred_at"} <= columns_of(keys[-1])  # lookups by id; the partition column


def merge_text() -> str:
    route = Route("chat.actions.v1", "chat_events", CHAT_EVENTS, {})
    return merge_staged(route, sql.Identifier("stage_chat_events")).as_string(None)


def test_the_merge_keeps_one_copy_per_key_the_highest_offset() -> None:
    text = merge_text()
    key = ", ".join(f'"{c}"' for c in CHAT_EVENTS.key)
    # in the batch: one row per key, the highest version first
    assert f"SELECT DISTINCT ON ({key})" in text
    assert f'ORDER BY {key}, "kafka_offset" DESC ON CONFLICT ({key})' in text
    # against the table: only a newer copy replaces the stored row
    assert text.endswith('WHERE "chat_events"."kafka_offset" < EXCLUDED."kafka_offset"')


def test_the_merge_replaces_every_column_but_the_key() -> None:
    updated = re.findall(r'"(\w+)" = EXCLUDED\."\1"', merge_text())
    assert updated == [c for c in CHAT_EVENTS.columns if c not in CHAT_EVENTS.key]
    assert "kafka_offset" in updated and "text_length" in updated


@pytest.mark.parametrize(
    ("key", "version"),
    [(("event_id", "nope"), "n"), (("event_id",), "nope"), (("event_id",), "event_id"), ((), "n")],
)
def test_a_mapping_key_and_version_are_distinct_columns(key: tuple[str, ...], version: str) -> None:
    with pytest.raises(ValueError, match="must be distinct columns"):
        Mapping("t", ("event_id", "n"), lambda v, t, p, o: (), lambda s: (), key=key, version=version)
