"""chat.actions.v1 -> ``chat_events``: one wide row per chat action, its detail also as JSON text."""

from __future__ import annotations

from collections.abc import Mapping as MappingOf
from typing import Any

import orjson

from connectors.mappings.base import Mapping, Row, within_years

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


def chat_event_row(v: MappingOf[str, Any], topic: str, partition: int, offset: int) -> Row:
    """A ``ChatAction`` as a ``chat_events`` row; its action's details also as JSON text."""
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
        topic,
        partition,
        offset,
    )


def chat_event_select(schema: dict[str, Any]) -> tuple[str, ...]:
    """``chat_event_row`` as ClickHouse expressions over the chat action's Avro columns."""
    fields = {f["name"]: f for f in schema["fields"]}
    details = {s.lower(): {f["name"] for f in fields[s.lower()]["type"][1]["fields"]}
               for s in fields["action"]["type"]["symbols"]}  # fmt: skip

    def pick(field: str, *, fallback: str | None = None, wrap: str = "{}") -> str:
        arms = [f"action = '{a.upper()}', {wrap.format(f'{a}.{field}')}" for a, names in details.items() if field in names]
        if fallback:
            arms += [f"action = '{a.upper()}', {a}.{fallback}" for a, names in details.items()
                     if fallback in names and field not in names]  # fmt: skip
        return f"multiIf({', '.join(arms)}, NULL)"

    as_json = ", ".join(f"action = '{a.upper()}', toJSONString({a})" for a in details)
    expressions = {
        "occurred_at": within_years("occurred_at"),
        "action": "toString(action)",
        "message_id": pick("message_id"),
        "model": pick("model", fallback="to_model"),
        "text_length": pick("text_length"),
        "rating": pick("rating", wrap="toString({})"),
        "details": f"multiIf({as_json}, '{{}}')",
        "kafka_topic": "{kafka_topic}",
        "kafka_partition": "{kafka_partition}",
        "kafka_offset": "{kafka_offset}",
    }
    return tuple(expressions.get(column, column) for column in CHAT_EVENT_COLUMNS)


CHAT_EVENT_KEY = ("tenant_id", "event_id", "action", "occurred_at")
"""What makes two chat actions the same event, in both stores: idempotency is per tenant, and
the same ``event_id`` with another action or another time is another event (kept, not dropped).
The gateway gives a retried event the same ``event_id``, action and ``occurred_at``."""

CHAT_EVENTS = Mapping("chat_events", CHAT_EVENT_COLUMNS, chat_event_row, chat_event_select,
                      key=CHAT_EVENT_KEY, version="kafka_offset")  # fmt: skip
