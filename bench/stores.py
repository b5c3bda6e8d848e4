"""(d) and (e) of the ingest benchmark, one measurement per process.

Each measurement runs in a fresh process, as ``chatstream sink`` does in production: the sink
(or the raw loop) does not share the benchmark's heap of events, requests and rows, nor an
engine that another measurement just loaded. ClickHouse measurements write to the bench stack's
ClickHouse server over HTTP; both sinks decode in an in-memory chDB engine of their own, as
deployed. Every raw baseline writes the rows a consumer reads from the topic, decoded in Python,
in the order it reads them (the order the sinks must write in). The last line printed is the
figure, as JSON.

    python -m bench.stores clickhouse-sink|clickhouse-raw|postgres-sink|postgres-raw|postgres-raw-by-time
           TOPIC WARM_TOPIC WARM_COUNT EXPECTED
"""

from __future__ import annotations

import dataclasses
import gc
import json
import sys
import threading
import time
import uuid
from typing import Any

import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer
from confluent_kafka import TopicPartition as KafkaPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from chatstream.avro.serde import ConfluentDecoder
from chatstream.avro.registry import registry_fetcher
from chatstream.cli.sinks import build_runner, build_sink, routes_for, settle_heap
from chatstream.settings import Settings, load_settings
from chatstream.stores import clickhouse_client
from connectors.health import Progress, SinkMetrics
from connectors.mappings import CHAT_EVENT_COLUMNS, chat_event_row
from connectors.sink import Route, Sink

MEASURES = ("clickhouse-sink", "clickhouse-raw", "postgres-sink", "postgres-raw", "postgres-raw-by-time")


def bench_route(kind: str, topic: str, table: str) -> Route:
    """The production chat_events route of the ``kind`` sink, from the bench topic into a bench table."""
    (route,) = [r for r in routes_for(kind) if r.table == "chat_events"]
    return dataclasses.replace(route, topic=topic, table=table)


def sink_for(settings: Settings, kind: str, registry: SchemaRegistryClient, route: Route, group: str,
             store: Any = None) -> tuple[Sink, SinkMetrics]:  # fmt: skip
    """The sink as ``chatstream sink <kind>`` builds it, on the bench's route and group."""
    metrics = SinkMetrics(kind, Progress(float("inf")))
    return build_sink(settings, kind, registry, metrics, routes=[route], consumer_group=group, store=store), metrics


def drain(settings: Settings, sink: Sink, metrics: SinkMetrics, route: Route, group: str, expected: int) -> float:
    """A fresh consumer group drains the topic; rows/s from the first record consumed to the
    last commit (decode, map, write and commit; the group's one-off join is not counted)."""
    runner = build_runner(settings, sink, [route], threading.Event(), Progress(float("inf")), metrics, group=group)
    settle_heap()  # as `chatstream sink` does before it runs
    stats = runner.run(idle_exit_s=1.0)
    assert stats.rows_written == expected, (stats.rows_written, expected)
    assert stats.first_record_at is not None and stats.last_commit_at is not None
    return expected / (stats.last_commit_at - stats.first_record_at)


