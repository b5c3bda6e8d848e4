"""The OpenAPI description of the gateway, as strict as the gateway itself.

The request body's JSON Schema is derived from the ``chat.actions.v1`` Avro schema (one branch
per action type, its detail record with the exact fields, integers as counts from 0 to their
Avro maximum, no unknown fields, no NUL in text) plus the rules ``gateway.events`` adds; every
status an endpoint can answer is listed with the error body it carries.
"""

from __future__ import annotations

from typing import Any

from gateway.events import INT_RANGE

NO_NUL = "^[^\\u0000]*$"
TEXT = {"type": "string", "pattern": NO_NUL}

ERROR_BODY = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "Machine-readable reason."},
                "message": {"type": "string"},
                "details": {
                    "type": "array",
                    "description": "Per event and field, when the request had events at fault.",
                    "items": {
                        "type": "object",
                        "properties": {"index": {"type": "integer"}, "field": {"type": "string"},
                                       "message": {"type": "string"}},  # fmt: skip
                    },
                },
            },
        }
    },
}

ERRORS = {
    400: "Malformed: the body is not JSON, not an event or a batch, or the connection closed mid-body.",
    401: "Missing, malformed, forged, expired or oversized bearer token (WWW-Authenticate).",
    403: "An event names another tenant or user than the token.",
    408: "The request (headers and body) did not arrive within the read timeout; the connection is closed.",
    413: "Body over the byte limit, more events than the batch limit or the tenant's burst, or an event "
    "larger than one Kafka record. Not retryable as is.",
    422: "Events that break the contract, per event and field; none of the request was accepted.",
    429: "The tenant's rate is exhausted; retry after Retry-After seconds.",
    431: "Request line and headers over the size limit; the connection is closed.",
    503: "Kafka did not take the request: none of its events is stored; retry after Retry-After seconds.",
    504: "Kafka did not confirm the commit in time: the events may or may not be stored. Retry with the "
    "same event ids (the stores keep one copy of each).",
}


OPENAI_ERROR_BODY = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["message", "type", "param", "code"], "properties": {
        "message": {"type": "string"}, "type": {"type": "string", "description": "OpenAI's error type."},
        "param": {"type": ["string", "null"], "description": "The request field at fault."},
        "code": {"type": ["string", "null"], "description": "Machine-readable reason (model_not_found, "
                 "timeout, tenant_rate_limited, budget_exceeded, a provider's error class, ...)."}}}},
}  # fmt: skip

CHAT_ERRORS = {
    400: "Not an OpenAI chat completion request, or a field chatstream cannot honour (n > 1, tools, "
    "non-text parts); `param` names it.",
    401: "Missing, malformed, forged or expired bearer token.",
    404: "`model` is no alias of the routing config (`model_not_found`).",
    408: "The request did not arrive within the read timeout.",
    413: "Body over the byte limit.",
    429: "The tenant's request rate, RPM, TPM or daily budget is spent; retry after Retry-After seconds.",
    431: "Request line and headers over the size limit.",
    502: "Every deployment tried failed (the provider's error class in `code`).",
    503: "Kafka did not take the request; retry after Retry-After seconds.",
    504: "No answer started within the first-token timeout (the dispatch job or Kafka is not answering), "
    "or the request's deadline passed.",
}


def chat_error_responses() -> dict[int | str, dict[str, Any]]:
    """The chat API's refusals, in OpenAI's error shape."""
    return {status: {"description": text, "content": {"application/json": {"schema": OPENAI_ERROR_BODY}}}
            for status, text in CHAT_ERRORS.items()}  # fmt: skip


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"description": ERRORS[status], "content": {"application/json": {"schema": ERROR_BODY}}}
        for status in statuses
    }


def _json_type(avro: Any) -> dict[str, Any]:
    if isinstance(avro, list):
        branches = [b for b in avro if b != "null"]
        inner = _json_type(branches[0]) if len(branches) == 1 else {"anyOf": [_json_type(b) for b in branches]}
        return {"anyOf": [inner, {"type": "null"}]} if "null" in avro else inner
    if isinstance(avro, dict):
        if avro.get("type") == "enum":
            return {"type": "string", "enum": list(avro["symbols"])}
        return _json_type(avro["type"])
    if avro in INT_RANGE:
        return {"type": "integer", "minimum": 0, "maximum": INT_RANGE[avro][1]}
    return {"boolean": {"type": "boolean"}, "string": TEXT, "double": {"type": "number"},
            "float": {"type": "number"}}.get(avro, {})  # fmt: skip


def _detail(record: dict[str, Any]) -> dict[str, Any]:
    properties = {}
    for f in record["fields"]:
        prop = _json_type(f["type"])
        if f.get("doc"):
            prop = {**prop, "description": f["doc"]}
        properties[f["name"]] = prop
    required = [f["name"] for f in record["fields"] if "default" not in f]
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    if record.get("doc"):
        schema["description"] = record["doc"]
    return schema


def event_schema(avro: dict[str, Any]) -> dict[str, Any]:
    """One chat action as a client sends it: a ``oneOf`` over the action types."""
    fields = {f["name"]: f for f in avro["fields"]}
    common: dict[str, Any] = {
        "event_id": {"type": "string", "format": "uuid", "description": "Yours for idempotent retries; "
                     "else a UUIDv7. A retry must carry the same event_id (and occurred_at)."},
        "occurred_at": {"oneOf": [{"type": "integer", "minimum": 0, "description": "epoch milliseconds"},
                                  {"type": "string", "format": "date-time"}],
                        "description": "At most a day ahead and CHATSTREAM_MAX_EVENT_AGE_DAYS (30) back; "
                        "default: the event id's UUIDv7 time, else now."},
        "tenant_id": {**TEXT, "description": "If given, must be the token's tenant."},
        "user_id": {**TEXT, "description": "If given, must be the token's subject."},
        "trace_id": {"type": "string", "pattern": "^(?!0{32})[0-9a-f]{32}$",
                     "description": "W3C trace id; default: the traceparent header's, else new."},
    }  # fmt: skip
    for name in ("conversation_id", "session_id", "client"):
        common[name] = _json_type(fields[name]["type"])
    branches = []
    for symbol in fields["action"]["type"]["symbols"]:
        kind = symbol.lower()
        detail = next(b for b in fields[kind]["type"] if isinstance(b, dict))
        branches.append({
            "type": "object",
            "title": kind,
            "required": ["type"],
            "properties": {"type": {"const": kind}, **common, kind: {"anyOf": [_detail(detail), {"type": "null"}]}},
            "additionalProperties": False,
        })  # fmt: skip
    return {"oneOf": branches}


def body_schema(avro: dict[str, Any], max_events: int) -> dict[str, Any]:
    event = event_schema(avro)
    batch = {
        "type": "object",
        "required": ["events"],
        "properties": {"events": {"type": "array", "minItems": 1, "maxItems": max_events, "items": event}},
        "additionalProperties": False,
    }
    return {"oneOf": [event, batch]}


ACCEPTED = {
    "description": "Every event is in Kafka (one transaction): stored exactly once downstream.",
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["accepted", "event_ids"],
        "properties": {"accepted": {"type": "integer"}, "event_ids": {"type": "array", "items": {"type": "string"}}},
    }}},
}  # fmt: skip

READINESS = {"type": "object", "properties": {"ready": {"type": "boolean"},
                                              "checks": {"type": "object", "additionalProperties": {"type": "boolean"}}}}  # fmt: skip

METRICS = {"description": "Prometheus text exposition format.",
           "content": {"text/plain; version=0.0.4": {"schema": {"type": "string"}}}}  # fmt: skip
