"""One open anomaly per series until it resolves."""

from __future__ import annotations

import pytest

from jobs.anomaly.incident import Change, Incident, IncidentPolicy, step

POLICY = IncidentPolicy(open_at=0.99, resolve_below=0.9, resolve_after=3)


def run(scores: list[float]) -> list[Change | None]:
    incident, changes = Incident(), []
    for at, score in enumerate(scores):
        incident, change = step(POLICY, incident, score, at)
        changes.append(change)
    return changes


O, R = Change.OPENED, Change.RESOLVED


@pytest.mark.parametrize(("scores", "expected"), [
    ([0.5, 0.995, 0.999, 0.5], [None, O, None, None]),  # one open anomaly, however many strange points
    ([0.995, 0.5, 0.5, 0.5, 0.995], [O, None, None, R, O]),  # resolved after 3 calm points, then a new one
    ([0.995, 0.5, 0.95, 0.5, 0.5, 0.5], [O, None, None, None, None, R]),  # 0.95 is not calm: the count restarts
    ([0.989, 0.5], [None, None]),  # below open_at: nothing
    ([0.99], [O]),  # open_at itself opens
])  # fmt: skip
def test_deduplication(scores: list[float], expected: list[Change | None]) -> None:
    assert run(scores) == expected


def test_the_incident_keeps_its_start_and_peak() -> None:
    incident, _ = step(POLICY, Incident(), 0.995, 100)
    incident, _ = step(POLICY, incident, 0.999, 101)
    assert (incident.open, incident.opened_at_ms, incident.peak) == (True, 100, 0.999)
