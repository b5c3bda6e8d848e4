"""The scaling job on real Kafka: a service of the test's own publishes an hourly load (its level
wandering) for five hours (its ops.metrics.v1 points, three instances); the job signals every minute, the reactive
value while it has too little history, its forecaster's once it has. A restart in between keeps
the history: the job stops at minute 200, before the 240 minutes a fit needs, so a job that lost
its table would never fit by minute 299. While it runs, ``GET /v1/scaling/{service}`` answers as
KEDA's metrics-api scaler reads it, and ``/metrics`` has the gauge; the sinks land the signals in
both stores."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import psycopg

from chatstream.settings import Settings
from jobs.anomaly.series import MINUTE_MS, epoch_ms, minute_of
from jobs.scaling.app import APP_ID
from pipelines.topics import SCALING_SIGNALS
from tests.integration import ops_jobs
from tests.integration.platform import Component
from tests.integration.test_ingest import consume_tenant

MINUTES = 300
FIT_AFTER = 240  # minutes of history
STOP_AT = 200


def env(service: str) -> dict[str, str]:
    target = {"metric": "requests_per_s", "capacity_per_replica": 100, "horizon_minutes": 5, "max_replicas": 10}
    return {"CHATSTREAM_SCALING_SERVICES": json.dumps({service: target}), "CHATSTREAM_SCALING_SEASON_MINUTES": "60",
            "CHATSTREAM_SCALING_MIN_HISTORY_MINUTES": str(FIT_AFTER), "CHATSTREAM_SCALING_IDLE_CLOSE_S": "3600",
            "CHATSTREAM_OPS_METRICS_INTERVAL_S": "0"}  # fmt: skip


def hourly_load(seed: int = 4) -> np.ndarray:
    """An hourly wave whose level wanders (an AR(1) in log space) plus 2 % noise: the recent
    minutes say more about the next ones than the same minutes an hour ago, so the forecaster
    beats seasonal-naive on its holdout (its confidence is above zero)."""
    rng = np.random.default_rng(seed)
    level = np.zeros(MINUTES)
    for i in range(1, MINUTES):
        level[i] = 0.97 * level[i - 1] + rng.normal(0, 0.04)
    wave = 1 + 0.6 * np.sin(2 * np.pi * np.arange(MINUTES) / 60)
    return 200 * wave * np.exp(level) * rng.normal(1, 0.02, MINUTES)


def points(service: str, start: int, minutes: range, load: np.ndarray) -> list[tuple[str, str, str, int, float]]:
    """Each minute: three instances share the load, and each says it is one replica."""
    out = []
    for i in minutes:
        at = start + i * MINUTE_MS + 30_000
        for instance in ("a", "b", "c"):
            out += [(service, instance, "requests_per_s", at, float(load[i]) / 3), (service, instance, "replicas", at, 1.0)]
    return out


def test_the_job_signals_every_minute_forecasts_once_fitted_across_a_restart_and_serves_keda(
    running_stack: Settings, clickhouse: Callable[..., Any], unique: str
) -> None:
    settings = running_stack
    service = f"scale-{unique}"
    start = minute_of(int(time.time() * 1000)) - (MINUTES + 5) * MINUTE_MS
    load = hourly_load()
    ops_jobs.produce_metrics(settings, points(service, start, range(0, STOP_AT), load))
    ops_jobs.run_until_caught_up(settings, "scaling", APP_ID, env(service))  # minutes 0-198 signalled

    ops_jobs.produce_metrics(settings, points(service, start, range(STOP_AT, MINUTES), load))
    job = Component(settings, "job", "scaling", env=env(service)).start()
    try:
        ops_jobs.caught_up(settings, APP_ID, job)
        base = f"http://{settings.gateway_host}:{settings.scaling_port}"
        deadline = time.monotonic() + 30
        while (answer := httpx.get(f"{base}/v1/scaling/{service}", timeout=5)).status_code == 404 and time.monotonic() < deadline:
            time.sleep(0.5)  # the view reads the signals topic from its beginning
        missing = httpx.get(f"{base}/v1/scaling/no-such-{unique}", timeout=5)
        gauge = httpx.get(f"{base}/metrics", timeout=5).text
    finally:
        assert job.stop() == 0, job.log_tail()

    signals = {epoch_ms(s["occurred_at"]): s for s in consume_tenant(settings, "_platform", MINUTES - 1, topic=SCALING_SIGNALS.name)
               if s["target"] == service}  # fmt: skip
    # one signal per closed minute (the last minute stays open: nothing later closed it)
    assert sorted(signals) == [start + (i + 1) * MINUTE_MS for i in range(MINUTES - 1)]
    fitted = [i for i in range(MINUTES - 1) if signals[start + (i + 1) * MINUTE_MS]["model"] == "hist-gradient-boosting"]
    assert fitted and fitted[0] >= FIT_AFTER - 1 and fitted == list(range(fitted[0], MINUTES - 1))
    assert not any(signals[start + (i + 1) * MINUTE_MS]["reason"].startswith("forecast") for i in range(FIT_AFTER - 1))
    assert {s["current_replicas"] for s in signals.values()} <= {None, 3} and signals[start + 10 * MINUTE_MS]["current_replicas"] == 3
    late = [signals[start + (i + 1) * MINUTE_MS] for i in fitted]
    assert any(s["reason"].startswith("forecast") for s in late), [s["reason"] for s in late]
    assert all(s["forecast_lower"] <= s["forecast"] <= s["forecast_upper"] and 1 <= s["desired_replicas"] <= 10 for s in late)
    # the forecast made after minute i is the peak of minutes i+1..i+5
    errors = [abs(signals[start + (i + 1) * MINUTE_MS]["forecast"] / load[i + 1:i + 6].max() - 1) for i in fitted if i + 6 <= MINUTES]
    assert float(np.median(errors)) < 0.2, errors

    newest = signals[max(signals)]
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["desiredReplicas"] == newest["desired_replicas"] and body["currentReplicas"] == 3
    assert body["service"] == service and body["horizonSeconds"] == 300 and body["model"] == "hist-gradient-boosting"
    assert missing.status_code == 404 and "error" in missing.json()
    assert f'chatstream_desired_replicas{{service="{service}"}} {float(newest["desired_replicas"])}' in gauge

    ops_jobs.drain_into_stores(settings, SCALING_SIGNALS.name)
    with psycopg.connect(settings.postgres_url()) as conn:
        pg = conn.execute("SELECT count(*), count(DISTINCT event_id), max(desired_replicas) FROM scaling_signals WHERE target = %s",
                          (service,)).fetchone()  # fmt: skip
    ch = clickhouse(("query", f"SELECT count(), uniqExact(event_id), max(desired_replicas) FROM scaling_signals FINAL"
                              f" WHERE target = '{service}'", None))  # fmt: skip
    top = max(s["desired_replicas"] for s in signals.values())
    assert tuple(pg or ()) == (MINUTES - 1, MINUTES - 1, top) and tuple(ch[0]) == (MINUTES - 1, MINUTES - 1, top)
