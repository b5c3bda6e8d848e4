"""The scaling job's pure parts: a service's state and signals, the endpoint's JSON, the settings."""

from __future__ import annotations

import json
import math
from datetime import datetime

import pytest
from pydantic import ValidationError

from chatstream.avro.catalog import load_catalog
from chatstream.avro.serde import ConfluentDecoder, ConfluentEncoder
from jobs.scaling.app import load_points, service_of
from jobs.scaling.config import ScalingSettings, ServiceTarget
from jobs.scaling.forecaster import Forecaster
from jobs.scaling.signal_view import LatestSignals, as_json
from jobs.scaling.signals import MINUTE_MS, ServiceState, step

T0 = 1_790_000_000_000 - 1_790_000_000_000 % MINUTE_MS
TARGET = ServiceTarget(metric="requests_per_s", capacity_per_replica=100, horizon_minutes=5, max_replicas=10,
                       scale_down_cooldown_s=300)  # fmt: skip
SETTINGS = ScalingSettings(services={"api": TARGET}, season_minutes=60, min_history_minutes=180, history_minutes=600)


def forecaster() -> Forecaster:
    return Forecaster(SETTINGS.forecaster(TARGET))


def test_before_a_fit_the_reactive_value_decides_from_the_load_seen() -> None:
    state = ServiceState(replicas_seen=1)
    record = step("api", TARGET, state, T0, 350.0, forecaster(), keep=600)
    assert record is not None
    assert record["desired_replicas"] == 2  # 350 / (100 * 0.7) = 5, at most x2 of the 1 running
    assert record["reason"].startswith("max_up:")
    assert record["model"] == "seasonal-naive" and record["current_replicas"] == 1
    again = step("api", TARGET, state, T0 + MINUTE_MS, 350.0, forecaster(), keep=600)
    assert again is not None and again["desired_replicas"] == 4 and again["occurred_at"] == T0 + 2 * MINUTE_MS


def test_a_replayed_minute_gives_no_second_signal_and_ids_are_stable() -> None:
    state = ServiceState()
    first = step("api", TARGET, state, T0, 10.0, forecaster(), keep=600)
    assert step("api", TARGET, state, T0, 10.0, forecaster(), keep=600) is None
    second = step("api", TARGET, ServiceState(), T0, 10.0, forecaster(), keep=600)
    assert first is not None and second is not None and second["event_id"] == first["event_id"]


def test_history_is_bounded_and_survives_json() -> None:
    state = ServiceState()
    for i in range(10):
        step("api", TARGET, state, T0 + i * MINUTE_MS, float(i), forecaster(), keep=4)
    assert state.values == [6.0, 7.0, 8.0, 9.0] and state.minutes[0] == T0 + 6 * MINUTE_MS
    back = ServiceState.from_dict(json.loads(json.dumps(state.as_dict())))
    assert back == state


def test_a_fitted_forecaster_scales_ahead_of_a_rising_hour() -> None:
    """A load with an hourly peak: once fitted, the signal asks for the peak before it comes."""
    def load(i: int) -> float:
        return 200 + 180 * math.sin(2 * math.pi * i / 60)

    state = ServiceState(replicas_seen=3)
    history_end = 300
    for i in range(history_end):
        state.add(T0 + i * MINUTE_MS, load(i), 600)
    fitted = forecaster()
    fitted.fit(state.history())
    assert fitted.fitted
    # minute 300 is the bottom of a rise (sin 0 at i = 300): the peak 380 is 15 minutes away
    records = [step("api", TARGET, state, T0 + i * MINUTE_MS, load(i), fitted, keep=600) for i in range(300, 312)]
    assert all(r is not None and r["model"] == "hist-gradient-boosting" for r in records)
    last = records[-1]
    assert last is not None
    assert last["forecast_upper"] >= last["forecast"] >= last["forecast_lower"]
    ahead = load(311 + 5)  # the load at the horizon, above the load now
    assert last["forecast"] > last["observed"] and abs(last["forecast"] - ahead) / ahead < 0.25


def test_records_encode_with_the_contract() -> None:
    contract = load_catalog()["ops.scaling_signals.v1"]
    record = step("api", TARGET, ServiceState(), T0, 10.0, forecaster(), keep=600)
    assert record is not None
    encoded = ConfluentEncoder(contract.schema, 9).encode(record)
    decoded = ConfluentDecoder(lambda _id: contract.schema).decode(encoded)
    assert decoded["desired_replicas"] == 1 and decoded["target"] == "api"


def test_the_endpoint_json_keeps_the_newest_signal() -> None:
    view = LatestSignals()
    newer = step("api", TARGET, ServiceState(replicas_seen=2), T0 + MINUTE_MS, 10.0, forecaster(), keep=600)
    older = step("api", TARGET, ServiceState(replicas_seen=2), T0, 500.0, forecaster(), keep=600)
    assert newer is not None and older is not None
    view.take(newer)
    view.take(older)
    body = as_json(view.latest("api") or {}, now_ms=T0 + 2 * MINUTE_MS + 1500)
    assert body["desiredReplicas"] == 1 and body["currentReplicas"] == 2 and body["service"] == "api"
    assert datetime.fromisoformat(body["at"]).timestamp() * 1000 == T0 + 2 * MINUTE_MS and body["at"].endswith(".000Z")
    assert body["ageSeconds"] == 1.5
    assert [m.samples[0].value for m in view.collect()] == [1.0]


def test_series_route_by_service_and_only_wanted_metrics_pass() -> None:
    assert service_of("service:sink-postgres/rows_per_s") == service_of("service:sink-postgres/replicas") == "sink-postgres"
    extract = load_points({"api": TARGET})
    record = {"service": "api", "instance": "h:1", "occurred_at": T0 + 5, "value": 3.0}
    assert [o.series for o in extract({**record, "name": "requests_per_s"})] == ["service:api/requests_per_s"]
    assert [o.series for o in extract({**record, "name": "replicas"})] == ["service:api/replicas"]
    assert extract({**record, "name": "latency_p95_s"}) == [] and extract({**record, "service": "x", "name": "replicas"}) == []


@pytest.mark.parametrize("bad", [
    {"metric": "rps", "capacity_per_replica": 0},
    {"metric": "rps", "capacity_per_replica": 10, "min_replicas": 5, "max_replicas": 2},
    {"metric": "rps", "capacity_per_replica": 10, "horizon_minutes": 45},
    {"metric": "rps", "capacity_per_replica": 10, "typo": 1},
])  # fmt: skip
def test_bad_service_settings_are_refused(bad: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATSTREAM_SCALING_SERVICES", json.dumps({"api": bad}))
    with pytest.raises(ValidationError):
        ScalingSettings()


def test_services_come_from_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATSTREAM_SCALING_SERVICES", json.dumps({"api": {"metric": "rps", "capacity_per_replica": 50}}))
    assert ScalingSettings().services == {"api": ServiceTarget(metric="rps", capacity_per_replica=50)}
