"""One service's scaling state and the ``ops.scaling_signals.v1`` record of each closed minute. Pure.

``ServiceState`` is what the job keeps per service in its table (JSON-ready): the minutes of load
seen (at most ``history_minutes``, oldest first), the replicas last seen running (the service's
instances publishing ``replicas`` = 1, summed) and the replica policy's state (what was asked
last, and when it last moved).

``step`` takes a service's closed minute of load: it appends it, forecasts the peak of the next
``horizon_minutes`` from the history known then (the forecaster the job last fitted, or
seasonal-naive at confidence 0 before it has one), lets the policy decide, and returns the
signal. Its id is made from the service, the minute and the horizon: a minute replayed after a
restart gives the same event, which the stores keep once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jobs.anomaly.series import MINUTE_MS
from jobs.scaling.config import ServiceTarget
from jobs.scaling.features import History
from jobs.scaling.forecaster import Forecaster
from jobs.scaling.policy import Decision, PolicyState, decide

NAMESPACE = uuid.UUID("8a3c1d2e-5b7f-4c69-a0d4-6e2f9b1c7d35")
PLATFORM = "_platform"


@dataclass
class ServiceState:
    minutes: list[int] = field(default_factory=list)  # minute starts (ms), oldest first
    values: list[float] = field(default_factory=list)
    replicas_seen: int | None = None
    policy: PolicyState | None = None

    def add(self, minute_ms: int, value: float, keep: int) -> None:
        if self.minutes and minute_ms <= self.minutes[-1]:
            return  # a minute already taken (a replay)
        self.minutes.append(minute_ms)
        self.values.append(value)
        if len(self.minutes) > keep:
            del self.minutes[: len(self.minutes) - keep], self.values[: len(self.values) - keep]

    def history(self) -> History:
        """Rows stamped at the end of their minute: known once it closed."""
        return History.of([(m + MINUTE_MS) / 1000 for m in self.minutes], self.values, 60.0)

    def as_dict(self) -> dict[str, Any]:
        policy = None if self.policy is None else [self.policy.replicas, self.policy.last_scale_up_s, self.policy.last_scale_down_s]
        return {"minutes": self.minutes, "values": [round(v, 6) for v in self.values], "replicas_seen": self.replicas_seen,
                "policy": policy}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ServiceState:
        policy = None if d.get("policy") is None else PolicyState(*d["policy"])
        return cls([int(m) for m in d["minutes"]], [float(v) for v in d["values"]], d.get("replicas_seen"), policy)


def step(service: str, target: ServiceTarget, state: ServiceState, minute_ms: int, value: float, forecaster: Forecaster,
         keep: int) -> dict[str, Any] | None:  # fmt: skip
    """Take the load of the minute starting ``minute_ms``; the signal for the moment it closed
    (None for a minute taken already)."""
    if state.minutes and minute_ms <= state.minutes[-1]:
        return None
    state.add(minute_ms, value, keep)
    history = state.history()
    forecast = forecaster.predict_rows(history, np.array([len(history)])).at(0)
    policy = target.policy()
    now_ms = minute_ms + MINUTE_MS
    current = state.policy or PolicyState(replicas=max(state.replicas_seen or policy.min_replicas, 1))
    decision = decide(policy, current, forecast.upper, forecast.confidence, value, now_ms / 1000)
    state.policy = decision.new_state
    return signal_record(service, target, minute_ms, value, forecast.value, forecast.lower, forecast.upper, decision,
                         state.replicas_seen, "hist-gradient-boosting" if forecaster.fitted else "seasonal-naive",
                         forecast.confidence)  # fmt: skip


def signal_record(service: str, target: ServiceTarget, minute_ms: int, observed: float, forecast: float, lower: float,
                  upper: float, decision: Decision, current: int | None, model: str, confidence: float) -> dict[str, Any]:  # fmt: skip
    horizon_s = target.horizon_minutes * 60
    now_ms = minute_ms + MINUTE_MS
    basis = (f"upper bound {upper:,.1f} over {target.horizon_minutes} min at confidence {confidence:.2f}"
             if decision.reason != "reactive" else f"observed {observed:,.1f} at confidence {confidence:.2f}")  # fmt: skip
    return {
        "event_id": str(uuid.uuid5(NAMESPACE, f"{service}/{minute_ms}/{horizon_s}")),
        "occurred_at": now_ms,
        "tenant_id": PLATFORM,
        "user_id": "svc:scaling",
        "conversation_id": None,
        "session_id": None,
        "trace_id": uuid.uuid5(NAMESPACE, f"{service}/{minute_ms}").hex,
        "client": "chatstream-scaling",
        "target": service,
        "metric": target.metric,
        "observed": float(observed),
        "forecast": float(forecast),
        "forecast_lower": float(lower),
        "forecast_upper": float(upper),
        "horizon_s": horizon_s,
        "capacity_per_replica": float(target.capacity_per_replica),
        "current_replicas": current,
        "desired_replicas": decision.desired,
        "min_replicas": target.min_replicas,
        "max_replicas": target.max_replicas,
        "reason": f"{decision.reason}: {basis}",
        "model": model,
    }
