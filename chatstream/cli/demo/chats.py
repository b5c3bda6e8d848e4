"""Streaming chat completions through the real gateway and the dispatch job, as chat clients
would send them, and what the job says it did (its ``/metrics``)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import orjson

from bench import scrape
from bench.loadgen import build_request
from bench.sse_client import ChatResult, closed_loop, percentile
from chatstream.cli.demo.traffic import TrafficModel

QUESTIONS = ("How do I page through a Kafka topic?", "Summarise this conversation.", "Write a haiku about queues.",
             "Why is my consumer lagging?", "Explain Avro schema evolution.", "Draft a status update for the team.")  # fmt: skip
ANSWERS_METRIC = "chatstream_dispatch_answers_total"
FALLBACKS_METRIC = "chatstream_dispatch_fallbacks_total"


@dataclass
class ChatStats:
    results: list[ChatResult] = field(default_factory=list)
    elapsed_s: float = 0.0
    fallbacks: float | None = None  # the job's counter over the run; None if it did not answer
    outcomes: dict[str, float] = field(default_factory=dict)  # the job's answers by outcome over the run

    @property
    def completed(self) -> int:
        return sum(1 for r in self.results if r.completed)

    @property
    def failed(self) -> Counter[str]:
        return Counter(r.error or "incomplete" for r in self.results if not r.completed)

    def ttft_ms(self, q: float) -> float:
        return percentile([r.ttft_s for r in self.results if r.ttft_s is not None], q) * 1000


def chat_requests(host: str, port: int, model: TrafficModel, aliases: list[str], token_for: Callable[[str, str], str],
                  count: int, seed: int = 5) -> list[bytes]:  # fmt: skip
    """``count`` streamed requests from the demo's tenants and users, over ``aliases``."""
    rng = random.Random(seed)
    requests = []
    for i in range(count):
        tenant = rng.choices(model.tenants, model.weights)[0]
        user = rng.choice(model.users[tenant])
        body = {"model": aliases[i % len(aliases)], "stream": True, "stream_options": {"include_usage": True},
                "messages": [{"role": "system", "content": "You are a helpful assistant."},
                             {"role": "user", "content": f"{rng.choice(QUESTIONS)} (chat {i})"}]}  # fmt: skip
        requests.append(build_request(host, port, "/v1/chat/completions", orjson.dumps(body), token_for(tenant, user)))
    return requests


def job_counters(metrics_url: str) -> tuple[float, dict[str, float]] | None:
    """The dispatch job's fallbacks and answers by outcome, or None if it does not answer."""
    try:
        found = scrape.samples(metrics_url)
    except httpx.HTTPError:
        return None
    prefix = f'{ANSWERS_METRIC}{{outcome="'
    outcomes = {key[len(prefix) : -2]: value for key, value in found.items() if key.startswith(prefix)}
    return found.get(FALLBACKS_METRIC, 0.0), outcomes


def drive_chats(host: str, port: int, requests: list[bytes], *, concurrency: int, metrics_url: str,
                on_result: Callable[[ChatResult], None] = lambda _: None) -> ChatStats:  # fmt: skip
    """Send every request once, ``concurrency`` at a time, each answer read as it streams."""
    before = job_counters(metrics_url)
    loop = asyncio.run(closed_loop(host, port, requests, concurrency=concurrency, count=len(requests),
                                   on_result=on_result))  # fmt: skip
    stats = ChatStats(loop.results, loop.elapsed_s)
    after = job_counters(metrics_url)
    if before is not None and after is not None:
        stats.fallbacks = after[0] - before[0]
        stats.outcomes = {k: v - before[1].get(k, 0.0) for k, v in after[1].items() if v - before[1].get(k, 0.0)}
    return stats
