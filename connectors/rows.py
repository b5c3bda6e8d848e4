"""Records of the platform's topics as rows of the sinks' tables (pure functions)."""

from __future__ import annotations

from typing import Any

import orjson

from connectors.sink import Row, SourceRecord

CHAT_EVENT_COLUMNS = (
    "event_id",
    "occurred_at",
    "tenant_id",
    "user_id",
    "conversation_id",
    "session_id",
    "trace_id",
    "client",
    "action",
    "message_id",
    "model",
    "text_length",
    "rating",
    "details",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
)


def chat_event_row(record: SourceRecord) -> Row:
    """A ``ChatAction`` as a ``chat_events`` row; its action's details also as JSON text."""
    v = record.value
    action: str = v["action"]
    detail: dict[str, Any] = v.get(action.lower()) or {}
    return (
        v["event_id"],
        v["occurred_at"],
        v["tenant_id"],
        v["user_id"],
        v.get("conversation_id"),
        v.get("session_id"),
        v["trace_id"],
        v.get("client"),
        action,
        detail.get("message_id"),
        detail.get("model") or detail.get("to_model"),
        detail.get("text_length"),
        detail.get("rating"),
        orjson.dumps(detail, default=str).decode(),
        record.topic,
        record.partition,
        record.offset,
    )
