"""Engagement benchmark: the Flink job's throughput, its freshness, and the analytics API's latency.

(a) sustained: N chat actions preloaded into ``chat.actions.v1``; the engagement job
    (``chatstream job engagement``, a MiniCluster, a consumer group and checkpoints of this run's
    own) drains them Kafka to Kafka while a trickle of live events goes on beside. Events/s from
    the group's offsets, which the job commits at each checkpoint, between the first checkpoint
    that made progress and the one that reached the end: the rate the job keeps up with, so a
    producer at that rate leaves the lag flat (JIT warm-up included; ``warm_eps`` over the
    drain's second half). Raw baseline in the same run: a confluent-kafka consumer reading the
    same records (bytes only).
(b) freshness: the gateway, the ClickHouse sink and the job running; events sent through the
    gateway at a steady rate, stamped "now". For each one-minute window of each tenant: when its
    row is first visible in ClickHouse, less the window's end plus the job's watermark delay
    (out-of-orderness + allowed lateness), the earliest the job may emit it.
(c) api: a large table made inside ClickHouse (``bench.analytics_data``; the bench stack's
    analytics tables emptied first), then the dashboard's
    queries through the gateway's analytics API (admin token; every figure over 1 h, 24 h and
    7 d, all tenants and one tenant), against the same statements sent to ClickHouse directly
    (raw baseline, same run). p50/p95 of each.

It runs on the bench stack (``<state>/bench-stack``, port base 24000). A table first; the last
line of output is one JSON object: ``sustained_eps``, ``freshness_p95_s``, ``api_p95_ms``,
``events_in_clickhouse`` and the rest of the figures.
"""

from __future__ import annotations

import asyncio
import io
import json
import multiprocessing
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import fastavro
import httpx
from confluent_kafka import Consumer, Producer, TopicPartition
from rich.console import Console
from rich.table import Table

from bench.analytics_data import MODELS, Shape, clear, fill
from bench.harness import PlatformProcess, bench_stack_up, no_ctrl_c, settle_heap
from chatstream.ids import uuid7
from chatstream.lag import end_offsets
from chatstream.settings import Settings
from chatstream.stores import clickhouse_client
from gateway import analytics_sql as sql
from gateway.analytics_params import Scope
from gateway.auth import issue_token, local_secret
from infra.local import stack
from jobs.engagement.config import EngagementSettings
from pipelines.topics import CHAT_ACTIONS

TOPIC = CHAT_ACTIONS.name
PRODUCER = {"enable.idempotence": True, "acks": "all", "linger.ms": 5, "compression.type": "lz4",
            "batch.size": 1_000_000, "queue.buffering.max.messages": 2_000_000}  # fmt: skip


@dataclass(frozen=True)
class Plan:
    preload: int  # (a) events
    rate_eps: int  # (b) gateway events/s
    steady_s: float  # (b) how long
    api_events: int  # (c) events in ClickHouse
    api_rounds: int  # (c) times each query runs


QUICK = Plan(preload=1_000_000, rate_eps=200, steady_s=140, api_events=1_000_000, api_rounds=1)
FULL = Plan(preload=4_000_000, rate_eps=500, steady_s=330, api_events=10_000_000, api_rounds=5)
TENANTS = 16
TRICKLE_EPS = 100
USERS_PER_TENANT = 50


def percentile(values: list[float], q: float) -> float | None:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else None


# ---- (a) sustained ------------------------------------------------------------------------------


def who(i: int, run: str) -> tuple[str, str, str]:
    """(tenant, user, conversation) of the ``i``-th chat action."""
    tenant = f"eng-{run}-t{i % TENANTS}"
    user = f"{tenant}-u{(i // TENANTS) % USERS_PER_TENANT}"
    return tenant, user, f"{user}-c{i % 7}"


