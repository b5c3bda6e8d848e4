"""Dispatch benchmark: the chat API through gateway + Kafka + dispatch job against the simulated
provider called directly, in the same run.

(a) time to first token (TTFT) of streamed chat completions at 50 and 200 concurrent streams,
    closed loop, against a simulated deployment with a realistic TTFT (50 ms, 200 tokens/s, 32
    tokens); the raw baseline is the same ``SimulatedProvider`` (built from the same routing
    file) called in-process at the same concurrency. Added TTFT at a percentile = the
    platform's TTFT at that percentile minus the baseline's at that percentile.
(b) completed requests/s of one dispatch worker at 200 concurrent streams against a
    zero-latency deployment (``stream: true``; ``stream: false`` as a second figure), counted
    over a window after a warm-up, with the CPU seconds each process spent in that window.

TTFT is taken by the client (``bench.sse_client``) from writing the request to reading the
first ``data:`` chunk with non-empty ``delta.content``. After the TTFT phases the records they
left in Kafka are read back to split the TTFT into hops (``bench.dispatch_trace``), and the
job's own TTFT histogram (``chatstream_dispatch_ttft_seconds``, from the gateway's handler to
the first token in the job) is compared with the client's.

It runs on the benchmarks' stack (``<state>/bench-stack``, port base 24000), with its own
routing file there, the gateway and the job started as ``chatstream gateway`` and
``chatstream job dispatch``; requests come from 12 tenants spread evenly over the partitions of
``chat.actions.v1``. A table first; the last line of output is one JSON object.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import time
import uuid
import zlib
from collections.abc import Sequence
from contextlib import aclosing
from dataclasses import dataclass

import orjson
from rich.console import Console
from rich.table import Table

from bench import scrape
from bench.dispatch_trace import SEGMENTS, Offsets, Trace, positions, trace
from bench.harness import (
    PlatformProcess,
    bench_settings,
    cli,
    cpu_seconds,
    machine_busy,
    no_ctrl_c,
    settle_heap,
)
from bench.loadgen import build_request
from bench.sse_client import LoopResult, closed_loop, percentile
from chatstream.settings import Settings
from connectors.providers.base import PromptMessage, Provider, ProviderRequest, TextDelta, Timeouts
from gateway.auth import issue_token, local_secret
from infra.local import stack
from jobs.dispatch.config import load_routing
from jobs.dispatch.providers import build_provider
from pipelines.topics import AI_REQUESTS, AI_RESPONSES, CHAT_ACTIONS

TTFT_ALIAS, ZERO_ALIAS = "bench-ttft", "bench-zero"
TTFT_DEPLOYMENT, ZERO_DEPLOYMENT = "sim-ttft", "sim-zero"
CONCURRENCIES = (50, 200)
THROUGHPUT_CONCURRENCY = 200
TENANTS = 12  # spread evenly over chat.actions.v1's partitions, as many tenants' requests are
TRACED_TOPICS = (CHAT_ACTIONS.name, AI_REQUESTS.name, AI_RESPONSES.name)
TARGETS = {"added_p50_ms": 10.0, "added_p99_ms": 50.0, "completed_rps": 1000.0}

ROUTING = f"""# Written by `chatstream bench dispatch` for its own stack; not a configuration to copy.
[aliases."{TTFT_ALIAS}"]
description = "bench: realistic time to first token"
deployments = ["{TTFT_DEPLOYMENT}"]

[aliases."{ZERO_ALIAS}"]
description = "bench: zero latency, for throughput"
deployments = ["{ZERO_DEPLOYMENT}"]

[deployments.{TTFT_DEPLOYMENT}]
provider = "simulated"
model = "simulated-bench"
[deployments.{TTFT_DEPLOYMENT}.simulated]
ttft_ms = 50
tokens_per_s = 200
answer_tokens = 32

[deployments.{ZERO_DEPLOYMENT}]
provider = "simulated"
model = "simulated-bench-zero"
[deployments.{ZERO_DEPLOYMENT}.simulated]
ttft_ms = 0
tokens_per_s = 0
answer_tokens = 32

