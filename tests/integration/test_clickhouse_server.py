"""The local ClickHouse is a server: ``infra up`` serves ClickHouse's HTTP interface (chDB's
engine in a process of its own), and the ClickHouse sink writes to it over HTTP: Native blocks
decoded in an in-memory engine, rows decoded in Python when the engine cannot read a flush,
refusals from the server narrowed down and dead-lettered, and this test reads the server while
the sink writes (no folder lock)."""

from __future__ import annotations

import time
from typing import Any

import clickhouse_connect
from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from chatstream.avro.catalog import load_catalog
from chatstream.avro.serde import ConfluentEncoder
from chatstream.lag import end_offsets
from chatstream.settings import Settings
from pipelines.sinks import SINK_TABLES
from tests.integration.test_dead_letters import DLQ, TOPIC, dead_letters_since, run_sink_until_caught_up
from tests.integration.test_store_refusals import MONTH_MS, action

GOOD = 40


def start_group_at_end(bootstrap: str, group: str) -> None:
    """Commit ``group`` at the end of every topic the ClickHouse sink drains, so its sink reads
    only what the test produces next (not other tests' AI events, bad ones among them)."""
    at_end = [TopicPartition(topic, p, o) for topic, _table in SINK_TABLES["clickhouse"]
              for p, o in end_offsets(bootstrap, topic).items()]  # fmt: skip
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, at_end)])[group].result(30)


def produce(settings: Settings, records: list[dict[str, Any]]) -> None:
    contract = load_catalog()[TOPIC]
    with SchemaRegistryClient({"url": settings.schema_registry_url}) as registry:
        encoder = ConfluentEncoder(contract.schema, registry.get_latest_version(contract.subject).schema_id)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers})
    for record in records:
        producer.produce(TOPIC, encoder.encode(record), record["conversation_id"].encode())
    assert producer.flush(30) == 0


def test_the_clickhouse_sink_writes_to_a_server_over_http(running_stack: Settings, unique: str) -> None:
    settings = running_stack
    group = f"test-ch-server-{unique}"
    start_group_at_end(settings.kafka_bootstrap_servers, group)
    letters_start = end_offsets(settings.kafka_bootstrap_servers, DLQ)
    tenant = f"server-{unique}"
    now = int(time.time() * 1000)

    # Native blocks over HTTP; one flush touching 150 monthly partitions is refused and narrowed
    produce(settings, [action(tenant, f"{unique}-c{i % 4}", now + i) for i in range(GOOD)]
            + [action(tenant, f"{unique}-months", now - i * MONTH_MS) for i in range(150)])  # fmt: skip
    native = run_sink_until_caught_up(settings, "clickhouse", group).log_tail()
    assert "narrowing it down" in native and "decoding them in Python" not in native
    # a record the engine cannot read: the flush is decoded in Python, rows go over HTTP
    produce(settings, [action(tenant, f"{unique}-late{i}", now + i) for i in range(10)]
            + [action(tenant, f"{unique}-int", now, text_length=2**31)])  # fmt: skip
    python = run_sink_until_caught_up(settings, "clickhouse", group).log_tail()
    assert "decoding them in Python" in python and "narrowing it down" in python

    client = clickhouse_connect.get_client(dsn=settings.clickhouse_url)  # a second client: no lock
    ((rows, ids, months),) = client.query(
        "SELECT count(), uniqExact(event_id), countIf(conversation_id = {c:String}) FROM chat_events "
        "WHERE tenant_id = {t:String}", parameters={"t": tenant, "c": f"{unique}-months"}
    ).result_rows  # fmt: skip
    assert (rows, ids, months) == (GOOD + 150 + 10, GOOD + 150 + 10, 150)
    parked = [h for h in dead_letters_since(settings, letters_start) if h["sink"] == b"clickhouse"]
    assert [h["key"] for h in parked] == [f"{unique}-int".encode()]
    ((watermarks,),) = client.query(
        "SELECT count() FROM chatstream_sink_offsets FINAL WHERE consumer_group = {g:String}", parameters={"g": group}
    ).result_rows
    assert watermarks >= 1
