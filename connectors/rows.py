"""Records of the platform's topics as rows of the sinks' tables (pure functions)."""

from __future__ import annotations

import functools
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


@functools.cache
def chat_event_select() -> tuple[str, ...]:
    """``chat_event_row`` as ClickHouse expressions over the ``chat.actions.v1`` Avro columns
    (for sinks that decode in the engine), in ``CHAT_EVENT_COLUMNS`` order."""
    from chatstream.avro.catalog import load_catalog

    fields = {f["name"]: f for f in load_catalog()["chat.actions.v1"].schema["fields"]}
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
