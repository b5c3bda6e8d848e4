"""ops.metrics.v1 -> ``ops_metrics``: one measurement of one service instance per row.

A row is the event: ``(tenant_id, event_id, occurred_at)``, the Kafka offset its version. The
labels are a JSON object in both stores (text in ClickHouse, read with ``JSONExtractString``;
``jsonb`` in PostgreSQL), keys sorted, written the same way by both decoders.
"""

from __future__ import annotations

import json
from collections.abc import Mapping as MappingOf
from typing import Any

from connectors.mappings.base import KAFKA_COLUMNS, KAFKA_SELECT, Mapping, Row, within_years

OPS_METRIC_COLUMNS = ("event_id", "occurred_at", "tenant_id", "service", "instance", "name", "value", "unit", "labels",
                      "trace_id")  # fmt: skip


def labels_json(labels: MappingOf[str, str]) -> str:
    """The labels as ClickHouse's ``toJSONString(mapSort(...))`` writes them (slashes unescaped)."""
    return json.dumps(dict(labels), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def ops_metric_row(v: MappingOf[str, Any], topic: str, partition: int, offset: int) -> Row:
    """A ``ServiceMetric`` as an ``ops_metrics`` row."""
    values = {**v, "labels": labels_json(v.get("labels") or {})}
    return (*(values[column] for column in OPS_METRIC_COLUMNS), topic, partition, offset)


def ops_metric_select(schema: dict[str, Any]) -> tuple[str, ...]:
    """``ops_metric_row`` as ClickHouse expressions over the metric's Avro columns."""
    rendered = {"occurred_at": within_years("occurred_at"),
                "labels": r"replaceAll(toJSONString(mapSort(labels)), '\\/', '/')"}  # fmt: skip
    return (*(rendered.get(c, c) for c in OPS_METRIC_COLUMNS), *KAFKA_SELECT)


OPS_METRIC_KEY = ("tenant_id", "event_id", "occurred_at")

OPS_METRICS = Mapping("ops_metrics", (*OPS_METRIC_COLUMNS, *KAFKA_COLUMNS), ops_metric_row, ops_metric_select,
                      key=OPS_METRIC_KEY, version="kafka_offset")  # fmt: skip
