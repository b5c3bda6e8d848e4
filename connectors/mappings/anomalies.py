"""ops.anomalies.v1 -> ``anomalies``: each anomaly event (opened or resolved) of the anomaly job.

A row is the event: ``(tenant_id, event_id, occurred_at)``, the Kafka offset its version. An
anomaly's opening and resolution are two rows with one ``incident_id``.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingOf
from typing import Any

from connectors.mappings.base import KAFKA_COLUMNS, KAFKA_SELECT, Mapping, Row, within_years

ANOMALY_COLUMNS = (
    "event_id", "occurred_at", "tenant_id", "detector", "metric", "series_key", "window_start", "window_end",
    "observed", "expected", "lower_bound", "upper_bound", "score", "threshold", "severity", "status", "incident_id",
    "description", "trace_id",
)  # fmt: skip
_TIMES = ("occurred_at", "window_start", "window_end")
_ENUMS = ("severity", "status")


def anomaly_row(v: MappingOf[str, Any], topic: str, partition: int, offset: int) -> Row:
    """An ``Anomaly`` as an ``anomalies`` row."""
    return (*(v[column] for column in ANOMALY_COLUMNS), topic, partition, offset)


def anomaly_select(schema: dict[str, Any]) -> tuple[str, ...]:
    """``anomaly_row`` as ClickHouse expressions over the anomaly's Avro columns."""

    def rendered(column: str) -> str:
        if column in _TIMES:
            return within_years(column)
        return f"toString({column})" if column in _ENUMS else column

    return (*(rendered(c) for c in ANOMALY_COLUMNS), *KAFKA_SELECT)


ANOMALY_KEY = ("tenant_id", "event_id", "occurred_at")

ANOMALIES = Mapping("anomalies", (*ANOMALY_COLUMNS, *KAFKA_COLUMNS), anomaly_row, anomaly_select,
                    key=ANOMALY_KEY, version="kafka_offset")  # fmt: skip
