"""Which deployments one request tries, in which order, and why.

For an alias, the deployments its breaker lets through and whose own RPM/TPM has room are
ordered by the alias's strategy:

- ``weighted``: one drawn at random in proportion to weight goes first ("weighted pick 3/4"),
  the rest follow by weight, heaviest first;
- ``lowest_latency``: lowest median time to first token over the latency window first; a
  deployment with no samples yet goes before all measured ones, so that it gets measured;
- ``lowest_cost``: lowest input + output price per 1k tokens first.

Ties go to the heavier deployment, then to the order of the alias's list. The deployments of
the alias's fallback aliases follow, each ordered by its own strategy, depth first, in order,
none twice. The plan also lists the deployments left out, with why and when they may be back.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from jobs.dispatch.breaker import CircuitBreaker
from jobs.dispatch.config import AliasConfig, DeploymentConfig, RoutingConfig
from jobs.dispatch.latency import LatencyWindows
from jobs.dispatch.limits import MinuteWindow, check_rate


@dataclass(frozen=True)
class RouteStep:
    deployment: str
    reason: str


@dataclass(frozen=True)
class SkippedDeployment:
    deployment: str
    reason: str
    retry_after_s: float | None


@dataclass(frozen=True)
class RoutePlan:
    steps: tuple[RouteStep, ...]
    skipped: tuple[SkippedDeployment, ...] = ()


@dataclass(frozen=True)
class RoutingState:
    """What routing reads about the deployments right now; missing entries mean fresh."""

    breakers: Mapping[str, CircuitBreaker]
    latency: LatencyWindows
    usage: Mapping[str, MinuteWindow]


def plan_route(
    config: RoutingConfig,
    alias: str,
    state: RoutingState,
    *,
    prompt_tokens: int,
    now_ms: int,
    rng: random.Random,
) -> RoutePlan:
    """The deployments to try for a request to ``alias`` (which must exist), in order."""
    steps: list[RouteStep] = []
    skipped: list[SkippedDeployment] = []
    seen: set[str] = set()
    visited: set[str] = set()

    def visit(name: str, prefix: str) -> None:
        visited.add(name)
        entry = config.aliases[name]
        fresh = [d for d in entry.deployments if d not in seen]
        seen.update(fresh)
        available = []
        for deployment in fresh:
            refusal = _refusal(config.deployments[deployment], state, prompt_tokens, now_ms)
            if refusal is None:
                available.append(deployment)
            else:
                skipped.append(refusal)
        for deployment, reason in _order(entry, config.deployments, available, state, now_ms, rng):
            steps.append(RouteStep(deployment, prefix + reason))
        for fallback in entry.fallbacks:
            if fallback not in visited:
                visit(fallback, f"fallback alias {fallback}: ")

    visit(alias, "")
    return RoutePlan(tuple(steps), tuple(skipped))


def _refusal(
    deployment: DeploymentConfig, state: RoutingState, prompt_tokens: int, now_ms: int
) -> SkippedDeployment | None:
    now_s = now_ms / 1000
    breaker = state.breakers.get(deployment.name)
    if breaker is not None and not breaker.allows(now_s):
        return SkippedDeployment(deployment.name, "circuit breaker open", breaker.reopens_in_s(now_s))
    window = state.usage.get(deployment.name, MinuteWindow())
    rate = check_rate(window, deployment.rpm, deployment.tpm, prompt_tokens, now_ms)
    if not rate.allowed:
        return SkippedDeployment(deployment.name, f"deployment {rate.reason}", rate.retry_after_s)
    return None


def _order(
    alias: AliasConfig,
    deployments: Mapping[str, DeploymentConfig],
    names: list[str],
    state: RoutingState,
    now_ms: int,
    rng: random.Random,
) -> list[tuple[str, str]]:
    if not names:
        return []
    by_weight = sorted(names, key=lambda name: -deployments[name].weight)
    if alias.strategy == "weighted":
        return _weighted(by_weight, deployments, rng)
    if alias.strategy == "lowest_latency":
        medians = {name: state.latency.median_ms(name, now_ms / 1000) for name in names}

        def latency(name: str) -> float:
            median = medians[name]
            return -1.0 if median is None else median

        return _ranked(by_weight, latency, _latency_text(medians))
    prices = {name: deployments[name].price_per_1k for name in names}

    def cost_text(name: str, first: bool) -> str:
        return f"{'lowest cost' if first else 'cost'} {prices[name]:.4g} USD/1k tokens"

    return _ranked(by_weight, prices.__getitem__, cost_text)


def _weighted(
    by_weight: list[str], deployments: Mapping[str, DeploymentConfig], rng: random.Random
) -> list[tuple[str, str]]:
    weights = [deployments[name].weight for name in by_weight]
    total = sum(weights)
    draw = rng.uniform(0.0, total)
    pick = by_weight[-1]
    for name, weight in zip(by_weight, weights):
        draw -= weight
        if draw <= 0:
            pick = name
            break
    share = f"{deployments[pick].weight:g}/{total:g}"
    ordered = [(pick, f"weighted pick {share}")]
    ordered += [
        (name, f"next by weight {deployments[name].weight:g}/{total:g}")
        for name in by_weight
        if name != pick
    ]
    return ordered


def _ranked(
    by_weight: list[str], key: Callable[[str], float], text: Callable[[str, bool], str]
) -> list[tuple[str, str]]:
    ranked = sorted(by_weight, key=key)
    return [(name, text(name, index == 0)) for index, name in enumerate(ranked)]


def _latency_text(medians: Mapping[str, float | None]) -> Callable[[str, bool], str]:
    measured = [median for median in medians.values() if median is not None]
    best = min(measured) if measured else None

    def text(name: str, first: bool) -> str:
        median = medians[name]
        if median is None:
            return "no latency samples yet: tried early to measure it"
        return f"{'lowest latency' if median == best else 'latency'} p50 {median:.0f} ms"

    return text
