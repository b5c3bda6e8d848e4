"""A sink killed with SIGKILL in the middle of its batches, then restarted: no loss, no duplicates."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from chatstream.avro.catalog import load_catalog
from chatstream.avro.serde import ConfluentEncoder
from chatstream.ids import uuid7
from chatstream.lag import lag
from chatstream.settings import Settings
from pipelines.sinks import CONSUMER_GROUPS
from tests.integration.platform import Component

TOPIC = "chat.actions.v1"
EVENTS = 30_000  # enough that the kill lands while batches are still being written


def produce_events(settings: Settings, tenant: str) -> None:
    contract = load_catalog()[TOPIC]
    with SchemaRegistryClient({"url": settings.schema_registry_url}) as registry:
        schema_id = registry.get_latest_version(contract.subject).schema_id
    encoder = ConfluentEncoder(contract.schema, schema_id)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "enable.idempotence": True, "linger.ms": 20})
    start = int(time.time() * 1000) - EVENTS
    for i in range(EVENTS):
        at = start + i
        record = {"event_id": uuid7(at), "occurred_at": at, "tenant_id": tenant, "user_id": "u", "trace_id": "t" * 32,
                  "conversation_id": f"c{i % 101}", "action": "MESSAGE_SENT",
                  "message_sent": {"message_id": f"m{i}", "text_length": i % 300}}  # fmt: skip
        producer.produce(TOPIC, encoder.encode(record), f"c{i % 101}".encode())
        if i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0


@pytest.mark.parametrize("kind", ["postgres", "clickhouse"])
def test_sink_killed_mid_batch_loses_and_doubles_nothing(
    running_stack: Settings, clickhouse: Callable[..., Any], unique: str, kind: str
) -> None:
    settings = running_stack
    group = CONSUMER_GROUPS[kind]
    tenant = f"crash-{kind}-{unique}"
    # first bring the sink up to date with what earlier tests left, so the kill lands in our events
    catch_up = Component(settings, "sink", kind).start()
    try:
        catch_up.wait_for_output("draining")
        deadline = time.monotonic() + 120
        while lag(settings.kafka_bootstrap_servers, group, TOPIC) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        code = catch_up.stop()
    assert code == 0, catch_up.log_tail()

    produce_events(settings, tenant)
    initial = lag(settings.kafka_bootstrap_servers, group, TOPIC)
    assert initial >= EVENTS

    small = {"CHATSTREAM_SINK_BATCH_ROWS": "200", "CHATSTREAM_SINK_BATCH_INTERVAL_S": "0.05"}
    victim = Component(settings, "sink", kind, env=small).start()
    try:
        victim.wait_for_output("draining")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            remaining = lag(settings.kafka_bootstrap_servers, group, TOPIC)
            if 0 < remaining < initial - 1500:  # a few batches in, many still to go
                break
            assert victim.running(), victim.log_tail()
            time.sleep(0.05)
    finally:
        victim.kill()  # SIGKILL: no flush, no commit, maybe half a batch written
    assert 0 < lag(settings.kafka_bootstrap_servers, group, TOPIC) < initial

    survivor = Component(settings, "sink", kind).start()
    try:
        survivor.wait_for_output("draining")
        deadline = time.monotonic() + 120
        while lag(settings.kafka_bootstrap_servers, group, TOPIC) and time.monotonic() < deadline:
            assert survivor.running(), survivor.log_tail()
            time.sleep(0.5)
    finally:
        code = survivor.stop()
    assert code == 0, survivor.log_tail()
    assert lag(settings.kafka_bootstrap_servers, group, TOPIC) == 0

    if kind == "postgres":
        with psycopg.connect(settings.postgres_url()) as conn:
            counts = conn.execute(
                "SELECT count(*), count(DISTINCT event_id) FROM chat_events WHERE tenant_id = %s", (tenant,)
            ).fetchone()
    else:  # no FINAL, no OPTIMIZE: not even a transient duplicate row
        ((rows, ids),) = clickhouse(
            ("query", f"SELECT count(), uniqExact(event_id) FROM chat_events WHERE tenant_id = '{tenant}'", None)
        )
        counts = (rows, ids)
    assert counts == (EVENTS, EVENTS)
