"""Service metrics as rows: the labels as one JSON object, keys sorted."""

from __future__ import annotations

import json

from chatstream.avro.catalog import load_catalog
from connectors.mappings import OPS_METRICS, ops_metric_row
from tests.samples import sample


def test_a_metric_row_holds_its_labels_as_sorted_json_and_its_coordinates() -> None:
    record = {**sample(load_catalog()["ops.metrics.v1"].schema), "labels": {"z": "1", "route": "/v1/events", "é": "ü"}}
    row = dict(zip(OPS_METRICS.columns, ops_metric_row(record, "ops.metrics.v1", 2, 41)))
    assert row["labels"] == '{"route":"/v1/events","z":"1","é":"ü"}'
    assert json.loads(row["labels"]) == record["labels"]
    assert (row["kafka_topic"], row["kafka_partition"], row["kafka_offset"]) == ("ops.metrics.v1", 2, 41)
    assert row["value"] == record["value"] and row["service"] == record["service"]
