"""The replica policies, rule by rule: the predictive ``decide`` and the HPA's ``reactive_replicas``."""

from __future__ import annotations

import pytest

from jobs.scaling.policy import (
    HpaConfig,
    HpaState,
    PolicyConfig,
    PolicyState,
    decide,
    reactive_replicas,
    reactive_value,
)

CONFIG = PolicyConfig(
    capacity_per_replica=10.0, min_replicas=2, max_replicas=20, scale_down_cooldown_s=300.0,
    target_utilisation=0.5, min_confidence=0.5,
)  # fmt: skip


@pytest.mark.parametrize(
    ("replicas", "last_up_s", "last_down_s", "upper", "confidence", "observed", "now_s", "desired", "reason"),
    [
        # the forecast's upper bound at 100 %: ceil(upper / capacity)
        (5, None, None, 55.0, 0.9, 0.0, 1000.0, 6, "forecast"),
        (5, None, None, 50.0, 0.9, 0.0, 1000.0, 5, "forecast"),  # exactly five replicas' worth
        (5, None, None, 41.0, 0.9, 0.0, 1000.0, 5, "forecast"),
        # at most x2 up in one step
        (4, None, None, 150.0, 0.9, 0.0, 1000.0, 8, "max_up"),
        (3, None, None, 61.0, 0.9, 0.0, 1000.0, 6, "max_up"),
        # at most /2 down in one step (rounded up)
        (10, None, None, 10.0, 0.9, 0.0, 1000.0, 5, "max_down"),
        (9, None, None, 10.0, 0.9, 0.0, 1000.0, 5, "max_down"),
        # no scale-down within the cooldown of the last scale-up or scale-down...
        (10, 800.0, None, 60.0, 0.9, 0.0, 1000.0, 10, "cooldown"),
        (10, None, 750.0, 60.0, 0.9, 0.0, 1000.0, 10, "cooldown"),
        (10, 600.0, 800.0, 60.0, 0.9, 0.0, 1000.0, 10, "cooldown"),  # the later change counts
        # ...but after it, and scale-up any time
        (10, 700.0, None, 60.0, 0.9, 0.0, 1000.0, 6, "forecast"),
        (10, None, 999.0, 120.0, 0.9, 0.0, 1000.0, 12, "forecast"),
        # low confidence: the reactive value, observed / (capacity * target utilisation)
        (5, None, None, 500.0, 0.4, 30.0, 1000.0, 6, "reactive"),
        (5, None, None, 0.0, 0.0, 50.0, 1000.0, 10, "reactive"),
        (5, None, None, 500.0, 0.4, 200.0, 1000.0, 10, "max_up"),  # the step limits still apply
        (6, None, 900.0, 500.0, 0.4, 5.0, 1000.0, 6, "cooldown"),
        # min and max are hard bounds, applied last
        (3, None, None, 5.0, 0.9, 0.0, 1000.0, 2, "max_down"),  # reason: the rule that changed it
        (2, None, None, 0.0, 0.9, 0.0, 1000.0, 2, "min"),
        (15, None, None, 250.0, 0.9, 0.0, 1000.0, 20, "max"),
        (30, None, 990.0, 250.0, 0.9, 0.0, 1000.0, 20, "max"),  # even in the cooldown
        (1, None, None, 5.0, 0.9, 0.0, 1000.0, 2, "min"),  # below min: up to it at once
    ],
)
def test_decide(
    replicas: int, last_up_s: float | None, last_down_s: float | None, upper: float, confidence: float,
    observed: float, now_s: float, desired: int, reason: str,
) -> None:  # fmt: skip
    decision = decide(CONFIG, PolicyState(replicas, last_up_s, last_down_s), upper, confidence, observed, now_s)
    assert (decision.desired, decision.reason) == (desired, reason)
    assert decision.new_state.replicas == desired


