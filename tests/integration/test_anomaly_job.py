"""The anomaly job on real Kafka: a service's load (its ops.metrics.v1 points) collapses to zero,
one anomaly opens and later resolves, and a restart in between keeps the series' state (a job
that lost it would still be warming up when the collapse comes, and find nothing). A service of
the test's own: other tests' tenants and dashboards never see it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import psycopg
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from chatstream.avro.catalog import load_catalog
from chatstream.avro.serde import ConfluentEncoder
from chatstream.lag import wait_caught_up
from chatstream.settings import Settings
from jobs.anomaly.app import APP_ID, SERIES_TOPIC
from jobs.anomaly.series import MINUTE_MS, epoch_ms, minute_of
from pipelines.sinks import CONSUMER_GROUPS
from pipelines.topics import ANOMALIES, METRICS
from tests.integration.platform import Component
from tests.integration.test_ingest import consume_tenant
from tests.samples import sample

ENV = {"CHATSTREAM_ANOMALY_RESOLVE_AFTER": "5", "CHATSTREAM_ANOMALY_IDLE_CLOSE_S": "3600",
       "CHATSTREAM_OPS_METRICS_INTERVAL_S": "0"}  # fmt: skip
COLLAPSED = range(60, 66)  # minutes the service served nothing


def produce_points(settings: Settings, service: str, start: int, minutes: range, load: list[float]) -> None:
    """One point per minute of ``service``'s requests/s; zero in the collapsed minutes."""
    contract = load_catalog()[METRICS.name]
    with SchemaRegistryClient({"url": settings.schema_registry_url}) as registry:
        encoder = ConfluentEncoder(contract.schema, registry.get_latest_version(contract.subject).schema_id)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "enable.idempotence": True})
    for i in minutes:
        point = {**sample(contract.schema), "service": service, "instance": "i1", "name": "requests_per_s", "labels": {},
                 "occurred_at": start + i * MINUTE_MS + 30_000, "value": 0.0 if i in COLLAPSED else load[i]}  # fmt: skip
        producer.produce(METRICS.name, encoder.encode(point), service.encode())
    assert producer.flush(30) == 0


def run_until_caught_up(settings: Settings) -> None:
    job = Component(settings, "job", "anomaly", env=ENV).start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            lags = {t: wait_caught_up(settings.kafka_bootstrap_servers, [APP_ID], t, timeout_s=5) for t in (METRICS.name, SERIES_TOPIC)}
            if not any(v for lag in lags.values() for v in lag.values()):
                break
        else:
            raise AssertionError(f"the anomaly job did not catch up: {lags}\n{job.log_tail()}")
        time.sleep(3)  # Faust commits every 2.8 s: what the series agent did is in the tables
    finally:
        assert job.stop() == 0, job.log_tail()


def test_a_collapse_opens_one_anomaly_across_a_restart_and_it_resolves_and_lands_in_both_stores(
    running_stack: Settings, clickhouse: Callable[..., Any], unique: str
) -> None:
    settings = running_stack
    service = f"collapse-{unique}"
    series = f"service:{service}/requests_per_s"
    start = minute_of(int(time.time() * 1000)) - 120 * MINUTE_MS
    load = list(100 + np.random.default_rng(9).normal(0, 5, 90))
    produce_points(settings, service, start, range(0, 45), load)
    run_until_caught_up(settings)  # minutes 0-43 scored; then the job stops
    produce_points(settings, service, start, range(45, 90), load)
    run_until_caught_up(settings)  # restarted from its tables

    found = [r for r in consume_tenant(settings, "_platform", 2, topic=ANOMALIES.name) if r["series_key"] == series]
    assert [r["status"] for r in found] == ["OPEN", "RESOLVED"], found
    opened, resolved = found
    assert epoch_ms(opened["window_start"]) == start + COLLAPSED[0] * MINUTE_MS and opened["observed"] == 0.0
    assert opened["incident_id"] == resolved["incident_id"] and opened["severity"] == "CRITICAL"
    assert opened["expected"] is not None and 90 < opened["expected"] < 110
    assert start + 70 * MINUTE_MS <= epoch_ms(resolved["window_start"]) <= start + 88 * MINUTE_MS

    sinks = [Component(settings, "sink", kind, env={"CHATSTREAM_OPS_METRICS_INTERVAL_S": "0"}).start() for kind in CONSUMER_GROUPS]
    try:
        lags = wait_caught_up(settings.kafka_bootstrap_servers, list(CONSUMER_GROUPS.values()), ANOMALIES.name, timeout_s=90)
        assert not any(lags.values()), (lags, [s.log_tail() for s in sinks])
    finally:
        codes = [s.stop() for s in sinks]
    assert codes == [0, 0], [s.log_tail() for s in sinks]
    expected = [(str(opened["event_id"]), "OPEN", "CRITICAL"), (str(resolved["event_id"]), "RESOLVED", "INFO")]
    with psycopg.connect(settings.postgres_url()) as conn:
        pg = conn.execute("SELECT event_id::text, status, severity FROM anomalies WHERE series_key = %s ORDER BY occurred_at",
                          (series,)).fetchall()  # fmt: skip
    ch = clickhouse(("query", f"SELECT toString(event_id), status, severity FROM anomalies FINAL WHERE series_key = '{series}'"
                              " ORDER BY occurred_at", None))  # fmt: skip
    assert [tuple(r) for r in pg] == expected and [tuple(r) for r in ch] == expected
