"""The baseline's expectation: level, deviation floor, season."""

from __future__ import annotations

import math

import pytest

from jobs.anomaly.baseline import GaussianBaseline, RunningWindow


def test_the_running_window_matches_a_recount() -> None:
    window = RunningWindow(50)
    values = [math.sin(i / 7) * 1e6 + i for i in range(1000)]
    for value in values:
        window.push(value)
    kept = values[-50:]
    mean = sum(kept) / 50
    assert window.mean() == pytest.approx(mean)
    assert window.std() == pytest.approx(math.sqrt(sum((v - mean) ** 2 for v in kept) / 50))


@pytest.mark.parametrize(("value", "z"), [(10.0, 0.0), (12.0, 2.0), (7.0, 3.0)])
def test_the_distance_from_the_level_in_deviations(value: float, z: float) -> None:
    baseline = GaussianBaseline(100)
    for v in [9.0, 11.0] * 50:  # mean 10, deviation 1
        baseline.push(v)
    found = baseline.expect(value)
    assert found is not None
    assert (found.expected, found.spread, found.z) == pytest.approx((10.0, 1.0, z))


def test_nothing_is_expected_before_two_points() -> None:
    baseline = GaussianBaseline(10)
    assert baseline.expect(1.0) is None
    baseline.push(1.0)
    assert baseline.expect(1.0) is None


def test_a_flat_series_is_floored_by_its_range() -> None:
    baseline = GaussianBaseline(100)
    for v in [0.0, 100.0] + [50.0] * 98:
        baseline.push(v)
    found = baseline.expect(50.05)
    assert found is not None
    assert found.spread >= 0.1  # 1e-3 of the range, not the window's near-zero deviation
    assert found.z < 1


def test_with_a_season_the_daily_peak_is_expected_and_a_missing_one_is_not() -> None:
    season = 24
    def day(i: int) -> float:
        return 100.0 if i % season == 12 else 10.0 + (i % 3)

    plain, seasonal = GaussianBaseline(200), GaussianBaseline(200, season_points=season)
    for i in range(season * 6):
        plain.push(day(i))
        seasonal.push(day(i))
    peak_plain, peak_seasonal = plain.expect(100.0), seasonal.expect(100.0)  # i = 144 = 6 seasons: phase 0
    assert peak_plain is not None and peak_seasonal is not None
    for i in range(season * 6, season * 6 + 12):
        plain.push(day(i))
        seasonal.push(day(i))
    at_peak_plain, at_peak_seasonal = plain.expect(100.0), seasonal.expect(100.0)  # phase 12: the peak
    assert at_peak_plain is not None and at_peak_seasonal is not None
    assert at_peak_seasonal.expected == 100.0
    assert at_peak_seasonal.z < 1 < at_peak_plain.z  # expected with the season, strange without
    missing = seasonal.expect(10.0)
    assert missing is not None and missing.z > 3  # no peak when one is due