def kafka_order_rows(settings: Settings, registry: SchemaRegistryClient, topic: str, expected: int) -> list[Any]:
    """The topic's records as ``chat_events`` rows, decoded in Python, in the order a consumer
    reads them (runs of each partition, interleaved)."""
    decoder = ConfluentDecoder(registry_fetcher(registry))
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    partitions = admin.list_topics(topic, timeout=30).topics[topic].partitions
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": f"bench-read-{uuid.uuid4()}",
                         "enable.auto.commit": False})  # fmt: skip
    consumer.assign([KafkaPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    rows: list[Any] = []
    try:
        while len(rows) < expected:
            for msg in consumer.consume(5000, timeout=5):
                if msg.error() is None:
                    rows.append(chat_event_row(decoder.decode(msg.value()), topic, msg.partition() or 0, msg.offset() or 0))
    finally:
        consumer.close()
    gc.collect()
    gc.freeze()  # the rows stay put: out of the collector's way while the loop runs
    return rows


def chunks(rows: list[Any], size: int) -> list[list[Any]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def checkpoint(settings: Settings) -> None:
    """Each PostgreSQL measurement starts from the same state: no dirty pages or WAL of the one
    before it to write out meanwhile."""
    with psycopg.connect(settings.postgres_url(), autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def measure(settings: Settings, what: str, topic: str, warm: tuple[str, int], expected: int) -> float:
    """One figure, rows/s; ``warm`` is a small topic a sink drains first (and its record count)."""
    warm_topic, warm_count = warm
    table = f"bench_{what.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    kind = what.split("-")[0]
    with SchemaRegistryClient({"url": settings.schema_registry_url}) as registry:
        if kind == "clickhouse":
            ch = clickhouse_client(settings)
            ch.command(f"CREATE TABLE {table} AS chat_events")
            try:
                if what == "clickhouse-sink":
                    # the sink as `chatstream sink clickhouse` builds it; a warm-up drain first
                    for route, count in ((bench_route(kind, warm_topic, table), warm_count), (bench_route(kind, topic, table), expected)):
                        group = f"bench-{uuid.uuid4()}"
                        sink, metrics = sink_for(settings, kind, registry, route, group)
                        figure = drain(settings, sink, metrics, route, group, count)
                    return figure
                rows = kafka_order_rows(settings, registry, topic, expected)
                ch.insert(table, rows[:10], column_names=list(CHAT_EVENT_COLUMNS))  # warm the path
                ch.command(f"TRUNCATE TABLE {table}")
                started = time.perf_counter()
                for part in chunks(rows, settings.sink_batch_rows):
                    ch.insert(table, part, column_names=list(CHAT_EVENT_COLUMNS))
                return len(rows) / (time.perf_counter() - started)
            finally:
                ch.command(f"DROP TABLE {table}")
        with psycopg.connect(settings.postgres_url(), autocommit=True) as conn:
            conn.execute(f"CREATE TABLE {table} (LIKE chat_events INCLUDING ALL)")
            try:
                if what == "postgres-sink":
                    # as `chatstream sink postgres` builds it (its own in-memory chDB decoder)
                    route, group = bench_route(kind, warm_topic, table), f"bench-warm-{table}"
                    warm_up, metrics = sink_for(settings, kind, registry, route, group)
                    drain(settings, warm_up, metrics, route, group, warm_count)
                    warm_up.close()
                    route, group = bench_route(kind, topic, table), f"bench-{table}"
                    sink, metrics = sink_for(settings, kind, registry, route, group)
                    checkpoint(settings)
                    try:
                        return drain(settings, sink, metrics, route, group, expected)
                    finally:
                        sink.close()
                rows = kafka_order_rows(settings, registry, topic, expected)
                if what == "postgres-raw-by-time":  # for reference: event-time order, B-tree appends
                    rows.sort(key=lambda row: (row[1], str(row[0])))
                columns = ", ".join(CHAT_EVENT_COLUMNS)
                checkpoint(settings)
                started = time.perf_counter()
                for part in chunks(rows, settings.sink_batch_rows):
                    with conn.transaction(), conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        for row in part:
                            copy.write_row(row)
                return len(rows) / (time.perf_counter() - started)
            finally:
                conn.execute(f"DROP TABLE {table}")


def main(argv: list[str]) -> None:
    what, topic, warm_topic, warm_count, expected = argv
    if what not in MEASURES:
        raise SystemExit(f"unknown measure {what!r}: one of {', '.join(MEASURES)}")
    figure = measure(load_settings(), what, topic, (warm_topic, int(warm_count)), int(expected))
    print(json.dumps({"measure": what, "rows_per_s": figure}))


if __name__ == "__main__":
    main(sys.argv[1:])
