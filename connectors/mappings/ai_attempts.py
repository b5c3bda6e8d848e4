"""ai.requests.v1 -> ``ai_attempts``: one row per attempt at an answer (first try, retry, fallback):
the deployment chosen for it and why.

An attempt is an event: ``(tenant_id, event_id, occurred_at)``, copies collapsing to the one with
the highest Kafka offset. The prompt's text stays out (product analytics keeps content out):
``prompt_messages`` is how many messages it held. ``requested_at`` is stored as it comes, null
included: it is no part of this row's identity (``ai_requests`` is the table that needs it).
"""

from __future__ import annotations

from collections.abc import Mapping as MappingOf
from typing import Any

from connectors.mappings.base import Mapping, Row, within_years

AI_ATTEMPT_COLUMNS = (
    "event_id",
    "occurred_at",
    "requested_at",
    "tenant_id",
    "user_id",
    "conversation_id",
    "session_id",
    "trace_id",
    "client",
    "request_id",
    "message_id",
    "attempt",
    "deployment",
    "reason",
    "provider",
    "model",
    "stream",
    "max_tokens",
    "temperature",
    "prompt_tokens_estimate",
    "prompt_messages",
    "deadline_at",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
)


def ai_attempt_row(v: MappingOf[str, Any], topic: str, partition: int, offset: int) -> Row:
    """An ``AiRequest`` as an ``ai_attempts`` row."""
    return (
        v["event_id"],
        v["occurred_at"],
        v.get("requested_at"),
        v["tenant_id"],
        v["user_id"],
        v.get("conversation_id"),
        v.get("session_id"),
        v["trace_id"],
        v.get("client"),
        v["request_id"],
        v.get("message_id"),
        v["attempt"],
        v.get("deployment"),
        v.get("reason"),
        v["provider"],
        v["model"],
        v["stream"],
        v.get("max_tokens"),
        v.get("temperature"),
        v.get("prompt_tokens_estimate"),
        len(v["messages"]),
        v.get("deadline_at"),
        topic,
        partition,
        offset,
    )


def ai_attempt_select(schema: dict[str, Any]) -> tuple[str, ...]:
    """``ai_attempt_row`` as ClickHouse expressions over the request's Avro columns."""
    expressions = {
        "occurred_at": within_years("occurred_at"),
        "requested_at": within_years("requested_at"),
        "deadline_at": within_years("deadline_at"),
        "prompt_messages": "length(messages)",
        "kafka_topic": "{kafka_topic}",
        "kafka_partition": "{kafka_partition}",
        "kafka_offset": "{kafka_offset}",
    }
    return tuple(expressions.get(column, column) for column in AI_ATTEMPT_COLUMNS)


AI_ATTEMPT_KEY = ("tenant_id", "event_id", "occurred_at")
"""What makes two attempt events the same, in both stores: idempotency is per tenant, and the
same ``event_id`` at another time is another event (as for chat events)."""

AI_ATTEMPTS = Mapping("ai_attempts", AI_ATTEMPT_COLUMNS, ai_attempt_row, ai_attempt_select,
                      key=AI_ATTEMPT_KEY, version="kafka_offset")  # fmt: skip
