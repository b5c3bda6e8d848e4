"""ai.responses.v1 -> ``ai_requests``: one row per AI request, its latest event's state.

Every event of one request (its chunks, then one COMPLETED or FAILED) carries the same
``request_id`` and ``requested_at``, and the dispatch job writes them all to one partition, in
order, the terminal event last. So the row's identity is the request, ``(tenant_id, request_id,
requested_at)``, and its version the Kafka offset: the events of a request collapse into one row,
the latest wins (the terminal one once the request ended; an in-flight request shows its latest
chunk). A COMPLETED replayed or produced twice is the same row again: a request is billed at
most once per ``request_id`` in both stores.

``requested_at`` is nullable in the contract (compatibility) but the row cannot do without it:
falling back to ``occurred_at`` would give every event of the request a row of its own (a
second cost row for a replayed COMPLETED). A record without it is dead-lettered with a
``MappingError`` (the engine's query fails on it, Python rejects that record).

The answer's text stays out (product analytics keeps content out): ``content_length`` is the
length of a COMPLETED's ``content`` in characters (code points), null otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingOf
from typing import Any

from connectors.mappings.base import Mapping, Row, not_null, require, within_years

TABLE = "ai_requests"

AI_REQUEST_COLUMNS = (
    "request_id",
    "requested_at",
    "occurred_at",
    "tenant_id",
    "user_id",
    "conversation_id",
    "session_id",
    "trace_id",
    "client",
    "message_id",
    "status",
    "provider",
    "model",
    "chunks",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "tokens_estimated",
    "cost_usd",
    "latency_ms",
    "time_to_first_token_ms",
    "error_code",
    "error_message",
    "retryable",
    "attempts",
    "fallback_used",
    "content_length",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
)

STATUS = {"CHUNK": "streaming", "COMPLETED": "completed", "FAILED": "failed"}
"""The request's status by the kind of its latest event; a kind added later is its own name in
lower case."""


def ai_request_row(v: MappingOf[str, Any], topic: str, partition: int, offset: int) -> Row:
    """An ``AiResponse`` as the ``ai_requests`` row of its request. ``chunks`` is the number of
    chunks sent so far: a CHUNK's ``sequence`` (its index from 0) plus one, a terminal event's
    ``sequence`` (the count) as is."""
    kind: str = v["kind"]
    content: str | None = v.get("content")
    return (
        v["request_id"],
        require(v, "requested_at", TABLE),
        v["occurred_at"],
        v["tenant_id"],
        v["user_id"],
        v.get("conversation_id"),
        v.get("session_id"),
        v["trace_id"],
        v.get("client"),
        v.get("message_id"),
        STATUS.get(kind, kind.lower()),
        v["provider"],
        v["model"],
        v["sequence"] + 1 if kind == "CHUNK" else v["sequence"],
        v.get("finish_reason"),
        v.get("prompt_tokens"),
        v.get("completion_tokens"),
        v.get("total_tokens"),
        v["tokens_estimated"],
        v.get("cost_usd"),
        v.get("latency_ms"),
        v.get("time_to_first_token_ms"),
        v.get("error_code"),
        v.get("error_message"),
        v.get("retryable"),
        v["attempts"],
        v["fallback_used"],
        len(content) if kind == "COMPLETED" and content is not None else None,
        topic,
        partition,
        offset,
    )


def ai_request_select(schema: dict[str, Any]) -> tuple[str, ...]:
    """``ai_request_row`` as ClickHouse expressions over the response's Avro columns."""
    kind = "toString(kind)"  # the enum as text: a symbol the schema lacks is no error
    arms = ", ".join(f"{kind} = '{symbol}', '{status}'" for symbol, status in STATUS.items())
    expressions = {
        "requested_at": not_null(within_years("requested_at"), "requested_at", TABLE),
        "occurred_at": within_years("occurred_at"),
        "status": f"multiIf({arms}, lower({kind}))",
        "chunks": f"if({kind} = 'CHUNK', sequence + 1, sequence)",
        "content_length": f"if({kind} = 'COMPLETED', lengthUTF8(content), NULL)",
        "kafka_topic": "{kafka_topic}",
        "kafka_partition": "{kafka_partition}",
        "kafka_offset": "{kafka_offset}",
    }
    return tuple(expressions.get(column, column) for column in AI_REQUEST_COLUMNS)


AI_REQUEST_KEY = ("tenant_id", "request_id", "requested_at")
"""What makes events one request's row, in both stores: idempotency is per tenant, and every
event of a request carries its ``request_id`` and ``requested_at`` (the partition column of both
stores, so the events of a request always meet in one partition)."""

AI_REQUESTS = Mapping(TABLE, AI_REQUEST_COLUMNS, ai_request_row, ai_request_select,
                      key=AI_REQUEST_KEY, version="kafka_offset")  # fmt: skip