@pytest.mark.parametrize(
    ("replicas", "desired", "last_up_s", "last_down_s"),
    [(5, 8, 1000.0, None), (8, 5, None, 1000.0), (5, 5, 10.0, 20.0)],
)
def test_decide_records_when_it_scaled(replicas: int, desired: int, last_up_s: float | None, last_down_s: float | None) -> None:
    state = PolicyState(replicas, last_scale_up_s=10.0 if replicas == desired else None,
                        last_scale_down_s=20.0 if replicas == desired else None)  # fmt: skip
    decision = decide(CONFIG, state, desired * 10.0, 1.0, 0.0, 1000.0)
    assert decision.desired == desired
    assert (decision.new_state.last_scale_up_s, decision.new_state.last_scale_down_s) == (last_up_s, last_down_s)


def test_headroom_multiplies_the_upper_bound() -> None:
    roomy = PolicyConfig(capacity_per_replica=10.0, headroom=1.2, max_replicas=100)
    assert decide(roomy, PolicyState(10), 100.0, 1.0, 0.0, 0.0).desired == 12


@pytest.mark.parametrize(("observed", "expected"), [(0.0, 0), (10.0, 2), (25.0, 5), (25.1, 6), (-3.0, 0)])
def test_reactive_value(observed: float, expected: int) -> None:
    assert reactive_value(CONFIG, observed) == expected


@pytest.mark.parametrize(
    "kwargs",
    [dict(capacity_per_replica=0.0), dict(capacity_per_replica=1.0, target_utilisation=1.5),
     dict(capacity_per_replica=1.0, min_replicas=5, max_replicas=4), dict(capacity_per_replica=1.0, max_up_factor=0.5)],
)  # fmt: skip
def test_policy_config_refuses_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PolicyConfig(**kwargs)  # type: ignore[arg-type]


HPA = HpaConfig(capacity_per_replica=10.0, target_utilisation=0.5, min_replicas=1, max_replicas=20)


@pytest.mark.parametrize(
    ("replicas", "window", "observed", "ready", "now_s", "desired", "reason"),
    [
        # ceil(ready * utilisation / target): 4 pods at 80 % against 50 % -> 7
        (4, (), 32.0, 4, 1000.0, 7, "scale"),
        # within the 0.1 tolerance of the target: no change
        (4, (), 21.0, 4, 1000.0, 4, "tolerance"),
        (4, (), 19.0, 4, 1000.0, 4, "tolerance"),
        # scale-down to the highest recommendation of the last 300 s
        (8, ((800.0, 6),), 10.0, 8, 1000.0, 6, "stabilisation"),
        (8, ((800.0, 9),), 10.0, 8, 1000.0, 8, "stabilisation"),  # never up by way of the window
        (8, ((650.0, 6),), 10.0, 8, 1000.0, 2, "scale"),  # 350 s ago: out of the window
        # scale-up at once, whatever the window says
        (2, ((900.0, 1),), 60.0, 2, 1000.0, 12, "scale"),
        # starting pods: utilisation over the ready ones
        (6, (), 30.0, 3, 1000.0, 6, "scale"),
        (6, (), 0.0, 0, 1000.0, 1, "min"),  # nothing ready, nothing to carry
        (6, (), 40.0, 0, 1000.0, 8, "scale"),  # nothing ready: sized for the load
        # bounds
        (3, (), 0.0, 3, 1000.0, 1, "min"),
        (10, (), 500.0, 10, 1000.0, 20, "max"),
    ],
)
def test_reactive_replicas(
    replicas: int, window: tuple[tuple[float, int], ...], observed: float, ready: int, now_s: float, desired: int,
    reason: str,
) -> None:  # fmt: skip
    decision = reactive_replicas(HPA, HpaState(replicas, window), observed, ready, now_s)
    assert (decision.desired, decision.reason) == (desired, reason)
    assert decision.new_state.replicas == desired


def test_reactive_replicas_keeps_only_the_window() -> None:
    state = HpaState(5, ((100.0, 9), (800.0, 7)))
    decision = reactive_replicas(HPA, state, 10.0, 5, 1000.0)
    assert decision.new_state.recommendations == ((800.0, 7), (1000.0, 2))
    assert decision.desired == 5  # 7 in the window, capped at the current 5
