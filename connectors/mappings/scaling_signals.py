"""ops.scaling_signals.v1 -> ``scaling_signals``: each signal of the scaling job (one per service,
horizon and closed minute).

A row is the signal: ``(target, event_id, occurred_at)``, the Kafka offset its version.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingOf
from typing import Any

from connectors.mappings.base import KAFKA_COLUMNS, KAFKA_SELECT, Mapping, Row, within_years

SCALING_SIGNAL_COLUMNS = (
    "event_id", "occurred_at", "target", "metric", "observed", "forecast", "forecast_lower", "forecast_upper",
    "horizon_s", "capacity_per_replica", "current_replicas", "desired_replicas", "min_replicas", "max_replicas",
    "reason", "model", "trace_id",
)  # fmt: skip


def scaling_signal_row(v: MappingOf[str, Any], topic: str, partition: int, offset: int) -> Row:
    """A ``ScalingSignal`` as a ``scaling_signals`` row."""
    return (*(v[column] for column in SCALING_SIGNAL_COLUMNS), topic, partition, offset)


def scaling_signal_select(schema: dict[str, Any]) -> tuple[str, ...]:
    """``scaling_signal_row`` as ClickHouse expressions over the signal's Avro columns."""
    return (*(within_years(c) if c == "occurred_at" else c for c in SCALING_SIGNAL_COLUMNS), *KAFKA_SELECT)


SCALING_SIGNAL_KEY = ("target", "event_id", "occurred_at")

SCALING_SIGNALS = Mapping("scaling_signals", (*SCALING_SIGNAL_COLUMNS, *KAFKA_COLUMNS), scaling_signal_row,
                          scaling_signal_select, key=SCALING_SIGNAL_KEY, version="kafka_offset")  # fmt: skip
