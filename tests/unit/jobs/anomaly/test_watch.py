"""A watched series: an anomaly opens once, resolves once, and the state survives a restart."""

from __future__ import annotations

import json

import numpy as np
import pytest

from chatstream.avro.catalog import load_catalog
from chatstream.avro.serde import ConfluentEncoder
from jobs.anomaly.detector import DetectorConfig
from jobs.anomaly.events import slack_message
from jobs.anomaly.incident import IncidentPolicy
from jobs.anomaly.watch import Watch

CONFIG = DetectorConfig(window=300, train_points=200, refit_every=100)
POLICY = IncidentPolicy(resolve_after=10)
T0 = 1_790_000_000_000 - 1_790_000_000_000 % 60_000


def run(watch: Watch, values: list[float], start: int = 0) -> list[tuple[int, dict[str, object]]]:
    out = []
    for i, v in enumerate(values, start):
        record = watch.step("tenant:acme/messages", T0 + i * 60_000, v, POLICY)
        if record is not None:
            out.append((i, record))
    return out


def traffic(n: int, seed: int = 4) -> list[float]:
    return list(100 + np.random.default_rng(seed).normal(0, 5, n))


def test_a_collapse_opens_one_anomaly_that_resolves_when_traffic_returns() -> None:
    values = traffic(400) + [0.0] * 5 + traffic(40, seed=5)
    events = run(Watch.new(CONFIG), values)
    assert [r["status"] for _, r in events] == ["OPEN", "RESOLVED"]
    assert events[0][0] == 400 and 414 <= events[1][0] <= 425  # 10 calm minutes once the smoothing lets go
    opened, resolved = events[0][1], events[1][1]
    assert opened["incident_id"] == resolved["incident_id"] and opened["event_id"] != resolved["event_id"]
    assert opened["tenant_id"] == "acme" and opened["metric"] == "messages" and opened["observed"] == 0.0
    assert opened["severity"] == "CRITICAL" and resolved["severity"] == "INFO"
    lower, upper = opened["lower_bound"], opened["upper_bound"]
    assert isinstance(lower, float) and isinstance(upper, float) and lower < 100 < upper
    encoder = ConfluentEncoder(load_catalog()["ops.anomalies.v1"].schema, 1)
    for _, record in events:
        encoder.encode(record)  # valid Anomaly events
    assert "tenant:acme/messages" in str(slack_message(opened)["text"])


def test_a_restored_watch_goes_on_as_the_one_it_replaces() -> None:
    values = traffic(400) + [0.0] * 5 + traffic(40, seed=5)
    straight = run(Watch.new(CONFIG), values)
    first = Watch.new(CONFIG)
    run(first, values[:402])
    second = Watch.restore(CONFIG, json.loads(json.dumps(first.snapshot())))  # mid-anomaly, through JSON
    after = run(second, values[402:], start=402)
    expected = [e for e in straight if e[0] >= 402]
    assert [(i, r["status"], r["incident_id"], r["event_id"]) for i, r in after] == [
        (i, r["status"], r["incident_id"], r["event_id"]) for i, r in expected]  # fmt: skip
    assert [r["score"] for _, r in after] == pytest.approx([r["score"] for _, r in expected])