[tenants.default]   # no tenant limits: the bench measures dispatch, not admission
rpm = 0
tpm = 0
budget_usd_per_day = 0
"""  # chunks, resilience and cache as the product's defaults


@dataclass(frozen=True)
class Plan:
    warm_up_s: float
    baseline_s: float  # each concurrency
    ttft_s: float  # each concurrency
    throughput_warm_s: float
    throughput_window_s: float
    whole_window_s: float


QUICK = Plan(warm_up_s=10, baseline_s=5, ttft_s=10, throughput_warm_s=4, throughput_window_s=10, whole_window_s=8)
FULL = Plan(warm_up_s=20, baseline_s=15, ttft_s=30, throughput_warm_s=8, throughput_window_s=30, whole_window_s=20)


@dataclass
class TtftPhase:
    concurrency: int
    baseline_s: list[float]
    platform: LoopResult
    job_buckets: list[tuple[float, float]]  # the job's TTFT histogram over the phase
    job_sum_s: float
    trace: Trace | None = None

    @property
    def ttfts_s(self) -> list[float]:
        return [r.ttft_s for r in self.platform.results if r.ttft_s is not None and r.completed]

    @property
    def failed(self) -> int:
        return sum(1 for r in self.platform.results if not r.completed)

    def added_ms(self, q: float) -> float:
        return (percentile(self.ttfts_s, q) - percentile(self.baseline_s, q)) * 1000


@dataclass
class ThroughputPhase:
    stream: bool
    loop: LoopResult
    completed: int
    window_s: float
    cpu_s: dict[str, float]  # process -> CPU seconds in the window
    machine_cores_busy: float  # average cores busy in the window, every process of the machine
    job_completed: float  # the job's own count of answers completed in the window

    @property
    def rps(self) -> float:
        return self.completed / self.window_s

    def cpu_ms_per_request(self, process: str) -> float:
        return self.cpu_s[process] / max(1, self.completed) * 1000

    @property
    def failed(self) -> int:
        return sum(1 for r in self.loop.results if not r.completed)


def chat_requests(host: str, port: int, tokens: Sequence[str], alias: str, *, stream: bool, n: int = 512) -> list[bytes]:
    """``n`` distinct chat completion requests (their prompts differ; the answers' length not),
    taking turns among ``tokens`` (tenants)."""
    return [build_request(host, port, "/v1/chat/completions", orjson.dumps({
        "model": alias, "stream": stream,
        "messages": [{"role": "user", "content": f"bench question {i}: how does a chat event reach the model?"}],
    }), tokens[i % len(tokens)]) for i in range(n)]  # fmt: skip


def spread_tenants(prefix: str, partitions: int, count: int) -> list[str]:
    """``count`` tenant ids whose requests land evenly on the ``partitions`` of chat.actions.v1
    (the gateway puts each tenant on one partition: ``gateway.chat.ChatService.partition_of``)."""
    wanted = [i % partitions for i in range(count)]
    found: dict[int, list[str]] = {p: [] for p in range(partitions)}
    for n in itertools.count():
        tenant = f"{prefix}-{n}"
        p = zlib.crc32(tenant.encode()) % partitions
        if len(found[p]) < wanted.count(p):
            found[p].append(tenant)
        if sum(map(len, found.values())) == count:
            return [t for p in range(partitions) for t in found[p]]
    raise AssertionError("unreachable")


async def direct_ttfts(provider: Provider, concurrency: int, duration_s: float, n_prompts: int = 512) -> list[float]:
    """The raw baseline: the provider's TTFT (to its first non-empty text) called in-process,
    ``concurrency`` streams in a closed loop, each read to its end."""
    prompts = [(PromptMessage("user", f"bench question {i}: how does a chat event reach the model?"),)
               for i in range(n_prompts)]  # fmt: skip
    timeouts, ttfts = Timeouts(), []
    numbers = itertools.count()
    deadline = time.perf_counter() + duration_s

    async def stream() -> None:
        while time.perf_counter() < deadline:
            request = ProviderRequest(model="bench", messages=prompts[next(numbers) % n_prompts])
            sent, first = time.perf_counter(), None
            async with aclosing(provider.stream(request, timeouts)) as events:  # type: ignore[type-var]
                async for event in events:
                    if first is None and isinstance(event, TextDelta) and event.text:
                        first = time.perf_counter() - sent
            if first is not None:
                ttfts.append(first)

    await asyncio.gather(*(stream() for _ in range(concurrency)))
    return ttfts


class Bench:
    """The platform under test and what measures it, for one run."""

    def __init__(self, settings: Settings, gateway: PlatformProcess, job: PlatformProcess, tokens: list[str]) -> None:
        self.settings = settings
        self.gateway = gateway
        self.job = job
        self.host, self.port = settings.gateway_host, settings.gateway_listen_port
        self.metrics_url = f"http://{settings.gateway_host}:{settings.dispatch_port}/metrics"
        self.ttft_requests = chat_requests(self.host, self.port, tokens, TTFT_ALIAS, stream=True)
        self.zero_requests = chat_requests(self.host, self.port, tokens, ZERO_ALIAS, stream=True)
        self.whole_requests = chat_requests(self.host, self.port, tokens, ZERO_ALIAS, stream=False)
        kafka = next(s for s in stack.status(settings) if s.name == "kafka")
        if kafka.pid is None:
            raise RuntimeError("the bench stack's Kafka has no pid: is it local and running?")
        self.kafka_pid = kafka.pid

    def loop(self, requests: Sequence[bytes], concurrency: int, duration_s: float) -> LoopResult:
        return asyncio.run(closed_loop(self.host, self.port, requests, concurrency=concurrency, duration_s=duration_s))

    def ttft_phase(self, provider: Provider, concurrency: int, plan: Plan) -> tuple[TtftPhase, Offsets, Offsets]:
        baseline = asyncio.run(direct_ttfts(provider, concurrency, plan.baseline_s))
        before_metrics = scrape.samples(self.metrics_url)
        before = positions(self.settings.kafka_bootstrap_servers, TRACED_TOPICS)
        platform = self.loop(self.ttft_requests, concurrency, plan.ttft_s)
        after_metrics = scrape.samples(self.metrics_url)
        after = positions(self.settings.kafka_bootstrap_servers, TRACED_TOPICS)
        name = "chatstream_dispatch_ttft_seconds"
        buckets = scrape.delta(scrape.histogram(after_metrics, name), scrape.histogram(before_metrics, name))
        job_sum = after_metrics[f"{name}_sum"] - before_metrics[f"{name}_sum"]
        return TtftPhase(concurrency, baseline, platform, buckets, job_sum), before, after

    def sample(self) -> dict[str, float]:
        busy, total = machine_busy()
        return {"dispatch job": self.job.cpu_s(), "gateway": self.gateway.cpu_s(), "kafka": cpu_seconds(self.kafka_pid),
                "client": time.process_time(), "machine busy": busy, "machine total": total}  # fmt: skip

    def throughput_phase(self, stream: bool, warm_s: float, window_s: float) -> ThroughputPhase:
        requests = self.zero_requests if stream else self.whole_requests
        marks: dict[str, tuple[float, dict[str, float], float]] = {}

        def completed_by_job() -> float:
            return scrape.samples(self.metrics_url).get('chatstream_dispatch_answers_total{outcome="completed"}', 0.0)

        async def watch() -> None:
            await asyncio.sleep(warm_s)
            marks["start"] = (time.perf_counter(), self.sample(), await asyncio.to_thread(completed_by_job))
            await asyncio.sleep(window_s)
            marks["end"] = (time.perf_counter(), self.sample(), await asyncio.to_thread(completed_by_job))

        async def both() -> LoopResult:
            running = closed_loop(self.host, self.port, requests, concurrency=THROUGHPUT_CONCURRENCY,
                                  duration_s=warm_s + window_s)  # fmt: skip
            loop, _ = await asyncio.gather(running, watch())
            return loop

        loop = asyncio.run(both())
        (t0, s0, j0), (t1, s1, j1) = marks["start"], marks["end"]
        cpu = {name: s1[name] - s0[name] for name in s0}
        cores = (cpu.pop("machine busy") / cpu.pop("machine total")) * (len(_online_cpus()) or 1)
        return ThroughputPhase(stream, loop, loop.completed_between(t0, t1), t1 - t0, cpu, cores, j1 - j0)


def _online_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def run_dispatch_bench(base: Settings, *, quick: bool, gateway_workers: int, console: Console) -> dict[str, float]:
    plan = QUICK if quick else FULL
    settings = bench_settings(base)
    say = console.log
    say(f"bringing up the bench stack in {settings.state_dir}")
    stack.up(settings)
    cli(settings, "topics", "apply")
    cli(settings, "schemas", "register")
    models_file = settings.state_dir / "bench-models.toml"
    models_file.write_text(ROUTING)
    routing = load_routing(models_file, {})
    provider = build_provider(routing.deployments[TTFT_DEPLOYMENT])  # the very settings the job uses
    secret = local_secret(settings.state_dir)
    tokens = [issue_token(secret, tenant=tenant, user="bench-user", audience=settings.jwt_audience,
                          issuer=settings.jwt_issuer, ttl_s=3600)
              for tenant in spread_tenants(f"bench-{uuid.uuid4().hex[:8]}", CHAT_ACTIONS.partitions, TENANTS)]  # fmt: skip
    env = {"CHATSTREAM_MODELS_FILE": str(models_file), "CHATSTREAM_RATE_LIMIT_EVENTS_PER_S": "1e9",
           "CHATSTREAM_RATE_LIMIT_BURST": "1e9", "CHATSTREAM_CHAT_TOTAL_TIMEOUT_S": "60"}  # fmt: skip
    logs = settings.state_dir / "logs"
    say(f"starting the gateway ({gateway_workers} worker(s)) and the dispatch job; logs in {logs}")
    gateway = PlatformProcess("gateway", settings, ["gateway", "--workers", str(gateway_workers)], env,
                              logs / "bench-gateway.log")  # fmt: skip
    job = PlatformProcess("dispatch job", settings, ["job", "dispatch"], env, logs / "bench-dispatch.log")
    try:
        gateway.wait_ready(settings.gateway_url)
        job.wait_ready(f"http://{settings.gateway_host}:{settings.dispatch_port}")
        bench = Bench(settings, gateway, job, tokens)
        settle_heap()
        say(f"warming up for {plan.warm_up_s:.0f}s (both deployments, streamed and whole)")
        asyncio.run(direct_ttfts(provider, 50, 1.0))
        bench.loop(bench.ttft_requests, 200, plan.warm_up_s / 2)
        bench.loop(bench.zero_requests, 200, plan.warm_up_s / 4)
        bench.loop(bench.whole_requests, 200, plan.warm_up_s / 4)
        phases: list[TtftPhase] = []
        ranges: list[tuple[Offsets, Offsets]] = []
        for concurrency in CONCURRENCIES:
            say(f"(a) TTFT at {concurrency} streams: direct provider {plan.baseline_s:.0f}s, "
                f"then through the platform {plan.ttft_s:.0f}s")  # fmt: skip
            phase, before, after = bench.ttft_phase(provider, concurrency, plan)
            phases.append(phase)
            ranges.append((before, after))
        say(f"(b) throughput at {THROUGHPUT_CONCURRENCY} streams, zero-latency deployment: "
            f"{plan.throughput_warm_s:.0f}s warm-up, {plan.throughput_window_s:.0f}s counted")  # fmt: skip
        streamed = bench.throughput_phase(True, plan.throughput_warm_s, plan.throughput_window_s)
        say(f"(b) the same with stream: false, {plan.whole_window_s:.0f}s counted")
        whole = bench.throughput_phase(False, plan.throughput_warm_s / 2, plan.whole_window_s)
    finally:
        say("stopping the gateway and the dispatch job")
        with no_ctrl_c():
            for process in (gateway, job):
                process.stop()
    say("reading the TTFT phases' records back from Kafka to split their TTFT into hops")
    for phase, (before, after) in zip(phases, ranges):
        phase.trace = trace(settings.kafka_bootstrap_servers, settings.schema_registry_url, before, after,
                            phase.platform.results, *TRACED_TOPICS)  # fmt: skip
    figures = _figures(phases, streamed, whole, gateway_workers)
    _report(console, phases, streamed, whole, figures)
    return figures


def _figures(phases: list[TtftPhase], streamed: ThroughputPhase, whole: ThroughputPhase, gateway_workers: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    for phase in phases:
        c = phase.concurrency
        figures[f"ttft_added_p50_ms_c{c}"] = phase.added_ms(0.50)
        figures[f"ttft_added_p99_ms_c{c}"] = phase.added_ms(0.99)
    figures["completed_rps_per_worker"] = streamed.rps
    for phase in phases:
        c = phase.concurrency
        figures[f"ttft_p50_ms_c{c}"] = percentile(phase.ttfts_s, 0.50) * 1000
        figures[f"ttft_p99_ms_c{c}"] = percentile(phase.ttfts_s, 0.99) * 1000
        figures[f"direct_ttft_p50_ms_c{c}"] = percentile(phase.baseline_s, 0.50) * 1000
        figures[f"direct_ttft_p99_ms_c{c}"] = percentile(phase.baseline_s, 0.99) * 1000
        figures[f"streams_c{c}"] = len(phase.platform.results)
        figures[f"failed_c{c}"] = phase.failed
    figures["completed_rps_whole"] = whole.rps
    figures["dispatch_cpu_ms_per_request"] = streamed.cpu_ms_per_request("dispatch job")
    figures["dispatch_rps_per_core"] = 1000 / max(1e-9, figures["dispatch_cpu_ms_per_request"])
    figures["gateway_cpu_ms_per_request"] = streamed.cpu_ms_per_request("gateway")
    figures["kafka_cpu_ms_per_request"] = streamed.cpu_ms_per_request("kafka")
    figures["client_cpu_ms_per_request"] = streamed.cpu_ms_per_request("client")
    figures["machine_cores_busy"] = streamed.machine_cores_busy
    figures["failed_throughput"] = streamed.failed + whole.failed
    figures["gateway_workers"] = gateway_workers
    return {k: round(v, 2) for k, v in figures.items()}


def _met(ok: bool) -> str:
    return "[green]yes[/]" if ok else "[red]no[/]"


def _report(console: Console, phases: list[TtftPhase], streamed: ThroughputPhase, whole: ThroughputPhase,
            f: dict[str, float]) -> None:  # fmt: skip
    table = Table(title=f"dispatch benchmark: gateway {f['gateway_workers']:.0f} worker(s), one dispatch worker, "
                        f"{TENANTS} tenants; added TTFT = platform percentile - direct-provider percentile")  # fmt: skip
    for column in ("measure", "value", "baseline / detail", "target", "met"):
        table.add_column(column)
    for phase in phases:
        c = phase.concurrency
        job_count = phase.job_buckets[-1][1] if phase.job_buckets else 0.0
        job_mean = phase.job_sum_s / job_count * 1000 if job_count else float("nan")
        table.add_row(f"(a) TTFT p50 / p99, {c} streams", f"{f[f'ttft_p50_ms_c{c}']:.1f} / {f[f'ttft_p99_ms_c{c}']:.1f} ms",
                      f"direct provider {f[f'direct_ttft_p50_ms_c{c}']:.1f} / {f[f'direct_ttft_p99_ms_c{c}']:.1f} ms; "
                      f"{len(phase.platform.results):,} streams, {phase.failed} failed", "", "")  # fmt: skip
        target = c == 200
        met = f[f"ttft_added_p50_ms_c{c}"] <= TARGETS["added_p50_ms"] and f[f"ttft_added_p99_ms_c{c}"] <= TARGETS["added_p99_ms"]
        table.add_row(f"    added p50 / p99, {c} streams",
                      f"{f[f'ttft_added_p50_ms_c{c}']:.1f} / {f[f'ttft_added_p99_ms_c{c}']:.1f} ms",
                      f"job's own TTFT (handler -> first token in the job): mean {job_mean:.1f} ms, "
                      f"p50 ~{scrape.bucket_quantile(phase.job_buckets, 0.5) * 1000:.0f} ms (buckets)",
                      "<= 10 / <= 50 ms" if target else "", _met(met) if target else "")  # fmt: skip
    for run in (streamed, whole):
        kind = "stream: true" if run.stream else "stream: false"
        table.add_row(f"(b) completed req/s, {kind}", f"{run.rps:,.0f}",
                      f"{THROUGHPUT_CONCURRENCY} streams, {run.completed:,} in {run.window_s:.0f}s (the job counted "
                      f"{run.job_completed:,.0f}), {run.failed} failed", ">= 1,000" if run.stream else "",
                      _met(run.rps >= TARGETS["completed_rps"]) if run.stream else "")  # fmt: skip
        table.add_row("    CPU ms per completed request", ", ".join(f"{name} {run.cpu_ms_per_request(name):.2f}" for name in run.cpu_s),
                      f"machine: {run.machine_cores_busy:.2f} of {len(_online_cpus())} cores busy (every process)", "", "")  # fmt: skip
    table.add_row("    dispatch worker capacity from its CPU", f"{f['dispatch_rps_per_core']:,.0f} req/s per core",
                  "1 / dispatch CPU s per request (stream: true)", ">= 1,000",
                  _met(f["dispatch_rps_per_core"] >= TARGETS["completed_rps"]))  # fmt: skip
    console.print(table)
    hops = Table(title="where the TTFT goes: hops from the records each request left (ms, p50 / p99 / mean)")
    hops.add_column("segment")
    for phase in phases:
        hops.add_column(f"{phase.concurrency} streams ({phase.trace.traced if phase.trace else 0:,} traced)")
    for segment in SEGMENTS:
        cells = [f"{t.stat(segment, 0.5):.1f} / {t.stat(segment, 0.99):.1f} / {t.mean(segment):.1f}" if t and t.traced else "-"
                 for t in (phase.trace for phase in phases)]  # fmt: skip
        hops.add_row(segment, *cells)
    console.print(hops)


def main(settings: Settings, quick: bool, gateway_workers: int) -> None:
    console = Console() if sys.stdout.isatty() else Console(width=160)  # logs keep the tables readable
    try:
        figures = run_dispatch_bench(settings, quick=quick, gateway_workers=gateway_workers, console=console)
    finally:
        console.log("stopping the bench stack")
        with no_ctrl_c():
            stack.down(bench_settings(settings))
    print(json.dumps(figures))

