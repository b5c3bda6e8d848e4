"""Records become minute-level series: which series, and each minute's value."""

from __future__ import annotations

import json

import pytest

from jobs.anomaly.series import MINUTE_MS, Kind, Observation, SeriesMinutes, combine, from_action, from_metric, from_response

T0 = 1_790_000_040_000 - 1_790_000_040_000 % MINUTE_MS  # a minute's start


def metric(name: str, value: float, instance: str, at: int = T0) -> dict[str, object]:
    return {"service": "gateway", "name": name, "value": value, "instance": instance, "occurred_at": at}


def test_a_service_load_is_summed_over_instances_and_a_latency_averaged() -> None:
    minutes = {}
    for record in (metric("requests_per_s", 10, "a"), metric("requests_per_s", 20, "a"), metric("requests_per_s", 5, "b"),
                   metric("latency_p95_s", 0.2, "a"), metric("latency_p95_s", 0.4, "b")):  # fmt: skip
        (o,) = from_metric(record)
        minutes.setdefault(o.series, SeriesMinutes(o.kind)).add(o)
    assert minutes["service:gateway/requests_per_s"].close(T0, 5) == [(T0, 15 + 5)]  # a's mean + b's
    assert minutes["service:gateway/latency_p95_s"].close(T0, 5) == [(T0, pytest.approx(0.3))]


def test_answers_give_error_rate_latency_tokens_and_cost() -> None:
    done = {"kind": "COMPLETED", "model": "m1", "tenant_id": "t", "user_id": "u", "occurred_at": T0 + 5,
            "latency_ms": 1200, "prompt_tokens": 10, "completion_tokens": 30, "cost_usd": 0.01}  # fmt: skip
    failed = {**done, "kind": "FAILED", "latency_ms": None, "prompt_tokens": None, "completion_tokens": None, "cost_usd": None}
    assert from_response({**done, "kind": "CHUNK"}) == []
    points = from_response(done) + from_response(failed)
    series = {o.series for o in points}
    assert series == {"model:m1/error_rate", "model:m1/latency_s", "user:t/u/tokens", "tenant:t/cost_usd"}
    rate = SeriesMinutes(Kind.RATIO)
    for o in points:
        if o.series == "model:m1/error_rate":
            rate.add(o)
    assert rate.close(T0, 5) == [(T0, 0.5)]


def test_only_sent_messages_count_as_a_tenants_traffic() -> None:
    assert from_action({"action": "FEEDBACK_GIVEN", "tenant_id": "t", "occurred_at": T0}) == []
    (o,) = from_action({"action": "MESSAGE_SENT", "tenant_id": "t", "occurred_at": T0 + 59_999})
    assert (o.series, o.minute_ms, o.value) == ("tenant:t/messages", T0, 1.0)


def test_silence_is_zero_for_counts_for_a_while_and_nothing_for_means() -> None:
    counts, means = SeriesMinutes(Kind.SUM), SeriesMinutes(Kind.MEAN)
    counts.add(Observation("c", T0, Kind.SUM, 3))
    means.add(Observation("m", T0, Kind.MEAN, 3))
    assert counts.close(T0 + 4 * MINUTE_MS, fill_minutes=2) == [(T0, 3), (T0 + MINUTE_MS, 0), (T0 + 2 * MINUTE_MS, 0)]
    assert means.close(T0 + 4 * MINUTE_MS, fill_minutes=2) == [(T0, 3)]
    assert counts.close(T0 + 3 * MINUTE_MS, fill_minutes=2) == []  # closed already


def test_a_point_for_a_closed_minute_is_refused() -> None:
    counts = SeriesMinutes(Kind.SUM)
    counts.add(Observation("c", T0 + MINUTE_MS, Kind.SUM, 1))
    counts.close(T0 + MINUTE_MS, 5)
    assert not counts.add(Observation("c", T0, Kind.SUM, 1))
    assert counts.add(Observation("c", T0 + 2 * MINUTE_MS, Kind.SUM, 1))


def test_the_state_goes_through_json() -> None:
    minutes = SeriesMinutes(Kind.INSTANCES_SUM)
    minutes.add(Observation("s", T0, Kind.INSTANCES_SUM, 2, instance="a"))
    again = SeriesMinutes.from_dict(json.loads(json.dumps(minutes.as_dict())))
    again.add(Observation("s", T0, Kind.INSTANCES_SUM, 4, instance="a"))
    assert again.close(T0, 5) == [(T0, 3.0)]


def test_combine_folds_sums_and_ratios_per_minute() -> None:
    points = [Observation("c", T0, Kind.SUM, 1)] * 3 + [Observation("r", T0, Kind.RATIO, 1), Observation("r", T0, Kind.RATIO, 0)]
    points += [Observation("m", T0, Kind.MEAN, 5)] * 2
    folded = combine(points)
    assert sorted((o.series, o.value, o.weight) for o in folded) == [("c", 3, 3), ("m", 5, 1), ("m", 5, 1), ("r", 1, 2)]
