"""The simulated cluster: start-up delay, immediate scale-down, violations and replica-minutes."""

from __future__ import annotations

import pytest

from jobs.scaling.simulation import ClusterConfig, ClusterState, advance, scale, simulate


@pytest.mark.parametrize(
    ("state", "desired", "step", "delay", "after"),
    [
        (ClusterState(2), 4, 10, 2, ClusterState(2, (12, 12))),  # new replicas start
        (ClusterState(2), 4, 10, 0, ClusterState(2, (10, 10))),
        (ClusterState(2, (11,)), 2, 10, 2, ClusterState(2, ())),  # the starting one is cancelled first
        (ClusterState(3, (11, 12)), 2, 10, 2, ClusterState(2, ())),  # ...then ready ones go
        (ClusterState(3, (11, 12)), 4, 10, 2, ClusterState(3, (11,))),  # the newest goes first
        (ClusterState(3), 3, 10, 2, ClusterState(3)),
        (ClusterState(3), -1, 10, 2, ClusterState(0)),
    ],
)
def test_scale(state: ClusterState, desired: int, step: int, delay: int, after: ClusterState) -> None:
    assert scale(state, desired, step, ClusterConfig(1.0, delay, 1.0)) == after


def test_advance_readies_what_is_due() -> None:
    state = ClusterState(1, (5, 6, 6, 8))
    assert advance(state, 4) == state
    assert advance(state, 6) == ClusterState(4, (8,))
    assert advance(state, 9) == ClusterState(5)


@pytest.mark.parametrize(
    ("delay", "violated", "requested", "ready"),
    [
        # the controller asks for 3 at step 1 (it saw 25 over step 0); load 25 needs 3 of capacity 10
        (0, [True, False, False, False], [1, 3, 3, 3], [1, 3, 3, 3]),
        (1, [True, True, False, False], [1, 3, 3, 3], [1, 1, 3, 3]),
        (2, [True, True, True, False], [1, 3, 3, 3], [1, 1, 1, 3]),
    ],
)
def test_replicas_serve_after_the_start_up_delay(
    delay: int, violated: list[bool], requested: list[int], ready: list[int]
) -> None:
    seen: list[tuple[int, float, ClusterState]] = []

    def controller(step: int, observed: float, now: ClusterState) -> int:
        seen.append((step, observed, now))
        return 3

    result = simulate([25.0] * 4, controller, ClusterConfig(10.0, delay, step_minutes=5.0), initial_replicas=1)
    assert result.violated.tolist() == violated
    assert result.requested.tolist() == requested
    assert result.ready.tolist() == ready
    assert result.slo_violation_min == 5.0 * sum(violated)
    assert result.replica_min == 5.0 * sum(requested)  # starting replicas are paid for
    assert [step for step, _, _ in seen] == [1, 2, 3] and all(observed == 25.0 for _, observed, _ in seen)


def test_scale_down_takes_effect_at_once() -> None:
    result = simulate([5.0, 5.0, 30.0], lambda step, observed, now: 1, ClusterConfig(10.0, 2, 1.0), initial_replicas=4)
    assert result.ready.tolist() == [4, 1, 1]
    assert result.violated.tolist() == [False, False, True]


def test_load_equal_to_capacity_is_not_a_violation() -> None:
    result = simulate([20.0, 20.0], lambda step, observed, now: 2, ClusterConfig(10.0, 1, 1.0), initial_replicas=2)
    assert not result.violated.any()