def chat_action(i: int, at_ms: int, run: str) -> dict[str, Any]:
    """One of a mix of chat actions (messages mostly) for the job to aggregate, as an Avro record."""
    tenant, user, conversation = who(i, run)
    record: dict[str, Any] = {
        "event_id": str(uuid7(at_ms)), "occurred_at": at_ms, "tenant_id": tenant, "user_id": user,
        "conversation_id": conversation, "session_id": f"{user}-s", "trace_id": uuid.uuid4().hex,
        "client": "bench/1",
    }  # fmt: skip
    kind = i % 10
    if kind < 7:
        record["action"] = "MESSAGE_SENT"
        record["message_sent"] = ("io.chatstream.events.MessageSent", {
            "message_id": f"m{i}", "text_length": 20 + i % 400, "token_count": 5 + i % 100,
            "model": MODELS[i % len(MODELS)]})  # fmt: skip
    elif kind < 9:
        record["action"] = "FEEDBACK_GIVEN"
        record["feedback_given"] = ("io.chatstream.events.FeedbackGiven",
                                    {"message_id": f"m{i - 1}", "rating": "UP" if i % 3 else "DOWN"})  # fmt: skip
    else:
        record["action"] = "REGENERATE_REQUESTED"
        record["regenerate_requested"] = ("io.chatstream.events.RegenerateRequested", {"message_id": f"m{i - 2}"})
    return record


def encoded(parsed: Any, header: bytes, record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    buffer.write(header)
    fastavro.schemaless_writer(buffer, parsed, record)
    return buffer.getvalue()


def partition_of(key: str, partitions: int) -> int:
    return zlib.crc32(key.encode()) % partitions


def _preload_part(bootstrap: str, n: int, start_ms: int, run: str, schema: dict[str, Any], schema_id: int,
                  partitions: int, mine: tuple[int, ...]) -> int:  # fmt: skip
    """One preload worker: the records of partitions ``mine`` (so each partition is written by one
    producer, in event-time order); the count written."""
    parsed = fastavro.parse_schema(schema)
    header = struct.pack(">bI", 0, schema_id)
    producer = Producer({"bootstrap.servers": bootstrap, **PRODUCER})
    written = 0
    for i in range(n):
        conversation = who(i, run)[2]
        partition = partition_of(conversation, partitions)
        if partition in mine:
            record = chat_action(i, start_ms + i, run)
            producer.produce(TOPIC, encoded(parsed, header, record), conversation.encode(), partition=partition)
            producer.poll(0)
            written += 1
    if producer.flush(300):
        raise RuntimeError("the preload was not acknowledged by Kafka")
    return written


def preload(settings: Settings, n: int, run: str, schema: dict[str, Any], schema_id: int, *, workers: int = 2) -> int:
    """``n`` chat actions, 1,000 per second of event time, ending now, written by ``workers``
    processes (one producer per partition); the event time of the last."""
    partitions = len(end_offsets(settings.kafka_bootstrap_servers, TOPIC))
    start_ms = int(time.time() * 1000) - n
    shares = [tuple(p for p in range(partitions) if p % workers == w) for w in range(workers)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        written = sum(pool.map(partial(_preload_part, settings.kafka_bootstrap_servers, n, start_ms, run, schema,
                                       schema_id, partitions), shares))  # fmt: skip
    if written != n:
        raise RuntimeError(f"the preload wrote {written:,} of {n:,} records")
    return start_ms + n - 1


class Trickle:
    """Live chat actions (``rate_eps``, stamped now, the run's tenants) on every partition while the
    job drains the preload: live traffic goes on during a catch-up, and a source with nothing to
    read would hold the job's offset commit for up to the Kafka reader's 10 s poll, lengthening
    the measured drain by a wait that is not work. Each partition's events stay in time order, and
    Flink keeps a watermark per partition, so none of the preload turns late."""

    def __init__(self, settings: Settings, run: str, schema: dict[str, Any], schema_id: int, rate_eps: int) -> None:
        self._args = (settings, run, fastavro.parse_schema(schema), struct.pack(">bI", 0, schema_id), rate_eps)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.sent = 0

    def __enter__(self) -> Trickle:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        settings, run, parsed, header, rate_eps = self._args
        producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, **PRODUCER})
        partitions = len(end_offsets(settings.kafka_bootstrap_servers, TOPIC))
        while not self._stop.wait(1 / rate_eps):
            record = chat_action(self.sent, int(time.time() * 1000), run)
            producer.produce(TOPIC, encoded(parsed, header, record), record["conversation_id"].encode(),
                             partition=self.sent % partitions)  # fmt: skip
            producer.poll(0)
            self.sent += 1
        producer.flush(30)


