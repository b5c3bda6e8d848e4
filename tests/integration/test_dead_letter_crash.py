"""A sink killed after its store write but before Kafka acknowledged the dead letters: after a
restart every bad record is dead-lettered (at least once) and every good record is stored
exactly once.

The dead-letter topic is deleted first (the broker does not auto-create topics), so the sink
cannot get the acknowledgement: it logs the dead letter, writes, and waits, retrying. That is
where it is killed with SIGKILL. The topic is then re-created with ``chatstream topics apply``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from chatstream.avro.catalog import load_catalog
from chatstream.avro.serde import ConfluentEncoder
from chatstream.lag import end_offsets
from chatstream.settings import Settings
from pipelines.sinks import CONSUMER_GROUPS
from tests.integration.conftest import chatstream
from tests.integration.platform import Component
from tests.integration.test_dead_letters import DLQ, TOPIC, dead_letters_since, run_sink_until_caught_up
from tests.integration.test_store_refusals import action

GOOD = 60


def delete_topic(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.delete_topics([topic])[topic].result(30)
    deadline = time.monotonic() + 30
    while topic in admin.list_topics(timeout=10).topics and time.monotonic() < deadline:
        time.sleep(0.2)


def test_a_kill_before_the_dead_letters_are_acknowledged_loses_and_doubles_nothing(
    running_stack: Settings, clickhouse: Callable[..., Any], unique: str
) -> None:
    settings = running_stack
    for kind in CONSUMER_GROUPS:
        run_sink_until_caught_up(settings, kind)
    tenant = f"ackcrash-{unique}"
    now = int(time.time() * 1000)
    contract = load_catalog()[TOPIC]
    with SchemaRegistryClient({"url": settings.schema_registry_url}) as registry:
        encoder = ConfluentEncoder(contract.schema, registry.get_latest_version(contract.subject).schema_id)
    records = [action(tenant, f"{unique}-good-{i % 6}", now + i) for i in range(GOOD)]
    bad = action(tenant, f"{unique}-bad", now, text_length=2**31)  # both stores refuse it
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers})
    for record in [*records[: GOOD // 2], bad, *records[GOOD // 2 :]]:
        producer.produce(TOPIC, encoder.encode(record), record["conversation_id"].encode())
    assert producer.flush(30) == 0

    delete_topic(settings.kafka_bootstrap_servers, DLQ)
    sinks = [Component(settings, "sink", kind).start() for kind in CONSUMER_GROUPS]
    try:
        for sink in sinks:  # the dead letter is logged once the store refused it, before Kafka acks it
            sink.wait_for_output(f"dead letter {TOPIC}", timeout_s=120)
        time.sleep(2)
        for sink in sinks:
            assert sink.running(), sink.log_tail()
    finally:
        for sink in sinks:
            sink.kill()

    chatstream(settings, "topics", "apply")
    start = {p: 0 for p in end_offsets(settings.kafka_bootstrap_servers, DLQ)}  # re-created: read all of it
    for kind in CONSUMER_GROUPS:
        run_sink_until_caught_up(settings, kind)

    parked = [h for h in dead_letters_since(settings, start) if h["key"] == f"{unique}-bad".encode()]
    assert {h["sink"].decode() for h in parked} == set(CONSUMER_GROUPS)
    errors = {h["sink"].decode(): h["error"].decode() for h in parked}
    assert "out of range" in errors["postgres"] and errors["clickhouse"], errors

    with psycopg.connect(settings.postgres_url()) as conn:
        pg = conn.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM chat_events WHERE tenant_id = %s", (tenant,)
        ).fetchone()
    ((rows, ids),) = clickhouse(  # no FINAL: not even a transient duplicate
        ("query", f"SELECT count(), uniqExact(event_id) FROM chat_events WHERE tenant_id = '{tenant}'", None)
    )
    assert pg == (GOOD, GOOD)
    assert (rows, ids) == (GOOD, GOOD)
