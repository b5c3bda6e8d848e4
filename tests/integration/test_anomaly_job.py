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

from chatstream.settings import Settings
from jobs.anomaly.app import APP_ID
from jobs.anomaly.series import MINUTE_MS, epoch_ms, minute_of
from pipelines.topics import ANOMALIES
from tests.integration import ops_jobs
from tests.integration.ops_jobs import produce_metrics
from tests.integration.test_ingest import consume_tenant

ENV = {"CHATSTREAM_ANOMALY_RESOLVE_AFTER": "5", "CHATSTREAM_ANOMALY_IDLE_CLOSE_S": "3600",
       "CHATSTREAM_OPS_METRICS_INTERVAL_S": "0"}  # fmt: skip
COLLAPSED = range(60, 66)  # minutes the service served nothing


def produce_points(settings: Settings, service: str, start: int, minutes: range, load: list[float]) -> None:
    """One point per minute of ``service``'s requests/s; zero in the collapsed minutes."""
    produce_metrics(settings, ((service, "i1", "requests_per_s", start + i * MINUTE_MS + 30_000, 0.0 if i in COLLAPSED else load[i])
                               for i in minutes))  # fmt: skip


def run_until_caught_up(settings: Settings) -> None:
    ops_jobs.run_until_caught_up(settings, "anomaly", APP_ID, ENV)


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

    ops_jobs.drain_into_stores(settings, ANOMALIES.name)
    expected = [(str(opened["event_id"]), "OPEN", "CRITICAL"), (str(resolved["event_id"]), "RESOLVED", "INFO")]
    with psycopg.connect(settings.postgres_url()) as conn:
        pg = conn.execute("SELECT event_id::text, status, severity FROM anomalies WHERE series_key = %s ORDER BY occurred_at",
                          (series,)).fetchall()  # fmt: skip
    ch = clickhouse(("query", f"SELECT toString(event_id), status, severity FROM anomalies FINAL WHERE series_key = '{series}'"
                              " ORDER BY occurred_at", None))  # fmt: skip
    assert [tuple(r) for r in pg] == expected and [tuple(r) for r in ch] == expected
