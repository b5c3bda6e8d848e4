"""One series under watch: its detector and its open anomaly, stepped minute by minute. Pure.

``Watch.step`` scores a closed minute, steps the series' incident and returns the
``ops.anomalies.v1`` record when an anomaly opened or resolved. ``snapshot``/``restore`` carry
the whole state through a Faust table (JSON; the history as little-endian float64, base64: exact
and a third of the size of JSON numbers), so a worker that takes the series over scores exactly
as the one before it.
"""

from __future__ import annotations

import base64

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from jobs.anomaly.detector import DetectorConfig, SeriesDetector
from jobs.anomaly.events import anomaly_record
from jobs.anomaly.incident import Change, Incident, IncidentPolicy, step


@dataclass
class Watch:
    detector: SeriesDetector
    incident: Incident

    @classmethod
    def new(cls, config: DetectorConfig) -> Watch:
        return cls(SeriesDetector(config), Incident())

    def step(self, series: str, minute_ms: int, value: float, policy: IncidentPolicy) -> dict[str, Any] | None:
        score = self.detector.observe(minute_ms, value)
        before = self.incident
        self.incident, change = step(policy, before, score.score, minute_ms)
        if change is None:
            return None
        opened_at = self.incident.opened_at_ms if change is Change.OPENED else before.opened_at_ms
        return anomaly_record(series, minute_ms, value, score, change, opened_at or minute_ms, policy)

    def snapshot(self) -> dict[str, Any]:
        state = self.detector.snapshot()
        state["history"] = base64.b64encode(np.asarray(state["history"], dtype="<f8").tobytes()).decode()
        return {"detector": state, "incident": asdict(self.incident)}

    @classmethod
    def restore(cls, config: DetectorConfig, state: dict[str, Any]) -> Watch:
        detector = dict(state["detector"])
        detector["history"] = np.frombuffer(base64.b64decode(detector["history"]), dtype="<f8").tolist()
        return cls(SeriesDetector.restore(config, detector), Incident(**state["incident"]))
