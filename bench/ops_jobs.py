"""``chatstream bench ops-jobs``: do the anomaly and scaling jobs keep up with 10,000 metric points/s?

On the bench stack (``bench.harness``), against a raw baseline in the same run:

1. Preload: ``points`` ``ops.metrics.v1`` records, as a fleet publishes them: ``services`` x
   ``instances`` x 10 measurements every 10 s of event time, ending now (two producer processes).
2. Raw baseline: one confluent-kafka consumer reads the preload and decodes every record with
   fastavro, nothing else: what any Python reader of these records does at least.
3. Each job, one worker as ``chatstream job anomaly|scaling`` starts it and then two (one per core
   of this machine, in one group, ``CHATSTREAM_JOB_WEB_PORT`` apart), its group set to the
   preload's first offsets while it is stopped: points/s from its reader's first commit to the one
   that covers the preload (the reader starts once the worker runs, its tables recovered, and
   commits each batch once its points are in Kafka; polled every 0.1 s), and end to end, to the
   moment its second stage (the series topic) has caught up too. The scaling job forecasts every service
   (``requests_per_s``); its forecasters do not refit in the drain (less than
   ``min_history_minutes`` of history), so the bench times one refit on eight days of minutes apart.

A job keeps up with 10,000 points/s when its end-to-end rate is at least that. Keys ``*_2w`` are
the two-worker runs.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import struct
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import fastavro
import numpy as np
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from rich.console import Console
from rich.table import Table

from bench.engagement import encoded
from bench.harness import PlatformProcess, bench_settings, bench_stack_up, no_ctrl_c
from chatstream.avro.catalog import load_catalog
from chatstream.avro.registry import ContractRegistry
from chatstream.lag import committed_offsets, end_offsets
from chatstream.settings import Settings
from infra.local import stack
from jobs.minute_series import points_group, series_topic_name
from jobs.scaling.config import ServiceTarget
from jobs.scaling.features import History
from jobs.scaling.forecaster import Forecaster, ForecasterConfig
from pipelines.topics import ENGAGEMENT, METRICS

TARGET_PPS = 10_000
WORKERS = (1, 2)  # one worker, and one per core of this machine
NAMES = ("requests_per_s", "errors_per_s", "events_per_s", "rejections_per_s", "latency_p50_s", "latency_p95_s",
         "cpu_cores", "memory_bytes", "consumer_lag", "replicas")  # fmt: skip
INTERVAL_MS = 10_000
PRODUCER = {"linger.ms": 20, "batch.size": 1_000_000, "compression.type": "lz4", "queue.buffering.max.messages": 500_000}


@dataclass(frozen=True)
class Plan:
    points: int
    services: int = 20
    instances: int = 5

    @property
    def per_interval(self) -> int:
        return self.services * self.instances * len(NAMES)


def metric(i: int, plan: Plan, start_ms: int, run: str) -> dict[str, Any]:
    """Record ``i`` of the preload: interval i // per_interval, then service, instance, name."""
    interval, rest = divmod(i, plan.per_interval)
    service, rest = divmod(rest, plan.instances * len(NAMES))
    instance, name = divmod(rest, len(NAMES))
    at_ms = start_ms + interval * INTERVAL_MS
    value = 100.0 * (1 + service) * (1.2 + np.sin(2 * np.pi * at_ms / 3_600_000)) / plan.instances if NAMES[name] != "replicas" else 1.0
    return {
        "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run}/{i}")), "occurred_at": at_ms, "tenant_id": "_platform",
        "user_id": "svc:bench", "conversation_id": None, "session_id": None, "trace_id": uuid.uuid4().hex,
        "client": "bench", "service": f"bench-{run}-{service}", "instance": f"i{instance}", "name": NAMES[name],
        "value": float(value), "unit": None, "labels": {},
    }  # fmt: skip


def _preload_part(bootstrap: str, plan: Plan, start_ms: int, run: str, schema: dict[str, Any], schema_id: int,
                  workers: int, mine: int) -> int:  # fmt: skip
    parsed = fastavro.parse_schema(schema)
    header = struct.pack(">bI", 0, schema_id)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, **PRODUCER})
    written = 0
    for i in range(plan.points):
        if (i % plan.per_interval) // (plan.instances * len(NAMES)) % workers != mine:
            continue  # another worker's service: each service's records come from one producer, in order
        record = metric(i, plan, start_ms, run)
        producer.produce(METRICS.name, encoded(parsed, header, record), record["service"].encode())
        producer.poll(0)
        written += 1
    if producer.flush(300):
        raise RuntimeError("the preload was not acknowledged by Kafka")
    return written


