"""Wire a sink from the settings and run it (``chatstream sink clickhouse|postgres``)."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Sequence
from typing import Any

import psycopg
from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from chatstream.avro.serde import ConfluentDecoder, WireFormatError
from chatstream.settings import Settings
from chatstream.stores import clickhouse_client
from connectors.clickhouse_sink import ClickHouseSink
from connectors.dlq import DeadLetters
from connectors.postgres_sink import PostgresSink
from connectors.runner import FlushPolicy, SinkRunner
from connectors.sink import BatchingSink, Route
from pipelines.sinks import CLICKHOUSE_ROUTES, CONSUMER_GROUPS, POSTGRES_ROUTES


def registry_fetcher(registry: SchemaRegistryClient) -> Any:
    """Writer schemas by id; an id the registry does not know makes the record a dead letter."""

    def fetch(schema_id: int) -> dict[str, Any]:
        try:
            schema = registry.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise WireFormatError(f"schema id {schema_id} is not in the registry") from exc
            raise
        parsed: dict[str, Any] = json.loads(schema.schema_str or "null")
        return parsed

    return fetch


def build_sink(
    settings: Settings,
    kind: str,
    registry: SchemaRegistryClient,
    *,
    routes: Sequence[Route] | None = None,
    consumer_group: str | None = None,
    chdb: Any = None,
) -> BatchingSink:
    """The sink ``chatstream sink <kind>`` runs. ``routes`` and ``consumer_group`` default to
    ``pipelines/sinks.py``; ``chdb`` is a clickhouse-connect client to reuse where the process
    already holds a chDB engine (chDB allows one per process)."""
    decode = ConfluentDecoder(registry_fetcher(registry)).decode
    if kind == "clickhouse":
        native = settings.is_local("clickhouse")  # the engine reads a scratch file: same machine only
        return ClickHouseSink(
            chdb or clickhouse_client(settings),
            routes or CLICKHOUSE_ROUTES,
            registry_url=settings.schema_registry_url if native else None,
            decode=decode if native else None,
        )
    if kind == "postgres":
        import clickhouse_connect

        return PostgresSink(
            lambda: psycopg.connect(settings.postgres_url(), autocommit=True, connect_timeout=5, options="-c TimeZone=UTC"),
            routes or POSTGRES_ROUTES,
            consumer_group or CONSUMER_GROUPS["postgres"],
            engine=chdb or clickhouse_connect.get_client(dsn="chdb://memory"),  # the batch decoder only
            registry_url=settings.schema_registry_url,
            decode=decode,
        )
    raise ValueError(f"unknown sink {kind!r}: clickhouse or postgres")


def build_runner(
    settings: Settings, sink: BatchingSink, registry: SchemaRegistryClient, *, group: str | None = None
) -> SinkRunner:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": group or CONSUMER_GROUPS[sink.name],
            "group.protocol": "consumer",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "fetch.max.bytes": 52_428_800,
            "queued.max.messages.kbytes": 262_144,
            # librdkafka's 1,000 ms left the consumer idle 0.2-0.4 s mid-drain (bench/RESULTS.md)
            "fetch.queue.backoff.ms": 20,
        }
    )
    return SinkRunner(
        sink,
        consumer,
        ConfluentDecoder(registry_fetcher(registry)),
        DeadLetters(settings.kafka_bootstrap_servers, sink.name),
        FlushPolicy(settings.sink_batch_rows, settings.sink_batch_interval_s),
    )


def run_sink(settings: Settings, kind: str) -> None:
    """Run until SIGINT/SIGTERM, then flush and commit what is buffered and exit."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with SchemaRegistryClient({"url": settings.schema_registry_url}) as registry:
        sink = build_sink(settings, kind, registry)
        runner = build_runner(settings, sink, registry)
        runner.stopping = stop
        print(f"sink {kind}: draining {', '.join(sink.topics)} as {CONSUMER_GROUPS[kind]}", flush=True)
        runner.run()
