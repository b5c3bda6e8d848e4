"""A simulated cluster: replicas start after a delay, load above capacity is an SLO violation.

Time is in steps. At step ``t`` (for ``t >= 1``) the controller sees the load of step ``t - 1``
and the cluster as it stands, and asks for a number of replicas; then step ``t``'s load arrives:

- Scale-up: the new replicas are *starting*, and become ready ``startup_delay_steps`` later (0: at
  once, serving step ``t`` itself; 1: from step ``t + 1``).
- Scale-down takes effect at once: starting replicas are cancelled first (newest first), then
  ready ones.
- Capacity is ``ready * capacity_per_replica``; step ``t`` violates the SLO when its load is above.
- Replica-minutes count *requested* replicas (ready and starting): a starting pod is paid for.

Step 0 runs on ``initial_replicas``, all ready. Minutes are ``steps * step_minutes``.
Pure: the same loads and the same controller give the same result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class ClusterConfig:
    capacity_per_replica: float
    startup_delay_steps: int
    step_minutes: float  # what one step counts for in the minutes reported

    def __post_init__(self) -> None:
        if self.capacity_per_replica <= 0 or self.startup_delay_steps < 0 or self.step_minutes <= 0:
            raise ValueError("capacity and step minutes must be positive, the delay not negative")


@dataclass(frozen=True)
class ClusterState:
    ready: int
    starting: tuple[int, ...] = ()  # the step at which each starting replica is ready, oldest first

    @property
    def requested(self) -> int:
        return self.ready + len(self.starting)


def scale(state: ClusterState, desired: int, step: int, config: ClusterConfig) -> ClusterState:
    """Ask for ``desired`` replicas at ``step``."""
    desired = max(desired, 0)
    if desired >= state.requested:
        ready_at = step + config.startup_delay_steps
        return ClusterState(state.ready, state.starting + (ready_at,) * (desired - state.requested))
    surplus = state.requested - desired
    cancelled = min(surplus, len(state.starting))
    starting = state.starting[: len(state.starting) - cancelled]
    return ClusterState(state.ready - (surplus - cancelled), starting)


def advance(state: ClusterState, step: int) -> ClusterState:
    """The replicas due by ``step`` become ready."""
    due = sum(1 for at in state.starting if at <= step)
    if not due:
        return state
    return ClusterState(state.ready + due, tuple(at for at in state.starting if at > step))


Controller = Callable[[int, float, ClusterState], int]
"""(step, load observed over the previous step, cluster now) -> desired replicas."""


@dataclass(frozen=True)
class SimulationResult:
    requested: npt.NDArray[np.int64]
    ready: npt.NDArray[np.int64]
    violated: npt.NDArray[np.bool_]
    step_minutes: float

    @property
    def slo_violation_min(self) -> float:
        return float(self.violated.sum()) * self.step_minutes

    @property
    def replica_min(self) -> float:
        return float(self.requested.sum()) * self.step_minutes


def simulate(loads: Sequence[float], controller: Controller, config: ClusterConfig, initial_replicas: int) -> SimulationResult:
    n = len(loads)
    requested = np.zeros(n, dtype=np.int64)
    ready = np.zeros(n, dtype=np.int64)
    violated = np.zeros(n, dtype=np.bool_)
    state = ClusterState(ready=initial_replicas)
    for t in range(n):
        if t > 0:
            state = scale(state, controller(t, float(loads[t - 1]), state), t, config)
        state = advance(state, t)
        requested[t], ready[t] = state.requested, state.ready
        violated[t] = loads[t] > state.ready * config.capacity_per_replica
    return SimulationResult(requested, ready, violated, config.step_minutes)
