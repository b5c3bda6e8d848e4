"""One open anomaly per series until it resolves: the deduplication of the job's events.

A score at or above ``open_at`` opens an anomaly (unless one is open); it resolves once the score
has stayed below ``resolve_below`` for ``resolve_after`` points in a row. Pure: the state is a
small value the caller keeps (in a Faust table, with the detector's).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Change(Enum):
    OPENED = "opened"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class IncidentPolicy:
    open_at: float = 0.9999
    resolve_below: float = 0.999
    resolve_after: int = 60


@dataclass(frozen=True)
class Incident:
    open: bool = False
    opened_at_ms: int | None = None
    peak: float = 0.0
    calm: int = 0  # points in a row below resolve_below


def step(policy: IncidentPolicy, incident: Incident, score: float, at_ms: int) -> tuple[Incident, Change | None]:
    """The incident after a point scored ``score`` at ``at_ms``, and what changed."""
    if not incident.open:
        if score >= policy.open_at:
            return Incident(True, at_ms, score, 0), Change.OPENED
        return incident, None
    calm = incident.calm + 1 if score < policy.resolve_below else 0
    if calm >= policy.resolve_after:
        return Incident(), Change.RESOLVED
    return Incident(True, incident.opened_at_ms, max(incident.peak, score), calm), None
