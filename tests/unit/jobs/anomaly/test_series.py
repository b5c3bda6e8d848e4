"""Records become minute-level series: which series, and each minute's value."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from jobs.anomaly.series import MINUTE_MS, Kind, Observation, SeriesMinutes, combine, from_engagement, from_metric

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


def window(dimension: str, **figures: object) -> dict[str, object]:
    return {"dimension": dimension, "tenant_id": "t", "user_id": "u", "model": "m1", "window_start": T0, **figures}


def test_engagement_windows_give_traffic_cost_error_rate_latency_and_tokens() -> None:
    points = (from_engagement(window("tenant", messages_sent=12, cost_usd=0.5))
              + from_engagement(window("model", ai_completed=3, ai_failed=1, latency_count=4, latency_sum_ms=2000))
              + from_engagement(window("user", prompt_tokens=10, completion_tokens=30)))  # fmt: skip
    got = {o.series: (o.kind, o.value, o.weight) for o in points}
    assert got == {
        "tenant:t/messages": (Kind.SUM, 12.0, 1.0), "tenant:t/cost_usd": (Kind.SUM, 0.5, 1.0),
        "model:m1/error_rate": (Kind.RATIO, 1.0, 4.0), "model:m1/latency_s": (Kind.RATIO, 2.0, 4.0),
        "user:t/u/tokens": (Kind.SUM, 40.0, 1.0),
    }  # fmt: skip
    rate = SeriesMinutes(Kind.RATIO)
    rate.add(next(o for o in points if o.series == "model:m1/error_rate"))
    assert rate.close(T0, 5) == [(T0, 0.25)]
    assert from_engagement(window("model", ai_completed=0, ai_failed=0, latency_count=0)) == []  # nothing finished


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


def test_combine_folds_every_kind_per_minute_and_instance() -> None:
    points = [Observation("c", T0, Kind.SUM, 1)] * 3 + [Observation("r", T0, Kind.RATIO, 1), Observation("r", T0, Kind.RATIO, 0)]
    points += [Observation("m", T0, Kind.MEAN, 5)] * 2 + [Observation("m", T0 + MINUTE_MS, Kind.MEAN, 1)]
    points += [Observation("i", T0, Kind.INSTANCES_SUM, v, instance=n) for v, n in ((2, "a"), (4, "a"), (10, "b"))]
    folded = combine(points)
    assert [(o.series, o.minute_ms - T0, o.instance, o.value, o.weight) for o in folded] == [
        ("c", 0, "", 3, 3), ("r", 0, "", 1, 2), ("m", 0, "", 10, 2), ("m", MINUTE_MS, "", 1, 1), ("i", 0, "a", 6, 2), ("i", 0, "b", 10, 1)]


@pytest.mark.parametrize("kind", list(Kind))
def test_a_minute_is_the_same_whether_its_points_come_folded_or_one_by_one(kind: Kind) -> None:
    points = [Observation("s", T0, kind, v, w, instance=i) for v, w, i in ((1, 1, "a"), (2, 1, "a"), (5, 2, "b"), (0.5, 1, "b"))]
    one_by_one, folded = SeriesMinutes(kind), SeriesMinutes(kind)
    for point in points:
        one_by_one.add(point)
    for point in combine(points):
        folded.add(point)
    assert one_by_one.close(T0, 0) == folded.close(T0, 0)


def test_times_decoded_as_datetimes_are_read_as_epoch_milliseconds() -> None:
    at = datetime.fromtimestamp((T0 + 59_999) / 1000, tz=timezone.utc)  # fastavro's timestamp-millis
    (o,) = from_metric({"service": "g", "name": "x", "value": 1.0, "instance": "i", "occurred_at": at})
    assert o.minute_ms == T0
    (w,) = from_engagement(window("user", window_start=datetime.fromtimestamp(T0 / 1000, tz=timezone.utc), prompt_tokens=1))
    assert w.minute_ms == T0
