"""Idempotency is per tenant, and both stores apply one rule: a chat event is its
(tenant_id, event_id, action, occurred_at); copies of one event are one row, the copy with the
highest Kafka offset, in ClickHouse and in PostgreSQL alike. Sent straight to Kafka (any producer
may write the topic), so each copy is exactly the record the test means."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from chatstream.avro.catalog import load_catalog
from chatstream.avro.serde import ConfluentEncoder
from chatstream.ids import uuid7
from chatstream.lag import wait_caught_up
from chatstream.settings import Settings
from connectors.mappings import CHAT_EVENTS
from infra.db.migrate import MIGRATIONS, migrate_postgres
from pipelines.sinks import CONSUMER_GROUPS
from tests.integration.platform import Component

TOPIC = "chat.actions.v1"
Row = tuple[str, str, int, int]  # tenant, action, occurred_at (ms), text_length


def chat_action(event_id: str, tenant: str, action: str, at_ms: int, text_length: int, conversation: str) -> dict[str, Any]:
    detail = {"message_id": "m1", "text_length": text_length}
    record = "MessageSent" if action == "MESSAGE_SENT" else "MessageEdited"
    return {"event_id": event_id, "occurred_at": at_ms, "tenant_id": tenant, "user_id": "u", "trace_id": "a" * 32,
            "conversation_id": conversation, "action": action,
            action.lower(): (f"io.chatstream.events.{record}", detail)}  # fmt: skip


def stored(settings: Settings, clickhouse: Callable[..., Any], event_id: str) -> tuple[list[list[Any]], list[list[Any]]]:
    """Rows of ``event_id`` (tenant, action, time in ms, text_length, kafka_offset): PostgreSQL's, ClickHouse's (FINAL)."""
    with psycopg.connect(settings.postgres_url()) as conn:
        pg = conn.execute(
            "SELECT tenant_id, action, (extract(epoch FROM occurred_at) * 1000)::bigint, text_length, kafka_offset"
            " FROM chat_events WHERE event_id = %s ORDER BY 1, 2, 3",
            (event_id,),
        ).fetchall()
    ch = clickhouse(("query", "SELECT tenant_id, action, toUnixTimestamp64Milli(occurred_at), text_length, kafka_offset"
                              f" FROM chat_events FINAL WHERE event_id = '{event_id}' ORDER BY 1, 2, 3", None))  # fmt: skip
    return [list(r) for r in pg], [[t, a, int(at), int(n), int(o)] for t, a, at, n, o in ch]


def test_an_event_is_its_tenant_event_id_action_and_time_and_the_newest_copy_wins_in_both_stores(
    running_stack: Settings, clickhouse: Callable[..., Any], unique: str
) -> None:
    settings = running_stack
    contract = load_catalog()[TOPIC]
    with SchemaRegistryClient({"url": settings.schema_registry_url}) as registry:
        encoder = ConfluentEncoder(contract.schema, registry.get_latest_version(contract.subject).schema_id)
    at = int(time.time() * 1000)
    event_id = uuid7(at)
    one, two = f"a-{unique}", f"b-{unique}"
    conversation = f"{unique}-c"  # one key: one partition, so the offsets order the copies

    def produce(*copies: dict[str, Any] | bytes) -> None:
        producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers})
        for copy in copies:
            producer.produce(TOPIC, copy if isinstance(copy, bytes) else encoder.encode(copy), conversation.encode())
        assert producer.flush(30) == 0

    first = encoder.encode(chat_action(event_id, one, "MESSAGE_SENT", at, 1, conversation))
    sinks = [Component(settings, "sink", kind).start() for kind in CONSUMER_GROUPS]
    try:
        for sink in sinks:
            sink.wait_for_output("draining")
        produce(
            first,
            chat_action(event_id, two, "MESSAGE_SENT", at, 2, conversation),  # another tenant: another event
            chat_action(event_id, one, "MESSAGE_EDITED", at, 3, conversation),  # another action: another event
            chat_action(event_id, one, "MESSAGE_SENT", at + 1, 4, conversation),  # another time: another event
            first,  # the same record again (a producer's retry): one row
            chat_action(event_id, one, "MESSAGE_SENT", at, 6, conversation),  # a later copy that differs: it wins
        )
        lags = wait_caught_up(settings.kafka_bootstrap_servers, list(CONSUMER_GROUPS.values()), TOPIC, timeout_s=120)
        assert not any(lags.values()), (lags, [s.log_tail() for s in sinks])
        # a later copy in a flush of its own replaces the stored row
        produce(chat_action(event_id, two, "MESSAGE_SENT", at, 7, conversation))
        lags = wait_caught_up(settings.kafka_bootstrap_servers, list(CONSUMER_GROUPS.values()), TOPIC, timeout_s=120)
        assert not any(lags.values()), (lags, [s.log_tail() for s in sinks])
    finally:
        codes = [s.stop() for s in sinks]
    assert codes == [0, 0], [s.log_tail() for s in sinks]

    pg, ch = stored(settings, clickhouse, event_id)
    expected: list[Row] = [(one, "MESSAGE_EDITED", at, 3), (one, "MESSAGE_SENT", at, 6),
                           (one, "MESSAGE_SENT", at + 1, 4), (two, "MESSAGE_SENT", at, 7)]  # fmt: skip
    assert [tuple(r[:4]) for r in pg] == expected
    assert [tuple(r[:4]) for r in ch] == expected
    assert pg == ch  # the same copy (Kafka offset) of each event in both stores
    assert clickhouse(("query", f"SELECT count() FROM chat_events FINAL WHERE event_id = '{event_id}'", None)) == [[4]]


def test_both_stores_key_chat_events_by_the_mapping_key(running_stack: Settings, clickhouse: Callable[..., Any]) -> None:
    with psycopg.connect(running_stack.postgres_url()) as conn:
        pg_key = [name for (name,) in conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)"
            " WHERE i.indrelid = 'chat_events'::regclass AND i.indisprimary"
        )]  # fmt: skip
    ((sorting_key, engine),) = clickhouse(
        ("query", "SELECT sorting_key, engine_full FROM system.tables WHERE database = currentDatabase() AND name = 'chat_events'", None)
    )
    assert set(pg_key) == set(CHAT_EVENTS.key)
    assert {c.strip() for c in sorting_key.split(",")} == set(CHAT_EVENTS.key)
    assert engine.startswith(f"ReplacingMergeTree({CHAT_EVENTS.version})")


def test_a_deployment_keyed_by_event_id_and_time_upgrades(running_stack: Settings, unique: str, tmp_path: Path) -> None:
    """0004 on a chat_events that 0003 made and that holds rows, in a schema of its own: the rows
    stay, the key becomes the identity, and partition maintenance works on the new key."""
    schema = f"upgrade_{unique}"
    before = tmp_path / "postgres"
    before.mkdir()
    for path in sorted((MIGRATIONS / "postgres").glob("000[1-3]_*.sql")):
        shutil.copy(path, before / path.name)
    event_id = str(uuid.uuid4())
    with psycopg.connect(running_stack.postgres_url()) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"SET search_path = {schema}, public")
        conn.commit()
        try:
            assert [m.version for m in migrate_postgres(conn, before)] == [1, 2, 3]
            insert = (
                "INSERT INTO chat_events (event_id, occurred_at, tenant_id, user_id, trace_id, action, details,"
                " kafka_topic, kafka_partition, kafka_offset)"
                " VALUES (%s, now() + %s * interval '1 day', %s, 'u', 't', 'MESSAGE_SENT', '{}', 'x', 0, %s)"
            )
            with conn.transaction():
                conn.execute(insert, (event_id, 0, "a", 1))  # today's partition
                conn.execute(insert, (event_id, 10, "a", 2))  # beyond the partitions: the DEFAULT one
            flavor = conn.execute("SELECT flavor FROM chatstream_timeseries WHERE table_name = 'chat_events'").fetchone()

            shutil.copy(next((MIGRATIONS / "postgres").glob("0004_*.sql")), before)  # 0004 alone: later ones are others' business
            assert [m.version for m in migrate_postgres(conn, before)] == [4]
            with conn.transaction():
                conn.execute(insert, (event_id, 0, "b", 3))  # another tenant: another event now
                if flavor == ("native",):  # the DEFAULT partition's row moves to a partition made with the new key
                    conn.execute("SELECT chatstream_maintain_timeseries(now() + interval '10 days', 'chat_events')")
            rows = conn.execute("SELECT tenant_id, kafka_offset FROM chat_events ORDER BY kafka_offset").fetchall()
            key = conn.execute(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'chat_events'::regclass AND contype = 'p'"
            ).fetchone()
        finally:
            conn.rollback()
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
            conn.commit()
    assert rows == [("a", 1), ("a", 2), ("b", 3)]
    assert key == ("PRIMARY KEY (event_id, occurred_at, tenant_id, action)",)
