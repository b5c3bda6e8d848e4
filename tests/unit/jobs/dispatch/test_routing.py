"""The order a request tries deployments in, and why."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from jobs.dispatch.breaker import CircuitBreaker
from jobs.dispatch.config import RoutingConfig
from jobs.dispatch.latency import LatencyWindows
from jobs.dispatch.limits import MinuteWindow
from jobs.dispatch.routing import RoutePlan, RoutingState, plan_route
from tests.unit.jobs.dispatch.fakes import routing

NOW_MS = 1_700_000_000_000
NOW_S = NOW_MS / 1000

DEPLOYMENTS: dict[str, dict[str, Any]] = {
    "a": {"weight": 3, "input_price_per_1k": 0.010, "output_price_per_1k": 0.030},
    "b": {"weight": 1, "input_price_per_1k": 0.001, "output_price_per_1k": 0.002},
    "c": {"weight": 2, "input_price_per_1k": 0.001, "output_price_per_1k": 0.002},
    "x": {"rpm": 2},
    "y": {},
}


def config(strategy: str) -> RoutingConfig:
    return routing(
        DEPLOYMENTS,
        {
            "chat": {"strategy": strategy, "deployments": ["a", "b", "c"], "fallbacks": ["backup", "last"]},
            "backup": {"strategy": "lowest_cost", "deployments": ["x", "b"], "fallbacks": ["last"]},
            "last": {"deployments": ["y"]},
        },
    )


def state(
    latencies: dict[str, list[float]] | None = None,
    open_breakers: tuple[str, ...] = (),
    usage: dict[str, MinuteWindow] | None = None,
) -> RoutingState:
    latency = LatencyWindows(window_s=300)
    for name, samples in (latencies or {}).items():
        for ttft_ms in samples:
            latency.record(name, ttft_ms, NOW_S - 1)
    breakers = {name: CircuitBreaker(1, 30) for name in DEPLOYMENTS}
    for name in open_breakers:
        breakers[name].record_failure(NOW_S - 5)
    return RoutingState(breakers, latency, usage or {})


def plan(strategy: str, routing_state: RoutingState, seed: int = 0, alias: str = "chat") -> RoutePlan:
    return plan_route(config(strategy), alias, routing_state, prompt_tokens=10, now_ms=NOW_MS, rng=random.Random(seed))


def order(p: RoutePlan) -> list[str]:
    return [step.deployment for step in p.steps]


FALLBACKS = ["x", "y"]  # backup's x (b was already planned), then last's y, once


@pytest.mark.parametrize(
    ("strategy", "routing_state", "expected"),
    [
        ("lowest_cost", state(), ["c", "b", "a"] + FALLBACKS),  # b and c cost the same: c is heavier
        ("lowest_latency", state({"a": [50, 40, 45], "b": [90], "c": [30, 200, 35]}), ["c", "a", "b"] + FALLBACKS),
        ("lowest_latency", state({"a": [50], "c": [30]}), ["b", "c", "a"] + FALLBACKS),  # b unmeasured: first
        ("lowest_latency", state(), ["a", "c", "b"] + FALLBACKS),  # none measured: by weight
        ("lowest_cost", state(open_breakers=("c",)), ["b", "a"] + FALLBACKS),  # b's breaker is open
        ("lowest_cost", state(open_breakers=("b", "c", "a")), FALLBACKS),
        ("lowest_cost", state(usage={"x": MinuteWindow().add(2, 0, NOW_MS - 1000)}), ["c", "b", "a", "y"]),  # x's rpm
        ("lowest_cost", state(open_breakers=tuple(DEPLOYMENTS)), []),
    ],
)
def test_order(strategy: str, routing_state: RoutingState, expected: list[str]) -> None:
    assert order(plan(strategy, routing_state)) == expected


def test_reasons_say_why() -> None:
    reasons = {s.deployment: s.reason for s in plan("lowest_latency", state({"a": [41], "b": [90]})).steps}
    assert reasons["c"] == "no latency samples yet: tried early to measure it"
    assert reasons["a"] == "lowest latency p50 41 ms"
    assert reasons["b"] == "latency p50 90 ms"
    assert reasons["x"] == "fallback alias backup: lowest cost 0 USD/1k tokens"
    assert reasons["y"].startswith("fallback alias last: weighted pick 1/1")


def test_skipped_deployments_say_why_and_when_they_may_be_back() -> None:
    p = plan("weighted", state(open_breakers=("a",), usage={"x": MinuteWindow().add(2, 0, NOW_MS - 1000)}))
    skipped = {s.deployment: s for s in p.skipped}
    assert skipped["a"].reason == "circuit breaker open" and skipped["a"].retry_after_s == pytest.approx(25)
    assert skipped["x"].reason == "deployment 2 requests/min reached" and skipped["x"].retry_after_s == pytest.approx(59)


def test_weighted_picks_in_proportion_to_weight_then_the_rest_by_weight() -> None:
    firsts: Counter[str] = Counter()
    for seed in range(3000):
        p = plan("weighted", state(), seed=seed)
        firsts[p.steps[0].deployment] += 1
        rest = [d for d in ["a", "c", "b"] if d != p.steps[0].deployment]
        assert order(p) == [p.steps[0].deployment, *rest, *FALLBACKS]
    assert firsts["a"] / 3000 == pytest.approx(3 / 6, abs=0.04)
    assert firsts["c"] / 3000 == pytest.approx(2 / 6, abs=0.04)
    assert firsts["b"] / 3000 == pytest.approx(1 / 6, abs=0.04)


def test_weighted_reason_names_the_share() -> None:
    p = plan("weighted", state(), seed=1)
    first = p.steps[0]
    share = {"a": "3/6", "b": "1/6", "c": "2/6"}[first.deployment]
    assert first.reason == f"weighted pick {share}"
