"""Replica policies as pure functions: the predictive controller and the reactive HPA baseline.

``decide`` turns a forecast into desired replicas, rule by rule, and says which rule decided:

1. ``forecast``: ``ceil(upper * headroom / capacity_per_replica)``. The interval's upper bound, not
   the point forecast times a margin: the bound is a calibrated quantile of the coming peak, so the
   margin is as wide as the load's own noise (wide for bursty load, narrow for smooth load), where a
   fixed multiplier is too much for the one and too little for the other. ``headroom`` (default 1)
   is there for an extra margin on top.
   ``reactive`` instead when ``confidence < min_confidence``: ``ceil(observed / (capacity *
   target_utilisation))``, what an HPA would ask for.
2. ``max_up``/``max_down``: at most ``max_up_factor`` times the current replicas up, at most
   ``max_down_factor`` times fewer down, per decision.
3. ``cooldown``: no scale-down within ``scale_down_cooldown_s`` of the last scale-up or scale-down.
4. ``min``/``max``: clamped to ``[min_replicas, max_replicas]`` (hard bounds, applied last).

``reactive_replicas`` is the HPA's algorithm for one resource metric: per-pod utilisation over
ready pods against the target, ``ceil(current * utilisation / target)``, no change within the 0.1
tolerance, and scale-down only to the highest recommendation of the last 300 s (the stabilisation
window); scale-up is immediate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class PolicyConfig:
    capacity_per_replica: float  # load one replica carries at 100 %
    min_replicas: int = 1
    max_replicas: int = 100
    max_up_factor: float = 2.0
    max_down_factor: float = 2.0
    scale_down_cooldown_s: float = 300.0
    target_utilisation: float = 0.7  # of the reactive fallback
    min_confidence: float = 0.5
    headroom: float = 1.0

    def __post_init__(self) -> None:
        if self.capacity_per_replica <= 0 or not 0 < self.target_utilisation <= 1:
            raise ValueError("capacity_per_replica must be positive, target_utilisation in (0, 1]")
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise ValueError("need 1 <= min_replicas <= max_replicas")
        if self.max_up_factor < 1 or self.max_down_factor < 1:
            raise ValueError("max_up_factor and max_down_factor must be at least 1")


@dataclass(frozen=True)
class PolicyState:
    replicas: int  # currently requested
    last_scale_up_s: float | None = None
    last_scale_down_s: float | None = None


@dataclass(frozen=True)
class Decision:
    desired: int
    reason: str  # the rule that decided: forecast, reactive, max_up, max_down, cooldown, min, max
    new_state: PolicyState


def reactive_value(config: PolicyConfig, observed: float) -> int:
    """Replicas that carry ``observed`` at the target utilisation (the reactive fallback)."""
    return math.ceil(max(observed, 0.0) / (config.capacity_per_replica * config.target_utilisation) - 1e-9)


def forecast_value(config: PolicyConfig, forecast_upper: float) -> int:
    """Replicas that carry the forecast's upper bound (times ``headroom``) at 100 %."""
    return math.ceil(max(forecast_upper, 0.0) * config.headroom / config.capacity_per_replica - 1e-9)


def decide(
    config: PolicyConfig, state: PolicyState, forecast_upper: float, confidence: float, observed: float, now_s: float
) -> Decision:
    """Desired replicas at ``now_s`` from the forecast's upper bound (or, at low confidence, from the
    load ``observed`` over the last step); see the module docstring for the rules, in order."""
    current = state.replicas
    if confidence >= config.min_confidence:
        desired, reason = forecast_value(config, forecast_upper), "forecast"
    else:
        desired, reason = reactive_value(config, observed), "reactive"
    if current > 0:
        most = math.floor(current * config.max_up_factor + 1e-9)
        least = math.ceil(current / config.max_down_factor - 1e-9)
        if desired > most:
            desired, reason = most, "max_up"
        elif desired < least:
            desired, reason = least, "max_down"
    if desired < current and _cooling_down(config, state, now_s):
        desired, reason = current, "cooldown"
    if desired < config.min_replicas:
        desired, reason = config.min_replicas, "min"
    elif desired > config.max_replicas:
        desired, reason = config.max_replicas, "max"
    return Decision(desired, reason, _moved(state, desired, now_s))


def _cooling_down(config: PolicyConfig, state: PolicyState, now_s: float) -> bool:
    changes = [s for s in (state.last_scale_up_s, state.last_scale_down_s) if s is not None]
    return bool(changes) and now_s - max(changes) < config.scale_down_cooldown_s


def _moved(state: PolicyState, desired: int, now_s: float) -> PolicyState:
    if desired > state.replicas:
        return replace(state, replicas=desired, last_scale_up_s=now_s)
    if desired < state.replicas:
        return replace(state, replicas=desired, last_scale_down_s=now_s)
    return state


@dataclass(frozen=True)
class HpaConfig:
    capacity_per_replica: float
    target_utilisation: float = 0.7
    min_replicas: int = 1
    max_replicas: int = 100
    tolerance: float = 0.1  # the HPA's default
    scale_down_stabilisation_s: float = 300.0  # the HPA's default


@dataclass(frozen=True)
class HpaState:
    replicas: int  # currently requested (the scale target's spec)
    recommendations: tuple[tuple[float, int], ...] = ()  # (at_s, replicas) within the window


@dataclass(frozen=True)
class HpaDecision:
    desired: int
    reason: str  # scale, tolerance, stabilisation, min, max
    new_state: HpaState


def reactive_replicas(config: HpaConfig, state: HpaState, observed: float, ready: int, now_s: float) -> HpaDecision:
    """The HPA's decision at ``now_s`` for the load ``observed`` over the last step, spread over the
    ``ready`` pods (with none ready, sized for the load as it stands)."""
    current = state.replicas
    pods = ready if ready > 0 else 1
    ratio = max(observed, 0.0) / (pods * config.capacity_per_replica) / config.target_utilisation
    if ready > 0 and abs(ratio - 1.0) <= config.tolerance:
        recommendation, reason = current, "tolerance"
    else:
        recommendation, reason = math.ceil(pods * ratio - 1e-9), "scale"
    if recommendation < config.min_replicas:
        recommendation, reason = config.min_replicas, "min"
    elif recommendation > config.max_replicas:
        recommendation, reason = config.max_replicas, "max"
    window = tuple((at_s, r) for at_s, r in state.recommendations if now_s - at_s < config.scale_down_stabilisation_s)
    window += ((now_s, recommendation),)
    desired = recommendation
    if recommendation < current:
        desired = min(current, max(r for _, r in window))
        if desired != recommendation:
            reason = "stabilisation"
    return HpaDecision(desired, reason, HpaState(desired, window))
