"""Compose a sink from the settings and ``pipelines/sinks.py``, and run it (``chatstream sink``).

The one place where the wiring (pipelines), the sinks (connectors), the contracts and the
settings meet: routes from ``SINK_TABLES`` and ``connectors.mappings``, a decoder (ClickHouse's
engine in-process, falling back to Python), the store's client, the consumer, the dead letters,
the health endpoint.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
from collections.abc import Sequence
from typing import Any

import psycopg
from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient

from chatstream.avro.catalog import load_catalog
from chatstream.avro.registry import registry_fetcher
from chatstream.avro.serde import ConfluentDecoder
from chatstream.ops_publisher import build_publisher, publishing
from chatstream.settings import Settings
from chatstream.stores import clickhouse_client
from chatstream.topics import TopicAdmin, dead_letter_name
from connectors.clickhouse_sink import ClickHouseSink, column_types
from connectors.decoding import EngineDecoder, PythonDecoder
from connectors.dlq import DeadLetters
from connectors.health import LOAD as SINK_LOAD
from connectors.health import Progress, SinkMetrics, serve
from connectors.mappings import MAPPINGS
from connectors.pipeline import count_fallback
from connectors.policy import FlushPolicy
from connectors.postgres_sink import PostgresSink
from connectors.runner import SinkRunner
from connectors.sink import Route, Sink
from pipelines.sinks import CONSUMER_GROUPS, SINK_TABLES
from pipelines.topics import METRICS

KINDS = tuple(SINK_TABLES)


def routes_for(kind: str) -> list[Route]:
    catalog = load_catalog()
    return [Route(topic, table, MAPPINGS[table], catalog[topic].schema) for topic, table in SINK_TABLES[kind]]


def build_sink(settings: Settings, kind: str, registry: SchemaRegistryClient, metrics: SinkMetrics, *,
               routes: Sequence[Route] | None = None, consumer_group: str | None = None,
               store: Any = None) -> Sink:  # fmt: skip
    """The sink ``chatstream sink <kind>`` runs. ``routes`` and ``consumer_group`` default to
    ``pipelines/sinks.py``'s; ``store`` is a ClickHouse client to use instead of the settings'."""
    import clickhouse_connect

    routes = list(routes or routes_for(kind))
    group = consumer_group or CONSUMER_GROUPS[kind]
    python = PythonDecoder(ConfluentDecoder(registry_fetcher(registry)).decode)
    if kind == "clickhouse":
        client = store or clickhouse_client(settings)
        # a row it cannot encode is logged with a traceback, then raised: the sink narrows and
        # dead-letters it with the message, so the library's own report is noise
        logging.getLogger("clickhouse_connect.driver.transform").setLevel(logging.CRITICAL)
        # decoded in an in-memory chDB engine here; the Native blocks go to the server over HTTP
        engine = clickhouse_connect.get_client(dsn="chdb://memory")
        # Native blocks in the table's own column types: no conversion on insert
        decoder = EngineDecoder(engine, settings.schema_registry_url, "Native", python, count_fallback(metrics, kind),
                                column_types=lambda table: column_types(client, table))  # fmt: skip
        return ClickHouseSink(client, decoder, routes, group)
    if kind == "postgres":
        engine = clickhouse_connect.get_client(dsn="chdb://memory")  # the batch decoder only
        decoder = EngineDecoder(engine, settings.schema_registry_url, "TabSeparated", python, count_fallback(metrics, kind))
        url = settings.postgres_url()
        return PostgresSink(lambda: psycopg.connect(url, autocommit=True, connect_timeout=5, options="-c TimeZone=UTC"),
                            decoder, group)  # fmt: skip
    raise ValueError(f"unknown sink {kind!r}: {' or '.join(KINDS)}")


def build_runner(settings: Settings, sink: Sink, routes: Sequence[Route], stopping: threading.Event,
                 progress: Progress, metrics: SinkMetrics, *, group: str | None = None) -> SinkRunner:  # fmt: skip
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": group or CONSUMER_GROUPS[sink.name],
            # Static membership: a sink restarted after a crash (same instance) gets its partitions
            # back at once instead of after the dead member's session. (librdkafka's KIP-848
            # protocol refuses an unreleased instance id until then, so the classic protocol, with
            # cooperative rebalancing.) A replica gone for good hands over after session.timeout.ms.
            "group.protocol": "classic",
            "partition.assignment.strategy": "cooperative-sticky",
            "group.instance.id": f"{group or CONSUMER_GROUPS[sink.name]}-{settings.instance}",
            "session.timeout.ms": 15_000,
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
        list(routes),
        consumer,
        DeadLetters(settings.kafka_bootstrap_servers, sink.name, dead_letter_name),
        FlushPolicy(settings.sink_batch_rows, settings.sink_batch_interval_s),
        stopping,
        progress=progress,
        metrics=metrics,
    )


def settle_heap() -> None:
    """What start-up left (modules, the engine's client, schemas) out of the garbage collector's
    way: a full collection then walks only what the sink made since, not every module's objects
    (the consumer's messages trigger them; this took the collector's share of a drain from about
    a tenth of the loop's time to a thirtieth)."""
    gc.collect()
    gc.freeze()


def run_sink(settings: Settings, kind: str, *, group: str | None = None) -> None:
    """Run until SIGINT/SIGTERM, then flush and commit what is buffered and exit."""
    group = group or CONSUMER_GROUPS[kind]
    logging.getLogger("connectors").setLevel(logging.INFO)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    progress = Progress(settings.sink_stall_after_s)
    metrics = SinkMetrics(kind, progress)
    routes = routes_for(kind)
    # a sink of topics that do not exist would wait forever for records: refuse to start
    TopicAdmin(settings.kafka_bootstrap_servers, timeout_s=10).require([r.topic for r in routes])
    server = serve(settings.gateway_host, settings.sink_port(kind), metrics, progress)
    try:
        with SchemaRegistryClient({"url": settings.schema_registry_url}) as registry:
            sink = build_sink(settings, kind, registry, metrics, routes=routes, consumer_group=group)
            runner = build_runner(settings, sink, routes, stopping, progress, metrics, group=group)
            ops = build_publisher(settings, METRICS.name, f"sink-{kind}", SINK_LOAD, metrics.registry.collect)
            print(f"sink {kind}: draining {', '.join(r.topic for r in routes)} as {group}; "
                  f"metrics and readiness on http://{settings.gateway_host}:{settings.sink_port(kind)}", flush=True)  # fmt: skip
            try:
                settle_heap()
                with publishing(ops):
                    runner.run()
            finally:
                sink.close()
    finally:
        server.shutdown()
