"""The analytics API in the OpenAPI document: parameters, answer shapes and refusals."""

from __future__ import annotations

from typing import Any

from gateway.analytics_params import MAX_LIMIT, MAX_POINTS, MAX_RANGE_S, TOP_BY, TOP_WHAT
from gateway.analytics_sql import FIGURES, FUNNEL_STEPS
from gateway.openapi import ERROR_BODY

TIME = {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "number", "minimum": 0}]}
COMMON = [
    {"name": "from", "in": "query", "schema": TIME,
     "description": "Start of the range, inclusive: ISO 8601 (UTC when no offset) or epoch seconds. "
                    "Default: `to` minus one hour."},
    {"name": "to", "in": "query", "schema": TIME,
     "description": f"End of the range, exclusive; default now. At most {MAX_RANGE_S // 86400} days after `from`."},
    {"name": "tenant", "in": "query", "schema": {"type": "string"},
     "description": "Narrow to one tenant. A token reads its own tenant only (403 for another) unless its `roles` "
                    "claim holds `admin`, which reads every tenant by default."},
    {"name": "model", "in": "query", "schema": {"type": "string"},
     "description": "Narrow to one model (the answering model): the engagement windows' model rows."},
]  # fmt: skip
FIGURE = {"name": "figure", "in": "path", "required": True, "schema": {"type": "string", "enum": list(FIGURES)}}
STEP = {"name": "step", "in": "query", "schema": {"type": "integer", "minimum": 60, "multipleOf": 60},
        "description": f"Seconds per point, whole minutes, at most {MAX_POINTS} points over the range; default: "
                       "the smallest of 1, 2, 5, 10, 15, 30 min, 1, 2, 3, 6, 12, 24 h giving at most 360 points."}  # fmt: skip
WHAT = {"name": "what", "in": "path", "required": True, "schema": {"type": "string", "enum": list(TOP_WHAT)}}
BY = {"name": "by", "in": "query", "schema": {"type": "string", "enum": list(TOP_BY), "default": "messages"}}
LIMIT = {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 10}}
DAYS = {"name": "days", "in": "query", "schema": {"type": "string", "default": "1,7,30", "pattern": "^[0-9]+(,[0-9]+)*$"},
        "description": "Comma-separated days N (1..365, at most 10) for day-N retention."}  # fmt: skip

NUMBER = {"type": ["number", "null"]}
COUNT = {"type": "integer", "minimum": 0}
SCOPE = {"from": {"type": "string", "format": "date-time"}, "to": {"type": "string", "format": "date-time"},
         "tenant": {"type": ["string", "null"]}, "model": {"type": ["string", "null"]}}  # fmt: skip


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": list(properties), "properties": {**SCOPE, **properties}}


OVERVIEW = _object({
    **{name: COUNT for name in ("active_users", "conversations", "messages", "sessions", "feedback_up", "feedback_down",
                                "regenerations", "generations_stopped", "ai_requests", "ai_failed", "prompt_tokens",
                                "completion_tokens")},
    **{name: NUMBER for name in ("avg_session_s", "feedback_ratio", "error_rate", "latency_p50_ms", "latency_p95_ms",
                                 "latency_p99_ms", "ttft_p50_ms", "ttft_p95_ms")},
    "cost_usd": {"type": "number"},
})  # fmt: skip
TIMESERIES = _object({
    "figure": {"type": "string"}, "unit": {"type": "string"}, "step_s": {"type": "integer"},
    "series": {"type": "array", "items": {"type": "object", "properties": {
        "name": {"type": "string", "description": "`all`, or the model / tenant of a split figure."},
        "points": {"type": "array", "items": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "number"}],
                   "description": "[bucket start in epoch ms, value]; counts and sums are 0-filled, ratios and "
                                  "percentiles absent where there is nothing to divide"}}}}},
})  # fmt: skip
TOP = _object({"what": {"type": "string"}, "by": {"type": "string"}, "rows": {"type": "array", "items": {
    "type": "object", "properties": {"key": {"type": "string"}, "tenant": {"type": "string", "description": "users only"},
                                     "messages": COUNT, "ai_requests": COUNT, "tokens": COUNT,
                                     "cost_usd": {"type": "number"}}}}})  # fmt: skip
FUNNEL = _object({"steps": {"type": "array", "description": f"In order: {', '.join(FUNNEL_STEPS)}.", "items": {
    "type": "object", "properties": {"name": {"type": "string"}, "conversations": COUNT}}}})  # fmt: skip
RETENTION = _object({"days": {"type": "array", "items": {"type": "integer"}}, "cohorts": {"type": "array", "items": {
    "type": "object", "properties": {"day": {"type": "string", "format": "date"}, "users": COUNT,
                                     "retained": {"type": "array", "items": COUNT}}}}})  # fmt: skip
DIMENSIONS = _object({"tenants": {"type": "array", "items": {"type": "string"}},
                      "models": {"type": "array", "items": {"type": "string"}}})  # fmt: skip
_ANOMALY = {"type": "object", "description": "An anomaly that opened in the range (the anomaly job's).", "properties": {
    "at": {"type": "integer", "description": "Its first minute, epoch ms."}, "end": {"type": "integer"},
    "label": {"type": "string"}, "series": {"type": "string"}, "metric": {"type": "string"},
    "severity": {"type": "string", "enum": ["INFO", "WARNING", "CRITICAL"]}, "observed": {"type": "number"},
    "expected": {"type": ["number", "null"]}, "score": {"type": "number"}, "description": {"type": ["string", "null"]},
    "incident_id": {"type": ["string", "null"]}}}  # fmt: skip
_SCALING = {"type": "object", "description": "A change of a service's desired replicas (the scaling job's); admins only.",
            "properties": {"at": {"type": "integer"}, "label": {"type": "string"}, "service": {"type": "string"},
                           "desired_replicas": {"type": "integer"}, "current_replicas": {"type": ["integer", "null"]},
                           "reason": {"type": "string"}}}  # fmt: skip
ANNOTATIONS = _object({"anomalies": {"type": "array", "items": _ANOMALY}, "scaling": {"type": "array", "items": _SCALING}})

ERRORS = {
    400: "A parameter is malformed or out of range (`invalid_parameter`; the message names it): from not before "
         "to, a range over 400 days, an unknown figure / what / by, a step that is not whole minutes or draws "
         "more than 1,440 points, a limit outside 1..100, bad retention days.",
    401: "Missing, malformed, forged or expired bearer token (WWW-Authenticate).",
    403: "`tenant` names another tenant than the token's, and the token has no admin role.",
    500: "The query failed in ClickHouse (a bug: the message says how).",
    503: "ClickHouse did not answer: unreachable, or over CHATSTREAM_ANALYTICS_TIMEOUT_S (`clickhouse_unavailable`); "
         "retry after Retry-After seconds.",
}  # fmt: skip


def route(summary: str, schema: dict[str, Any], extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The keyword arguments of an analytics route's decorator."""
    responses: dict[int | str, dict[str, Any]] = {
        200: {"description": "The figures.", "content": {"application/json": {"schema": schema}}},
        **{status: {"description": text, "content": {"application/json": {"schema": ERROR_BODY}}}
           for status, text in ERRORS.items()},
    }  # fmt: skip
    return {"summary": summary, "tags": ["analytics"], "responses": responses,
            "openapi_extra": {"parameters": [*(extra or []), *COMMON]}}  # fmt: skip