def preload(settings: Settings, plan: Plan, run: str, schema: dict[str, Any], schema_id: int, workers: int = 2) -> None:
    intervals = -(-plan.points // plan.per_interval)
    start_ms = int(time.time() * 1000) - intervals * INTERVAL_MS
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        written = sum(pool.map(partial(_preload_part, settings.kafka_bootstrap_servers, plan, start_ms, run, schema, schema_id,
                                       workers), range(workers)))  # fmt: skip
    if written != plan.points:
        raise RuntimeError(f"the preload wrote {written:,} of {plan.points:,} records")


def raw_decode_pps(settings: Settings, start: dict[int, int], end: dict[int, int], schema: dict[str, Any]) -> float:
    """The raw baseline: read and decode the preload with one consumer and fastavro."""
    parsed = fastavro.parse_schema(schema)
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": f"bench-raw-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False, "fetch.max.bytes": 52_428_800})  # fmt: skip
    consumer.assign([TopicPartition(METRICS.name, p, o) for p, o in start.items()])
    wanted = sum(end[p] - start[p] for p in start)
    seen, began = 0, time.perf_counter()
    try:
        while seen < wanted:
            for message in consumer.consume(10_000, 1.0):
                value = message.value()
                if message.error() is None and value is not None:
                    fastavro.schemaless_reader(io.BytesIO(value[5:]), parsed)
                    seen += 1
    finally:
        consumer.close()
    return wanted / (time.perf_counter() - began)


