"""Ingest benchmark: the gateway and the sinks against raw baselines measured in the same run.

(a) raw: a Python loop of fastavro encode + confluent-kafka produce (idempotent, acks=all)
(b) gateway, batches of 100 events, closed loop at fixed concurrency; then paced at half that
    rate for the latency figures
(c) gateway, one event per request
(d) ClickHouse sink draining N events from Kafka vs raw clickhouse-connect inserts of the rows
(e) PostgreSQL sink draining N events vs raw psycopg COPY of the same rows
(d) and (e) run each figure in a process of its own (``bench.stores``), as the sinks run in
production; the raw baselines write the rows in the order a consumer reads them, as the sinks
must; (e) also reports COPY of the rows sorted by event time, for reference.

It runs on a stack of its own (``<state>/bench-stack``, port base 24000) brought up through the
project's code, so a developer's stack and data are never touched. A table first; the last line
of output is one JSON object of the figures.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import struct
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import fastavro
import orjson
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from rich.console import Console
from rich.table import Table

from bench.harness import bench_settings, bench_stack_up, process_tree, settle_heap
from bench.loadgen import LoadResult, build_request, run_load
from chatstream.ids import uuid7
from chatstream.readiness import wait_ready
from chatstream.settings import Settings
from gateway.auth import issue_token, local_secret
from infra.local import stack
from pipelines.topics import CHAT_ACTIONS

TOPIC = CHAT_ACTIONS.name
PRODUCER_CONFIG = {"enable.idempotence": True, "acks": "all", "linger.ms": 5, "compression.type": "lz4",
                   "batch.size": 1_000_000, "queue.buffering.max.messages": 1_000_000}  # fmt: skip


@dataclass(frozen=True)
class Plan:
    events: int
    single_requests: int
    connections: int
    paced_s: float
    warm_up_s: float


# quick keeps full's event count: the sinks drain 40,000 records in a fraction of a second, so
# a flush's fixed latency (the last one's write and commit) outweighed the throughput measured
QUICK = Plan(events=200_000, single_requests=4_000, connections=16, paced_s=10, warm_up_s=5)
WARM_UP = 2_000
FULL = Plan(events=200_000, single_requests=20_000, connections=16, paced_s=30, warm_up_s=15)


def make_events(n: int) -> list[dict[str, Any]]:
    """Chat actions as a client sends them (JSON-ready), all of one tenant and user."""
    start = int(time.time() * 1000) - n
    events = []
    for i in range(n):
        at = start + i
        events.append({"type": "message_sent", "event_id": uuid7(at), "occurred_at": at,
                       "conversation_id": f"conv-{i % 997}", "session_id": f"sess-{i % 331}",
                       "client": "bench/1", "message_sent": {"message_id": f"m{i}", "text_length": 20 + i % 400,
                                                             "token_count": 5 + i % 100, "model": "gpt-4o"}})  # fmt: skip
    return events


def as_record(event: dict[str, Any], tenant: str, user: str) -> dict[str, Any]:
    record = {k: v for k, v in event.items() if k != "type"}
    record.update(tenant_id=tenant, user_id=user, trace_id=uuid.uuid4().hex, action="MESSAGE_SENT")
    # the union branch named up front (fastavro's tuple notation), as the gateway does
    record["message_sent"] = ("io.chatstream.events.MessageSent", record["message_sent"])
    return record


def raw_produce(settings: Settings, topic: str, records: list[dict[str, Any]], schema: dict[str, Any], schema_id: int) -> float:
    """(a): the baseline loop; returns events/s (until every record is acknowledged)."""
    parsed = fastavro.parse_schema(schema)
    header = struct.pack(">bI", 0, schema_id)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, **PRODUCER_CONFIG})
    started = time.perf_counter()
    for record in records:
        buffer = io.BytesIO()
        buffer.write(header)
        fastavro.schemaless_writer(buffer, parsed, record)
        producer.produce(topic, buffer.getvalue(), record["conversation_id"].encode())
        producer.poll(0)
    assert producer.flush(120) == 0
    return len(records) / (time.perf_counter() - started)


def gateway_rss_mb(pid: int) -> float:
    """Peak RSS (VmHWM) of the gateway: every process of it, summed."""
    total_kb = 0
    for member in process_tree(pid):
        with open(f"/proc/{member}/status") as status:
            total_kb += next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    return total_kb / 1024


def run_ingest_bench(base: Settings, *, quick: bool, gateway_workers: int, console: Console) -> dict[str, float]:
    plan = QUICK if quick else FULL
    say = console.log
    settings, contract, schema_id = bench_stack_up(base, say)
    run = uuid.uuid4().hex[:8]
    tenant, user = f"bench-{run}", "bench-user"
    events = make_events(plan.events)
    records = [as_record(e, tenant, user) for e in events]

    raw_topic = f"bench.raw.{run}"
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    admin.create_topics([NewTopic(raw_topic, 6, 1)])[raw_topic].result(timeout=30)
    warm_topic = f"bench.warm.{run}"  # a few records to warm each sink's path before its timing
    admin.create_topics([NewTopic(warm_topic, 6, 1)])[warm_topic].result(timeout=30)
    warm_records = [as_record(e, tenant, user) for e in make_events(WARM_UP)]  # ids of their own
    raw_produce(settings, warm_topic, warm_records, contract.schema, schema_id)
    settle_heap()
    say(f"(a) raw fastavro + produce: {plan.events:,} events")
    raw_eps = raw_produce(settings, raw_topic, records, contract.schema, schema_id)

    token = issue_token(local_secret(settings.state_dir), tenant=tenant, user=user,
                        audience=settings.jwt_audience, issuer=settings.jwt_issuer, ttl_s=3600)  # fmt: skip
    host, port = settings.gateway_host, settings.gateway_listen_port
    batch_requests = [build_request(host, port, "/v1/events", orjson.dumps({"events": events[i : i + 100]}), token)
                      for i in range(0, len(events), 100)]  # fmt: skip
    singles = [build_request(host, port, "/v1/events", orjson.dumps(e), token) for e in events[: plan.single_requests]]
    gateway = subprocess.Popen(
        [sys.executable, "-m", "chatstream", "gateway", "--workers", str(gateway_workers)],
        env={**os.environ, "CHATSTREAM_STATE_DIR": str(settings.state_dir), "CHATSTREAM_PORT_BASE": str(settings.port_base),
             "CHATSTREAM_RATE_LIMIT_EVENTS_PER_S": "1e9", "CHATSTREAM_RATE_LIMIT_BURST": "1e9"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        if not wait_ready(settings.gateway_url, timeout_s=60, alive=lambda: gateway.poll() is None):
            raise RuntimeError("the bench gateway did not get ready")
        say(f"warming the gateway and the broker up for {plan.warm_up_s:.0f}s")
        warm_until = time.monotonic() + plan.warm_up_s
        while time.monotonic() < warm_until:  # the broker's JIT and the workers' first requests
            asyncio.run(run_load(host, port, batch_requests[:200], connections=plan.connections))
        say(f"(b) gateway ({gateway_workers} worker(s)), batches of 100: {len(batch_requests):,} requests "
            f"at concurrency {plan.connections}")  # fmt: skip
        saturated = asyncio.run(run_load(host, port, batch_requests, connections=plan.connections))
        batch_eps = saturated.requests * 100 / saturated.elapsed_s
        half_rate = batch_eps / 2 / 100  # requests/s at half the events/s
        paced_count = max(50, int(half_rate * plan.paced_s))
        paced_requests = (batch_requests * (paced_count // len(batch_requests) + 1))[:paced_count]
        say(f"(b) paced at half that rate: {half_rate * 100:,.0f} events/s for {plan.paced_s:.0f}s")
        paced = asyncio.run(run_load(host, port, paced_requests, connections=plan.connections * 2, rate_per_s=half_rate))
        say(f"(c) gateway, one event per request: {len(singles):,} requests")
        single = asyncio.run(run_load(host, port, singles, connections=plan.connections))
        rss = gateway_rss_mb(gateway.pid)
    finally:
        gateway.terminate()
        gateway.wait(timeout=60)
    bad = {s: n for r in (saturated, paced, single) for s, n in r.statuses.items() if s != 202}
    if bad:
        raise RuntimeError(f"the gateway refused requests during the benchmark: {bad}")

    # (d) and (e): each figure from a process of its own (bench.stores): the sinks drain the
    # raw topic into fresh tables; the raw baselines write the same rows in consumer order
    def store(what: str) -> float:
        say(f"({'d' if what.startswith('clickhouse') else 'e'}) {what}: {plan.events:,} records")
        return run_store_measure(settings, what, raw_topic, (warm_topic, WARM_UP), plan.events)

    ch_sink_rps = store("clickhouse-sink")
    ch_raw_rps = store("clickhouse-raw")
    pg_sink_rps = store("postgres-sink")
    pg_raw_rps = store("postgres-raw")
    pg_raw_time_order_rps = store("postgres-raw-by-time")
    admin.delete_topics([raw_topic, warm_topic])

    figures = {
        "raw_produce_eps": raw_eps,
        "gateway_batch_eps": batch_eps,
        "gateway_batch_p50_ms": paced.percentile_ms(0.50),
        "gateway_batch_p99_ms": paced.percentile_ms(0.99),
        "gateway_single_rps": single.requests / single.elapsed_s,
        "gateway_single_p99_ms": single.percentile_ms(0.99),
        "clickhouse_sink_rps": ch_sink_rps,
        "clickhouse_raw_rps": ch_raw_rps,
        "postgres_sink_rps": pg_sink_rps,
        "postgres_raw_rps": pg_raw_rps,
        "postgres_raw_time_order_rps": pg_raw_time_order_rps,
        "gateway_rss_mb": rss,
        "gateway_workers": gateway_workers,
    }
    _report(console, plan, figures, saturated, single)
    return {k: round(v, 2) for k, v in figures.items()}


def run_store_measure(settings: Settings, what: str, topic: str, warm: tuple[str, int], expected: int) -> float:
    """One of (d)/(e) in a fresh process (``python -m bench.stores``); its rows/s."""
    env = {**os.environ, "CHATSTREAM_STATE_DIR": str(settings.state_dir), "CHATSTREAM_PORT_BASE": str(settings.port_base)}
    done = subprocess.run([sys.executable, "-m", "bench.stores", what, topic, warm[0], str(warm[1]), str(expected)],
                          capture_output=True, text=True, env=env)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"bench.stores {what} failed:\n{done.stderr[-3000:]}")
    figure: float = json.loads(done.stdout.strip().splitlines()[-1])["rows_per_s"]
    return figure


def _report(console: Console, plan: Plan, f: dict[str, float], saturated: LoadResult, single: LoadResult) -> None:
    table = Table(title=f"ingest benchmark ({plan.events:,} events, gateway with {f['gateway_workers']:.0f} worker(s); "
                        "ratios against raw baselines of this run)")  # fmt: skip
    for column in ("measure", "value", "baseline / ratio", "target"):
        table.add_column(column)
    table.add_row("(a) raw fastavro + produce", f"{f['raw_produce_eps']:,.0f} events/s", "baseline", "")
    table.add_row("(b) gateway, batches of 100", f"{f['gateway_batch_eps']:,.0f} events/s",
                  f"{f['gateway_batch_eps'] / f['raw_produce_eps']:.2f}x of (a)", ">= 0.5x and >= 30,000/s")  # fmt: skip
    table.add_row("    saturated p50 / p99", f"{saturated.percentile_ms(0.5):.1f} / {saturated.percentile_ms(0.99):.1f} ms", "", "")
    table.add_row("    at half rate p50 / p99", f"{f['gateway_batch_p50_ms']:.1f} / {f['gateway_batch_p99_ms']:.1f} ms", "", "p99 < 50 ms")
    table.add_row("(c) gateway, 1 event/request", f"{f['gateway_single_rps']:,.0f} req/s",
                  f"p50 {single.percentile_ms(0.5):.1f} ms, p99 {f['gateway_single_p99_ms']:.1f} ms", "")  # fmt: skip
    table.add_row("(d) ClickHouse sink", f"{f['clickhouse_sink_rps']:,.0f} rows/s",
                  f"{f['clickhouse_sink_rps'] / f['clickhouse_raw_rps']:.2f}x of raw {f['clickhouse_raw_rps']:,.0f}/s", ">= 0.7x")  # fmt: skip
    table.add_row("(e) PostgreSQL sink", f"{f['postgres_sink_rps']:,.0f} rows/s",
                  f"{f['postgres_sink_rps'] / f['postgres_raw_rps']:.2f}x of raw COPY {f['postgres_raw_rps']:,.0f}/s", ">= 0.7x")  # fmt: skip
    table.add_row("    raw COPY, rows in event-time order", f"{f['postgres_raw_time_order_rps']:,.0f} rows/s",
                  f"sink {f['postgres_sink_rps'] / f['postgres_raw_time_order_rps']:.2f}x of it", "(reference)")  # fmt: skip
    table.add_row("gateway peak RSS, all processes", f"{f['gateway_rss_mb']:.0f} MB", "", "< 250 MB")
    console.print(table)


def main(settings: Settings, quick: bool, gateway_workers: int) -> None:
    console = Console()
    try:
        figures = run_ingest_bench(settings, quick=quick, gateway_workers=gateway_workers, console=console)
    finally:
        console.log("stopping the bench stack")
        stack.down(bench_settings(settings))
    print(json.dumps(figures))