def raw_consume_eps(settings: Settings, start: dict[int, int], end: dict[int, int]) -> float:
    """The raw baseline: read the preloaded records (bytes only) with one confluent-kafka consumer."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": f"bench-raw-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False, "fetch.max.bytes": 52_428_800})  # fmt: skip
    consumer.assign([TopicPartition(TOPIC, p, o) for p, o in start.items()])
    wanted = sum(end[p] - start[p] for p in start)
    seen, began = 0, time.perf_counter()
    try:
        while seen < wanted:
            seen += sum(1 for m in consumer.consume(10_000, 1.0) if m.error() is None)
    finally:
        consumer.close()
    return wanted / (time.perf_counter() - began)


def committed(settings: Settings, group: str, partitions: list[int]) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": group})
    try:
        found = consumer.committed([TopicPartition(TOPIC, p) for p in partitions], timeout=10)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in found if tp.offset >= 0}


@dataclass(frozen=True)
class Drain:
    """How the job drained the preload, from its commits: (seconds since the first commit with
    progress, events done) at each commit that moved."""

    commits: list[tuple[float, int]]

    @property
    def seconds(self) -> float:
        return self.commits[-1][0] - self.commits[0][0]

    @property
    def eps(self) -> float:
        """Events/s from the first commit with progress to the one at the end (JIT warm-up in)."""
        return (self.commits[-1][1] - self.commits[0][1]) / self.seconds

    @property
    def warm_eps(self) -> float:
        """Events/s over the drain's second half, the JVM's code compiled."""
        half = next(c for c in self.commits if c[0] >= self.seconds / 2)
        if half == self.commits[-1]:
            return self.eps
        return (self.commits[-1][1] - half[1]) / (self.seconds - half[0])


def drain(settings: Settings, group: str, start: dict[int, int], end: dict[int, int],
          alive: Callable[[], bool], timeout_s: float) -> Drain:  # fmt: skip
    """Watch the job's committed offsets until they reach ``end`` (the preload's)."""
    total = sum(end[p] - start[p] for p in start)
    commits: list[tuple[float, int]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("the engagement job exited during the drain")
        offsets = committed(settings, group, list(start))
        done = sum(max(0, min(offsets.get(p, start[p]), end[p]) - start[p]) for p in start)
        now = time.monotonic()
        if done > (commits[-1][1] if commits else 0):
            commits.append((now, done))
        if done >= total:
            if len(commits) < 3:
                raise RuntimeError("the job drained the preload within two checkpoints: preload more events")
            return Drain([(t - commits[0][0], d) for t, d in commits])
        time.sleep(0.25)
    raise RuntimeError(f"the job did not drain {total:,} events within {timeout_s:.0f}s ({commits[-1][1] if commits else 0:,} done)")


# ---- (b) freshness ------------------------------------------------------------------------------


async def steady_traffic(settings: Settings, tokens: dict[tuple[str, str], str], rate_eps: int, duration_s: float) -> int:
    """Events through the gateway at ``rate_eps`` in batches of 10, the (tenant, user) tokens in
    turn, each event stamped now; the count accepted."""
    users = list(tokens)
    per_request = 10
    interval = per_request / rate_eps
    accepted, i = 0, 0
    async with httpx.AsyncClient(base_url=settings.gateway_url, timeout=30) as client:
        began = time.monotonic()
        while time.monotonic() - began < duration_s:
            tenant, user = users[i % len(users)]
            now = int(time.time() * 1000)
            events = [{"type": "message_sent", "event_id": str(uuid7(now)), "occurred_at": now,
                       "conversation_id": f"{user}-c{(i + k) % 3}",
                       "message_sent": {"message_id": f"m{i}-{k}", "text_length": 40, "model": MODELS[k % 3]}}
                      for k in range(per_request)]  # fmt: skip
            answer = await client.post("/v1/events", json={"events": events},
                                       headers={"Authorization": f"Bearer {tokens[(tenant, user)]}"})  # fmt: skip
            if answer.status_code != 202:
                raise RuntimeError(f"the gateway answered {answer.status_code}: {answer.text[:300]}")
            accepted += per_request
            i += 1
            await asyncio.sleep(max(0.0, began + i * interval - time.monotonic()))
    return accepted


def watch_windows(settings: Settings, tenants: list[str], until: Callable[[], bool]) -> dict[tuple[str, int], float]:
    """(tenant, window end ms) -> wall-clock ms its tenant row was first seen in ClickHouse."""
    client = clickhouse_client(settings)
    seen: dict[tuple[str, int], float] = {}
    try:
        while not until():
            rows = client.query(
                "SELECT tenant_id, toUnixTimestamp64Milli(window_end) FROM engagement_windows "
                "WHERE dimension = 'tenant' AND tenant_id IN {t:Array(String)}", parameters={"t": tenants}
            ).result_rows  # fmt: skip
            now = time.time() * 1000
            for tenant, end in rows:
                seen.setdefault((tenant, int(end)), now)
            time.sleep(0.25)
    finally:
        client.close()
    return seen


# ---- (c) api ------------------------------------------------------------------------------------


def api_queries(tenant: str, now_ms: int) -> list[tuple[str, str, dict[str, str], Callable[[Scope], sql.Statement]]]:
    """(name, path, query parameters, statement builder) of every dashboard query."""
    out: list[tuple[str, str, dict[str, str], Callable[[Scope], sql.Statement]]] = []
    for span_name, span_ms in (("1h", 3_600_000), ("24h", 86_400_000), ("7d", 7 * 86_400_000)):
        for who in (None, tenant):
            params = {"from": str((now_ms - span_ms) // 1000), "to": str(now_ms // 1000)}
            if who:
                params["tenant"] = who
            tag = f"{span_name}{'/tenant' if who else ''}"
            step = {"1h": 60, "24h": 600, "7d": 3600}[span_name]
            out.append((f"overview {tag}", "/v1/analytics/overview", params, sql.overview))
            for figure in sql.FIGURES:
                out.append((f"timeseries/{figure} {tag}", f"/v1/analytics/timeseries/{figure}", {**params, "step": str(step)},
                            partial(sql.timeseries, figure, step_s=step)))  # fmt: skip
            for what in ("users", "models", "tenants"):
                out.append((f"top/{what} {tag}", f"/v1/analytics/top/{what}", params,
                            partial(sql.top, what, "messages", limit=10)))  # fmt: skip
            out.append((f"funnel {tag}", "/v1/analytics/funnel", params, sql.funnel))
            out.append((f"retention {tag}", "/v1/analytics/retention", params, partial(sql.retention, days=(1, 7, 30))))
    return out


def api_latencies(settings: Settings, token: str, tenant: str, rounds: int) -> tuple[list[float], list[float], list[str]]:
    """(through the gateway ms, direct to ClickHouse ms, the slowest queries' names)."""
    now_ms = int(time.time() * 1000)
    queries = api_queries(tenant, now_ms)
    client = clickhouse_client(settings)
    api: list[float] = []
    raw: list[float] = []
    by_name: dict[str, float] = {}
    try:
        with httpx.Client(base_url=settings.gateway_url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as http:
            for _ in range(rounds):
                for name, path, params, build in queries:
                    began = time.perf_counter()
                    answer = http.get(path, params=params)
                    took = (time.perf_counter() - began) * 1000
                    if answer.status_code != 200:
                        raise RuntimeError(f"{name}: the API answered {answer.status_code}: {answer.text[:300]}")
                    api.append(took)
                    by_name[name] = max(by_name.get(name, 0.0), took)
                    scope = Scope(int(params["from"]) * 1000, int(params["to"]) * 1000, params.get("tenant"), None)
                    statement = build(scope)
                    began = time.perf_counter()
                    client.query(statement.sql, parameters=statement.parameters)
                    raw.append((time.perf_counter() - began) * 1000)
    finally:
        client.close()
    slowest = [f"{n} {ms:.0f} ms" for n, ms in sorted(by_name.items(), key=lambda kv: -kv[1])[:3]]
    return api, raw, slowest


# ---- the run ------------------------------------------------------------------------------------


def run_engagement_bench(base: Settings, *, quick: bool, console: Console) -> dict[str, Any]:
    plan = QUICK if quick else FULL
    say = console.log
    settings, contract, schema_id = bench_stack_up(base, say)
    run = uuid.uuid4().hex[:6]
    logs = settings.state_dir / "bench-logs"
    job_settings = EngagementSettings()
    group = f"bench-engagement-{run}"
    job_env = {"CHATSTREAM_ENGAGEMENT_GROUP_ID": group, "CHATSTREAM_ENGAGEMENT_CHECKPOINT_INTERVAL_S": "2",
               "CHATSTREAM_ENGAGEMENT_STARTUP_MODE": "timestamp",
               "CHATSTREAM_ENGAGEMENT_CHECKPOINT_DIR": (settings.state_dir / "flink" / f"bench-{run}").as_uri()}  # fmt: skip
    figures: dict[str, Any] = {}
    processes: list[PlatformProcess] = []
    try:
        # (a)
        start = end_offsets(settings.kafka_bootstrap_servers, TOPIC)
        job_env["CHATSTREAM_ENGAGEMENT_STARTUP_TIMESTAMP_MS"] = str(int(time.time() * 1000) - 1000)  # record (produce) time
        say(f"(a) preloading {plan.preload:,} chat actions")
        preload(settings, plan.preload, run, contract.schema, schema_id)
        end = end_offsets(settings.kafka_bootstrap_servers, TOPIC)
        settle_heap()
        say("(a) raw baseline: one consumer reads them")
        figures["raw_consume_eps"] = raw_consume_eps(settings, start, end)
        say(f"(a) the engagement job drains them (MiniCluster, checkpoints every 2 s, {TRICKLE_EPS} live events/s beside)")
        with Trickle(settings, run, contract.schema, schema_id, TRICKLE_EPS):
            job = PlatformProcess("engagement job", settings, ["job", "engagement", "--no-restore"], job_env,
                                  logs / f"job-{run}.log")  # fmt: skip
            processes.append(job)
            drained = drain(settings, group, start, end, job.alive, timeout_s=600)
        figures.update(sustained_eps=drained.eps, warm_eps=drained.warm_eps, drain_s=drained.seconds)
        say(f"(a) the job: {drained.eps:,.0f} events/s over {drained.seconds:.1f}s ({drained.warm_eps:,.0f} over its "
            f"second half); one raw consumer: {figures['raw_consume_eps']:,.0f} events/s")  # fmt: skip

        # (b)
        gateway = PlatformProcess("gateway", settings, ["gateway"], {}, logs / f"gateway-{run}.log")
        sink = PlatformProcess("ClickHouse sink", settings, ["sink", "clickhouse"], {}, logs / f"sink-{run}.log")
        processes += [gateway, sink]
        gateway.wait_ready(settings.gateway_url)
        sink.wait_ready(f"http://127.0.0.1:{settings.sink_port('clickhouse')}")
        secret = local_secret(settings.state_dir)
        tenants = [f"fresh-{run}-{i}" for i in range(4)]
        tokens = {(t, f"{t}-u{u}"): issue_token(secret, tenant=t, user=f"{t}-u{u}", audience=settings.jwt_audience,
                                                issuer=settings.jwt_issuer, ttl_s=3600)
                  for t in tenants for u in range(5)}  # fmt: skip
        say(f"(b) {plan.rate_eps} events/s through the gateway for {plan.steady_s:.0f}s; windows watched in ClickHouse")
        finished = {"traffic": False}
        began_ms = time.time() * 1000
        ended_ms = [began_ms + plan.steady_s * 1000]
        loop_result: dict[str, int] = {}

        async def traffic() -> None:
            loop_result["accepted"] = await steady_traffic(settings, tokens, plan.rate_eps, plan.steady_s)

        failed: list[BaseException] = []

        def drive() -> None:
            try:
                asyncio.run(traffic())
                ended_ms[0] = time.time() * 1000
                time.sleep(10)  # the last window measured is emitted by the traffic's end: its rows' landing
            except BaseException as exc:  # noqa: BLE001 - re-raised by the main thread
                failed.append(exc)
            finally:
                finished["traffic"] = True

        driver = threading.Thread(target=drive, daemon=True)
        driver.start()
        seen = watch_windows(settings, tenants, lambda: finished["traffic"])
        driver.join()
        if failed:
            raise failed[0]
        delay = job_settings.watermark_delay_ms
        # windows the traffic covered whole and event time passed by the watermark delay (a window
        # ending closer to the traffic's end waits for events that never come)
        lags = [(at - (window_end + delay)) / 1000 for (_t, window_end), at in seen.items()
                if window_end - 60_000 >= began_ms and window_end + delay <= ended_ms[0]]  # fmt: skip
        figures.update(freshness_p50_s=percentile(lags, 0.5), freshness_p95_s=percentile(lags, 0.95),
                       freshness_windows=len(lags), accepted_events=loop_result.get("accepted", 0))  # fmt: skip
        say(f"(b) {len(lags)} windows, freshness p50/p95 {shown(figures['freshness_p50_s'])}/{shown(figures['freshness_p95_s'])} s")

        # (c)
        say(f"(c) {plan.api_events:,} events made in ClickHouse (chat_events, ai_requests, engagement windows)")
        client = clickhouse_client(settings)
        try:
            shape = Shape(events=plan.api_events, end_ms=int(time.time() * 1000), prefix=f"big-{run}-")
            clear(client)  # the figure is over the plan's events, not every earlier run's too
            made = fill(client, shape)
            (events_in_clickhouse,) = client.query("SELECT count() FROM chat_events").result_rows[0]
        finally:
            client.close()
        admin = issue_token(secret, tenant="bench-admin", user="bench", audience=settings.jwt_audience,
                            issuer=settings.jwt_issuer, ttl_s=3600, roles=["admin"])  # fmt: skip
        say(f"(c) the dashboard's queries, {plan.api_rounds} round(s), through the API and directly")
        api, raw, slowest = api_latencies(settings, admin, f"big-{run}-3", plan.api_rounds)
        figures.update(api_p50_ms=percentile(api, 0.5), api_p95_ms=percentile(api, 0.95),
                       raw_p50_ms=percentile(raw, 0.5), raw_p95_ms=percentile(raw, 0.95),
                       api_queries=len(api), events_in_clickhouse=int(events_in_clickhouse),
                       made=made, slowest=slowest)  # fmt: skip
    finally:
        with no_ctrl_c():
            for process in reversed(processes):
                process.stop()
            say("stopping the bench stack")
            stack.down(settings)
    return figures


def shown(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def report(console: Console, figures: dict[str, Any]) -> None:
    table = Table("measure", "chatstream", "raw baseline", "ratio", "target")
    table.add_row("(a) events/s, Kafka to Kafka", f"{figures['sustained_eps']:,.0f} ({figures['warm_eps']:,.0f} warm)",
                  f"{figures['raw_consume_eps']:,.0f} (one consumer)",
                  f"{figures['sustained_eps'] / figures['raw_consume_eps']:.2f}x", ">= 30,000")  # fmt: skip
    table.add_row("(b) freshness p50 / p95", f"{shown(figures['freshness_p50_s'])} / {shown(figures['freshness_p95_s'])} s",
                  "", "", "<= 5 s after window end + lateness")  # fmt: skip
    table.add_row("(c) API p50 / p95", f"{figures['api_p50_ms']:.0f} / {figures['api_p95_ms']:.0f} ms",
                  f"{figures['raw_p50_ms']:.0f} / {figures['raw_p95_ms']:.0f} ms (SQL direct)",
                  f"{figures['api_p95_ms'] / figures['raw_p95_ms']:.2f}x", "p95 <= 200 ms over 10M events")  # fmt: skip
    console.print(table)
    console.print(f"events in ClickHouse: {figures['events_in_clickhouse']:,}; slowest: {', '.join(figures['slowest'])}")


def main(settings: Settings, quick: bool) -> None:
    console = Console(stderr=True)
    figures = run_engagement_bench(settings, quick=quick, console=console)
    report(console, figures)
    keys = ("sustained_eps", "freshness_p95_s", "api_p95_ms", "events_in_clickhouse", "raw_consume_eps", "warm_eps", "drain_s",
            "freshness_p50_s", "freshness_windows", "api_p50_ms", "raw_p50_ms", "raw_p95_ms", "api_queries")  # fmt: skip
    print(json.dumps({k: round(figures[k], 2) if isinstance(figures[k], float) else figures[k] for k in keys}))