def set_group_offsets(settings: Settings, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Where ``group`` (stopped) resumes ``topic``."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p, o) for p, o in offsets.items()])
    for future in admin.alter_consumer_group_offsets([request]).values():
        future.result(timeout=30)


@dataclass(frozen=True)
class JobRun:
    read_pps: float  # first record read to the last
    end_to_end_pps: float  # first record read to the series topic caught up
    seconds: float


def run_job(settings: Settings, job: str, app_id: str, port: int, start: dict[int, int], end: dict[int, int],
            env: dict[str, str], timeout_s: float, workers: int = 1) -> JobRun:  # fmt: skip
    """One job (``workers`` workers in its group, started together) over the preload; see the
    module docstring."""
    reader = points_group(app_id)
    set_group_offsets(settings, reader, METRICS.name, start)
    series = series_topic_name(app_id)
    # earlier runs' points, other benches' windows: not this run's work
    for group, other in ((app_id, series), (reader, ENGAGEMENT.name)):
        if other in _topics(settings):
            set_group_offsets(settings, group, other, end_offsets(settings.kafka_bootstrap_servers, other))
    wanted = sum(end[p] - start[p] for p in start)
    ports = [port + 1000 * w for w in range(workers)]  # the first on the job's own port, the others beside it
    processes = [PlatformProcess(f"{job}-{w}", settings, ["job", job],
                                 {"CHATSTREAM_OPS_METRICS_INTERVAL_S": "0", "CHATSTREAM_JOB_WEB_PORT": str(p), **env},
                                 settings.state_dir / "logs" / f"bench-{job}-{w}.log") for w, p in enumerate(ports)]  # fmt: skip
    try:
        first = last = None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and all(p.alive() for p in processes):
            # the reader commits each batch once its points are in Kafka: its commits are the progress
            done = committed_offsets(settings.kafka_bootstrap_servers, reader, METRICS.name, list(end))
            read = sum(max(0, min(done.get(p, 0), end[p]) - start[p]) for p in start)
            now = time.monotonic()
            if read > 0 and first is None:
                first = (now, read)
            if read >= wanted:
                last = (now, read)
                break
            time.sleep(0.1)
        if first is None or last is None:
            raise RuntimeError(f"the {job} job did not read the preload within {timeout_s:.0f}s; see {processes[0].log_file}")
        while time.monotonic() < deadline:  # the second stage: the series topic caught up
            ends = end_offsets(settings.kafka_bootstrap_servers, series)
            done = committed_offsets(settings.kafka_bootstrap_servers, app_id, series, list(ends))
            if all(done.get(p, 0) >= o for p, o in ends.items()):
                break
            time.sleep(0.25)
        else:
            raise RuntimeError(f"the {job} job's series stage did not catch up; see {processes[0].log_file}")
        finished = time.monotonic()
        for process, p in zip(processes, ports):
            process.wait_ready(f"http://{settings.gateway_host}:{p}", timeout_s=30)  # it ran as it should
    finally:
        for process in processes:
            process.stop()
    read_s = max(last[0] - first[0], 1e-3)
    return JobRun((last[1] - first[1]) / read_s, (wanted - first[1]) / max(finished - first[0], 1e-3), finished - first[0])


def _topics(settings: Settings) -> set[str]:
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    return set(admin.list_topics(timeout=10).topics)


def refit_seconds(days: int = 8) -> float:
    """One scaling forecaster's refit on ``days`` of minutes (what each service costs per refit)."""
    minutes = days * 1440
    t = np.arange(minutes, dtype=np.float64) * 60
    values = 1000 * (1.2 + np.sin(2 * np.pi * t / 86_400)) * np.random.default_rng(0).normal(1, 0.05, minutes)
    target = ServiceTarget(metric="requests_per_s", capacity_per_replica=100)
    forecaster = Forecaster(ForecasterConfig(step_s=60, horizon_s=target.horizon_minutes * 60, max_train_s=days * 86_400))
    began = time.perf_counter()
    forecaster.fit(History.of(t, values, 60))
    return time.perf_counter() - began


def run_ops_jobs_bench(base: Settings, *, quick: bool, say: Any) -> dict[str, float]:
    plan = Plan(points=200_000 if quick else 600_000)
    settings, _, _ = bench_stack_up(base, say)
    contract = load_catalog()[METRICS.name]
    with ContractRegistry(settings.schema_registry_url) as registry:
        schema_id = registry.register(contract).schema_id
    run = uuid.uuid4().hex[:6]
    start = end_offsets(settings.kafka_bootstrap_servers, METRICS.name)
    say(f"preloading {plan.points:,} metric records ({plan.services} services x {plan.instances} instances x {len(NAMES)})")
    preload(settings, plan, run, contract.schema, schema_id)
    end = end_offsets(settings.kafka_bootstrap_servers, METRICS.name)
    say("raw baseline: one consumer reading and decoding the preload")
    raw = raw_decode_pps(settings, start, end, contract.schema)
    figures: dict[str, float] = {"points": float(plan.points), "raw_decode_pps": round(raw)}
    services = {f"bench-{run}-{s}": {"metric": "requests_per_s", "capacity_per_replica": 100, "max_replicas": 50}
                for s in range(plan.services)}  # fmt: skip
    jobs = (
        ("anomaly", "chatstream-anomaly", settings.anomaly_port, {"CHATSTREAM_ANOMALY_IDLE_CLOSE_S": "3600"}),
        ("scaling", "chatstream-scaling", settings.scaling_port,
         {"CHATSTREAM_SCALING_SERVICES": json.dumps(services), "CHATSTREAM_SCALING_IDLE_CLOSE_S": "3600"}),
    )  # fmt: skip
    for job, app_id, port, env in jobs:
        for workers in WORKERS:
            say(f"the {job} job over the preload, {workers} worker{'s' if workers > 1 else ''}")
            result = run_job(settings, job, app_id, port, start, end, env, timeout_s=600, workers=workers)
            suffix = "" if workers == 1 else f"_{workers}w"
            figures[f"{job}_read_pps{suffix}"] = round(result.read_pps)
            figures[f"{job}_pps{suffix}"] = round(result.end_to_end_pps)
            figures[f"{job}_vs_raw{suffix}"] = round(result.end_to_end_pps / raw, 3)
    say("one scaling refit on eight days of minutes")
    figures["scaling_refit_s"] = round(refit_seconds(), 2)
    return figures


def report(console: Console, figures: dict[str, float]) -> None:
    table = Table(title=f"ops jobs over {figures['points']:,.0f} metric records (target: >= {TARGET_PPS:,} points/s each)")
    for column in ("", "points/s", "vs raw", "target met"):
        table.add_column(column, justify="right" if column else "left")
    table.add_row("raw: consume + fastavro decode", f"{figures['raw_decode_pps']:,.0f}", "baseline", "")
    for job in ("anomaly", "scaling"):
        for workers in WORKERS:
            suffix = "" if workers == 1 else f"_{workers}w"
            pps = figures[f"{job}_pps{suffix}"]
            table.add_row(f"{job} job, {workers} worker{'s' if workers > 1 else ''}, end to end "
                          f"(read: {figures[f'{job}_read_pps{suffix}']:,.0f}/s)", f"{pps:,.0f}",
                          f"{figures[f'{job}_vs_raw{suffix}']:.2f}x", "yes" if pps >= TARGET_PPS else "no")  # fmt: skip
    console.print(table)
    console.print(f"scaling forecaster refit on 8 days of minutes: {figures['scaling_refit_s']:.2f} s per service "
                  "(every refit_every_s, 600 s by default, in a thread)")  # fmt: skip


def main(settings: Settings, quick: bool, as_json: bool = False) -> None:
    console = Console(stderr=as_json)
    try:
        figures = run_ops_jobs_bench(settings, quick=quick, say=console.log)
    finally:
        with no_ctrl_c():
            console.log("stopping the bench stack")
            stack.down(bench_settings(settings))
    if not as_json:
        report(console, figures)
    print(json.dumps(figures))
