"""``ops.anomalies.v1`` records from a series' verdicts: one when an anomaly opens, one when it
resolves, tied by ``incident_id``; and the Slack-compatible text of a webhook. Pure.

Ids are made from the series and the minute (and the status), so a job that replays a minute after
a restart sends the same event again, which the stores keep once. The tenant of a tenant's or a
user's series is theirs; platform series (services, models) belong to ``_platform``.
"""

from __future__ import annotations

import uuid
from typing import Any

from jobs.anomaly.detector import Score
from jobs.anomaly.incident import Change, IncidentPolicy
from jobs.anomaly.series import MINUTE_MS

DETECTOR = "gaussian-baseline+isolation-forest/1"
PLATFORM = "_platform"
NAMESPACE = uuid.UUID("0d9f1f5e-8e55-4a8e-9d59-0f4f3c6b2a71")
CRITICAL_AT = 0.999999
Z_AT_OPEN = 3.891  # two-sided normal tail of 1e-4: the bounds drawn around the expected value


def tenant_of(series: str) -> str:
    scope, _, rest = series.partition(":")
    return rest.split("/")[0] if scope in ("tenant", "user") else PLATFORM


def anomaly_record(series: str, minute_ms: int, observed: float, score: Score, change: Change, opened_at_ms: int,
                   policy: IncidentPolicy) -> dict[str, Any]:  # fmt: skip
    """The event for ``change`` of ``series`` at the minute starting ``minute_ms``, of the
    anomaly that opened at the minute ``opened_at_ms``."""
    incident_id = str(uuid.uuid5(NAMESPACE, f"{series}/{opened_at_ms}"))
    status = "OPEN" if change is Change.OPENED else "RESOLVED"
    severity = "INFO" if change is Change.RESOLVED else ("CRITICAL" if score.score >= CRITICAL_AT else "WARNING")
    bounds: tuple[float | None, float | None] = (None, None)
    if score.expected is not None and score.spread is not None:
        bounds = (float(score.expected - Z_AT_OPEN * score.spread), float(score.expected + Z_AT_OPEN * score.spread))
    what = score.explanation(observed)
    if change is Change.RESOLVED:
        what = f"back to normal since {minute_ms - (policy.resolve_after - 1) * MINUTE_MS} (ms); {what}"
    return {
        "event_id": str(uuid.uuid5(NAMESPACE, f"{series}/{minute_ms}/{status}")),
        "occurred_at": minute_ms + MINUTE_MS,
        "tenant_id": tenant_of(series),
        "user_id": "svc:anomaly",
        "conversation_id": None,
        "session_id": None,
        "trace_id": uuid.uuid5(NAMESPACE, incident_id).hex,
        "client": "chatstream-anomaly",
        "detector": DETECTOR,
        "metric": series.rsplit("/", 1)[-1],
        "series_key": series,
        "window_start": minute_ms,
        "window_end": minute_ms + MINUTE_MS,
        "observed": float(observed),
        "expected": None if score.expected is None else float(score.expected),
        "lower_bound": bounds[0],
        "upper_bound": bounds[1],
        "score": float(score.score),
        "threshold": policy.open_at,
        "severity": severity,
        "description": what,
        "status": status,
        "incident_id": incident_id,
    }


def slack_message(record: dict[str, Any]) -> dict[str, Any]:
    """A Slack-compatible incoming-webhook body for an anomaly event."""
    icon = {"CRITICAL": ":red_circle:", "WARNING": ":warning:", "INFO": ":white_check_mark:"}[record["severity"]]
    verb = "resolved" if record["status"] == "RESOLVED" else "anomaly"
    return {"text": f"{icon} chatstream {verb}: {record['series_key']} (score {record['score']:.6f}): {record['description']}"}
