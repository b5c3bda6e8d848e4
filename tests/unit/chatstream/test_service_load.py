"""A component's load from its Prometheus metrics: rates, gauges, percentiles, label filters."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from chatstream.avro.catalog import load_catalog
from chatstream.avro.serde import ConfluentEncoder
from chatstream.ops_publisher import metric_records
from chatstream.service_load import Measure, measure, quantile, read

MEASURES = (
    Measure("requests_per_s", "app_requests", "rate", "1/s"),
    Measure("errors_per_s", "app_requests", "rate", "1/s", {"status": "5*"}),
    Measure("in_flight", "app_in_flight", "gauge", "streams"),
    Measure("latency_p50_s", "app_seconds", "p50", "s"),
    Measure("latency_p95_s", "app_seconds", "p95", "s"),
)


def registry() -> tuple[CollectorRegistry, Counter, Gauge, Histogram]:
    r = CollectorRegistry()
    return (r, Counter("app_requests", "", ["status"], registry=r), Gauge("app_in_flight", "", registry=r),
            Histogram("app_seconds", "", buckets=(0.1, 0.2, 0.4, 0.8), registry=r))  # fmt: skip


def test_rates_gauges_and_percentiles_over_an_interval() -> None:
    r, requests, in_flight, seconds = registry()
    requests.labels("200").inc(100)
    seconds.observe(5.0)  # before the interval: not in its percentiles
    before = read(MEASURES, r.collect())
    requests.labels("200").inc(18)
    requests.labels("503").inc(2)
    in_flight.set(7)
    for value in [0.05] * 50 + [0.3] * 50:
        seconds.observe(value)
    got = {m.name: v for m, v in measure(MEASURES, before, read(MEASURES, r.collect()), 10.0)}
    assert got["requests_per_s"] == pytest.approx(2.0) and got["errors_per_s"] == pytest.approx(0.2)
    assert got["in_flight"] == 7
    assert got["latency_p50_s"] == pytest.approx(0.1)  # the 50th of 100 is the first bucket's top
    assert got["latency_p95_s"] == pytest.approx(0.2 + 0.2 * 45 / 50)  # interpolated in (0.2, 0.4]


def test_the_first_reading_gives_gauges_only_and_an_idle_histogram_no_percentile() -> None:
    r, _requests, in_flight, _seconds = registry()
    in_flight.set(3)
    first = read(MEASURES, r.collect())
    assert [(m.name, v) for m, v in measure(MEASURES, None, first, 0.0)] == [("in_flight", 3.0)]
    got = {m.name for m, _ in measure(MEASURES, first, read(MEASURES, r.collect()), 5.0)}
    assert got == {"requests_per_s", "errors_per_s", "in_flight"}  # no observations: no latency


def test_a_counter_that_went_down_restarted() -> None:
    r, requests, _in_flight, _seconds = registry()
    requests.labels("200").inc(10)
    later = read(MEASURES, r.collect())
    before = read(MEASURES, r.collect())
    before.values["requests_per_s"] = 1000.0  # a restart: the counter is now below what it was
    got = {m.name: v for m, v in measure(MEASURES, before, later, 5.0)}
    assert got["requests_per_s"] == pytest.approx(2.0)


@pytest.mark.parametrize(("q", "buckets", "expected"), [
    (0.5, {1.0: 0, 2.0: 10, float("inf"): 10}, 1.5),
    (0.99, {1.0: 5, 2.0: 5, float("inf"): 10}, 2.0),  # in the +Inf bucket: the last finite bound
    (0.5, {1.0: 0, float("inf"): 0}, None),
    (0.5, {}, None),
])  # fmt: skip
def test_quantile_as_prometheus_interpolates(q: float, buckets: dict[float, float], expected: float | None) -> None:
    assert quantile(q, buckets) == expected


def test_metric_records_carry_every_measure_and_one_replica_with_stable_ids() -> None:
    m = Measure("requests_per_s", "app_requests", "rate", "1/s")
    records = metric_records("gateway", "host:1/0", 1_790_000_000_000, [(m, 2.5)], {"port": "8080"})
    assert [(r["name"], r["value"], r["unit"]) for r in records] == [("requests_per_s", 2.5, "1/s"), ("replicas", 1.0, "replicas")]
    assert records[0]["service"] == "gateway" and records[0]["labels"] == {"port": "8080"}
    again = metric_records("gateway", "host:1/0", 1_790_000_000_000, [(m, 9.0)])
    assert again[0]["event_id"] == records[0]["event_id"] != records[1]["event_id"]  # sent twice: one row
    encoder = ConfluentEncoder(load_catalog()["ops.metrics.v1"].schema, 1)
    assert all(encoder.encode(record)[:1] == b"\x00" for record in records)  # valid ServiceMetrics
