"""analytics.sessions.v1 -> ``engagement_sessions``: one row per user session (the engagement job).

A row is a session: ``(tenant_id, session_start, event_id)``, the event id deterministic (the same
user and start always get the same id), so a replayed session is the same row again.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingOf
from typing import Any

from connectors.mappings.base import KAFKA_COLUMNS, KAFKA_SELECT, Mapping, Row, within_years

ENGAGEMENT_SESSION_COLUMNS = (
    "event_id", "occurred_at", "tenant_id", "user_id", "session_start", "session_end", "duration_ms",
    "turns", "events", "conversations", "models", *KAFKA_COLUMNS,
)  # fmt: skip


def engagement_session_row(v: MappingOf[str, Any], topic: str, partition: int, offset: int) -> Row:
    """A ``UserSession`` as an ``engagement_sessions`` row."""
    return (
        v["event_id"], v["occurred_at"], v["tenant_id"], v["user_id"], v["session_start"], v["session_end"],
        v["duration_ms"], v["turns"], v["events"], v["conversations"], sorted(v["models"]), topic, partition, offset,
    )  # fmt: skip


def engagement_session_select(schema: dict[str, Any]) -> tuple[str, ...]:
    """``engagement_session_row`` as ClickHouse expressions over the session's Avro columns."""
    expressions = {
        "occurred_at": within_years("occurred_at"),
        "session_start": within_years("session_start"),
        "session_end": within_years("session_end"),
        "models": "arraySort(models)",
        **{name: f"toUInt64({name})" for name in ("duration_ms", "turns", "events", "conversations")},
        **dict(zip(KAFKA_COLUMNS, KAFKA_SELECT, strict=True)),
    }
    return tuple(expressions.get(column, column) for column in ENGAGEMENT_SESSION_COLUMNS)


ENGAGEMENT_SESSION_KEY = ("tenant_id", "session_start", "event_id")

ENGAGEMENT_SESSIONS = Mapping("engagement_sessions", ENGAGEMENT_SESSION_COLUMNS, engagement_session_row,
                              engagement_session_select, key=ENGAGEMENT_SESSION_KEY, version="occurred_at")  # fmt: skip
"""``version`` is nominal: copies of a session are equal, and ClickHouse keeps the last inserted."""
