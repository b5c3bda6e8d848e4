"""analytics.late_events.v1 -> ``late_events``: each event the engagement job found too late for its
window, with the watermark it missed.

A row is the late event: ``(tenant_id, source_topic, occurred_at, event_id)``; a replay after a
restart may report it again (its ``detected_at`` differs) and collapses into the same row.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingOf
from typing import Any

from connectors.mappings.base import KAFKA_COLUMNS, KAFKA_SELECT, Mapping, Row, within_years

LATE_EVENT_COLUMNS = (
    "event_id", "occurred_at", "tenant_id", "user_id", "source_topic", "watermark_at", "lateness_ms", "detected_at",
)  # fmt: skip


def late_event_row(v: MappingOf[str, Any], topic: str, partition: int, offset: int) -> Row:
    """A ``LateEvent`` as a ``late_events`` row."""
    return (*(v[column] for column in LATE_EVENT_COLUMNS), topic, partition, offset)


def late_event_select(schema: dict[str, Any]) -> tuple[str, ...]:
    """``late_event_row`` as ClickHouse expressions over the late event's Avro columns."""
    times = ("occurred_at", "watermark_at", "detected_at")
    return (*(within_years(c) if c in times else c for c in LATE_EVENT_COLUMNS), *KAFKA_SELECT)


LATE_EVENT_KEY = ("tenant_id", "source_topic", "occurred_at", "event_id")

LATE_EVENTS = Mapping("late_events", (*LATE_EVENT_COLUMNS, *KAFKA_COLUMNS), late_event_row, late_event_select,
                      key=LATE_EVENT_KEY, version="detected_at")  # fmt: skip
"""``version``: in a store that picks by it, the latest report of the event wins."""
