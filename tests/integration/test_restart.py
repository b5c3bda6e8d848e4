"""``infra down`` (prompt, even with clients connected) then ``up`` keeps Kafka data, registered
schemas and table contents.

It stops and restarts the whole test stack, and leaves it running.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from chatstream.avro.catalog import load_catalog
from chatstream.settings import Settings
from tests.integration.conftest import chatstream
from tests.integration.test_kafka import drain, make_topic


def registered_ids(settings: Settings) -> dict[str, int]:
    with SchemaRegistryClient({"url": settings.schema_registry_url}) as registry:
        return {c.subject: registry.get_latest_version(c.subject).schema_id for c in load_catalog().values()}


def test_down_then_up_keeps_everything(
    running_stack: Settings, clickhouse: Callable[..., Any], unique: str
) -> None:
    settings = running_stack
    topic = f"test.restart.{unique}"
    make_topic(settings, topic, partitions=1)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "acks": "all"})
    for i in range(10):
        producer.produce(topic, f"m{i}".encode())
    assert producer.flush(30) == 0

    ids_before = registered_ids(settings)

    table = f"test_restart_{unique}"
    with psycopg.connect(settings.postgres_url(), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, at timestamptz)")
        conn.execute(f"INSERT INTO {table} SELECT g, now() FROM generate_series(1, 25) g")
    clickhouse(
        ("command", f"CREATE TABLE {table} (id UInt32) ENGINE = MergeTree ORDER BY id", None),
        ("insert", table, {"columns": ["id"], "rows": [[i] for i in range(1, 26)]}),
    )

    client = psycopg.connect(settings.postgres_url())  # a client connected: no smart-shutdown wait
    try:
        started = time.monotonic()
        down = chatstream(settings, "infra", "down", "--json")
        took_s = time.monotonic() - started
    finally:
        client.close()
    assert set(json.loads(down.stdout)["stopped"]) == {"kafka", "registry", "postgres", "clickhouse"}
    assert took_s < 30, f"infra down took {took_s:.1f}s"
    stopped = chatstream(settings, "infra", "status", "--json", check=False)
    assert stopped.returncode == 3
    assert not json.loads(stopped.stdout)["services"]["kafka"]["running"]

    up = chatstream(settings, "infra", "up", "--json")
    services = json.loads(up.stdout)["services"]
    assert all(s["running"] for s in services.values()), services

    assert sorted(drain(settings, topic, "read_committed", expected=10)) == sorted(f"m{i}".encode() for i in range(10))
    assert registered_ids(settings) == ids_before
    with psycopg.connect(settings.postgres_url()) as conn:
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (25,)
    assert clickhouse(("query", f"SELECT count() FROM {table}", None)) == [[25]]
    assert datetime.now(UTC)  # the stack is left running for the session's teardown
