"""analytics.engagement.v1 -> ``engagement_windows``: one row per window and key (the engagement job).

A row is a window: ``(dimension, tenant_id, window_start, event_id)``, the event id deterministic
(the same window and key always get the same id), so a replayed window is the same row again.
``user_id`` is the user on ``user`` rows and empty elsewhere (the Avro record carries the job's
principal there). The columns the contract marks unused (``latency_p50_ms`` ...) stay out.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingOf
from typing import Any

from connectors.mappings.base import KAFKA_COLUMNS, KAFKA_SELECT, Mapping, Row, within_years

COUNTS = (
    "active_users", "active_conversations", "sessions_started", "conversations_created", "messages_sent",
    "regenerations", "generations_stopped", "feedback_up", "feedback_down", "ai_requests", "ai_completed",
    "ai_failed", "prompt_tokens", "completion_tokens",
)  # fmt: skip
FIGURES = ("cost_usd", "latency_count", "ttft_count", "latency_sum_ms", "ttft_sum_ms", "latency_max_ms", "ttft_max_ms")
ENGAGEMENT_WINDOW_COLUMNS = (
    "event_id", "occurred_at", "dimension", "tenant_id", "model", "user_id", "window_start", "window_end",
    *COUNTS, *FIGURES, "latency_hist", "ttft_hist", "engagement_score", *KAFKA_COLUMNS,
)  # fmt: skip
_UNSIGNED = {*COUNTS, "latency_count", "ttft_count"}


def engagement_window_row(v: MappingOf[str, Any], topic: str, partition: int, offset: int) -> Row:
    """An ``EngagementWindow`` as an ``engagement_windows`` row."""
    plain = {name: v[name] for name in (*COUNTS, *FIGURES)}
    return (
        v["event_id"], v["occurred_at"], v["dimension"], v["tenant_id"], v.get("model"),
        v["user_id"] if v["dimension"] == "user" else "", v["window_start"], v["window_end"],
        *(plain[name] for name in (*COUNTS, *FIGURES)),
        list(v["latency_hist"]), list(v["ttft_hist"]), v.get("engagement_score"), topic, partition, offset,
    )  # fmt: skip


def engagement_window_select(schema: dict[str, Any]) -> tuple[str, ...]:
    """``engagement_window_row`` as ClickHouse expressions over the window's Avro columns."""
    expressions = {
        "occurred_at": within_years("occurred_at"),
        "window_start": within_years("window_start"),
        "window_end": within_years("window_end"),
        "user_id": "if(dimension = 'user', user_id, '')",
        "latency_hist": "CAST(latency_hist, 'Array(UInt64)')",
        "ttft_hist": "CAST(ttft_hist, 'Array(UInt64)')",
        **{name: f"toUInt64({name})" for name in _UNSIGNED},
        **dict(zip(KAFKA_COLUMNS, KAFKA_SELECT, strict=True)),
    }
    return tuple(expressions.get(column, column) for column in ENGAGEMENT_WINDOW_COLUMNS)


ENGAGEMENT_WINDOW_KEY = ("dimension", "tenant_id", "window_start", "event_id")
"""A window row's identity, ClickHouse's sort key: a replay has the same id, so it collapses."""

ENGAGEMENT_WINDOWS = Mapping("engagement_windows", ENGAGEMENT_WINDOW_COLUMNS, engagement_window_row,
                             engagement_window_select, key=ENGAGEMENT_WINDOW_KEY, version="occurred_at")  # fmt: skip
"""``version`` is nominal: copies of a window are equal, and ClickHouse keeps the last inserted."""
