"""infra/k8s's ScaledObjects read what the scaling job serves: the path, the JSON field, a
configured service each."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import yaml

from chatstream.avro.catalog import load_catalog
from jobs.scaling.config import DEFAULT_SERVICES
from jobs.scaling.signal_view import as_json
from tests.samples import sample

EXAMPLE = Path(__file__).parents[3] / "infra" / "k8s" / "scaledobjects.yaml"


def test_every_metrics_api_trigger_reads_desired_replicas_of_a_configured_service() -> None:
    body = as_json({**sample(load_catalog()["ops.scaling_signals.v1"].schema), "desired_replicas": 4}, now_ms=1_790_000_000_000)
    triggers = [t for doc in yaml.safe_load_all(EXAMPLE.read_text()) for t in doc["spec"]["triggers"] if t["type"] == "metrics-api"]
    assert len(triggers) == 3
    for trigger in triggers:
        meta = trigger["metadata"]
        path = urlparse(meta["url"]).path
        assert path.startswith("/v1/scaling/") and path.removeprefix("/v1/scaling/") in DEFAULT_SERVICES
        assert body[meta["valueLocation"]] == 4 and meta["targetValue"] == "1" and trigger["metricType"] == "AverageValue"
