"""(d) and (e) of the ingest benchmark, one measurement per process.

Each measurement runs in a fresh process, as ``chatstream sink`` does in production: the sink
(or the raw loop) does not share the benchmark's heap of events, requests and rows, nor an
engine that another measurement just loaded. ClickHouse measurements open the bench stack's chDB
files one process at a time; the PostgreSQL sink decodes in its own in-memory chDB engine, as
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
import time
import uuid
from typing import Any

import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer
from confluent_kafka import TopicPartition as KafkaPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from chatstream.avro.serde import ConfluentDecoder
from chatstream.settings import Settings, load_settings
from chatstream.stores import clickhouse_client
from connectors.main import build_runner, build_sink, registry_fetcher
from connectors.rows import CHAT_EVENT_COLUMNS, chat_event_row
from connectors.postgres_sink import PostgresSink
from connectors.sink import BatchingSink, Route, SourceRecord
from pipelines.sinks import CLICKHOUSE_ROUTES, POSTGRES_ROUTES

MEASURES = ("clickhouse-sink", "clickhouse-raw", "postgres-sink", "postgres-raw", "postgres-raw-by-time")


def bench_route(kind: str, topic: str, table: str) -> Route:
    """The production chat_events route of the ``kind`` sink, from the bench topic into a bench table."""
    (route,) = [r for r in (CLICKHOUSE_ROUTES if kind == "clickhouse" else POSTGRES_ROUTES) if r.table == "chat_events"]
    return dataclasses.replace(route, topic=topic, table=table)


def drain(settings: Settings, sink: BatchingSink, registry: SchemaRegistryClient, expected: int) -> float:
    """A fresh consumer group drains the topic; rows/s from the first record consumed to the
    last commit (decode, map, write and commit; the group's one-off join is not counted)."""
    runner = build_runner(settings, sink, registry, group=f"bench-{uuid.uuid4()}")
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
                    record = SourceRecord(topic, msg.partition() or 0, msg.offset() or 0, decoder.decode(msg.value()))
                    rows.append(chat_event_row(record))
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
                    sink = build_sink(settings, "clickhouse", registry, chdb=ch,
                                      routes=[bench_route(kind, warm_topic, table)])  # fmt: skip
                    drain(settings, sink, registry, warm_count)
                    sink = build_sink(settings, "clickhouse", registry, chdb=ch, routes=[bench_route(kind, topic, table)])
                    return drain(settings, sink, registry, expected)
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
                    warm_up = build_sink(settings, "postgres", registry, consumer_group=f"bench-warm-{table}",
                                         routes=[bench_route(kind, warm_topic, table)])  # fmt: skip
                    assert isinstance(warm_up, PostgresSink)
                    drain(settings, warm_up, registry, warm_count)
                    warm_up.close()
                    sink = build_sink(settings, "postgres", registry, consumer_group=f"bench-{table}",
                                      routes=[bench_route(kind, topic, table)], chdb=warm_up.engine)  # fmt: skip
                    assert isinstance(sink, PostgresSink)
                    checkpoint(settings)
                    try:
                        return drain(settings, sink, registry, expected)
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
