"""The forecaster: learns a daily pattern, says when it cannot know, is causal and deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from jobs.scaling.features import FeatureSpec, History, feature_rows, peak_targets, seasonal_naive_peak
from jobs.scaling.forecaster import Forecaster, ForecasterConfig, SeasonalNaiveForecaster

STEP_S = 1800.0  # half-hour rows: 48 a day
HORIZON_S = 3 * STEP_S
START_S = 1_404_172_800.0  # 2014-07-01 00:00 UTC, a Tuesday


def daily(days: int, seed: int = 0) -> History:
    """A clear daily shape (quiet nights, busy afternoons) with 15 % multiplicative noise."""
    rows = np.arange(days * 48)
    hour = (rows % 48) / 2
    shape = 100 + 400 * np.exp(-(((hour - 15) / 4) ** 2))
    noise = np.random.default_rng(seed).lognormal(0.0, 0.15, rows.size)
    return History.of(START_S + rows * STEP_S, shape * noise, STEP_S)


def config(**overrides: float) -> ForecasterConfig:
    return ForecasterConfig(step_s=STEP_S, horizon_s=HORIZON_S, max_iter=60, **overrides)  # type: ignore[arg-type]


def test_it_learns_a_daily_pattern_better_than_seasonal_naive() -> None:
    history = daily(21)
    forecaster = Forecaster(config())
    forecaster.fit(history.head(14 * 48))
    rows = np.arange(14 * 48, 21 * 48 - 2)  # the week after
    actual = peak_targets(history.values, rows, 3)
    ours = forecaster.predict_rows(history, rows)
    naive = SeasonalNaiveForecaster(STEP_S, HORIZON_S).predict_rows(history, rows)

    def mape(f: np.ndarray) -> float:
        return float(np.mean(np.abs(f - actual) / actual))

    assert forecaster.fitted and forecaster.skill > 0
    assert mape(ours.value) < 0.95 * mape(naive)  # the noise of one day against a learnt profile
    assert np.all(ours.lower <= ours.value) and np.all(ours.value <= ours.upper)
    assert 0.75 <= float(np.mean(actual <= ours.upper)) <= 1.0  # asked for 0.9
    assert float(np.mean(ours.confidence)) > 0.5


def test_before_enough_history_it_is_seasonal_naive_at_confidence_zero() -> None:
    history = daily(1).head(30)  # min_history_s is two days
    forecaster = Forecaster(config())
    forecaster.fit(history)
    assert not forecaster.fitted
    now_s = float(history.timestamps_s[-1])
    forecast = forecaster.predict(history, now_s, HORIZON_S)
    assert forecast.confidence == 0.0
    assert forecast.value == forecast.upper == float(history.values[-3:].max())  # no day ago yet: persistence


def test_the_same_history_gives_the_same_forecast() -> None:
    history = daily(5)
    first, second = Forecaster(config()), Forecaster(config())
    first.fit(history.head(4 * 48))
    second.fit(history.head(4 * 48))
    rows = np.arange(4 * 48, 5 * 48 - 2)
    a, b = first.predict_rows(history, rows), second.predict_rows(history, rows)
    for left, right in ((a.value, b.value), (a.lower, b.lower), (a.upper, b.upper), (a.confidence, b.confidence)):
        np.testing.assert_array_equal(left, right)


def test_predict_reads_only_the_rows_known_at_now() -> None:
    history = daily(5)
    forecaster = Forecaster(config())
    forecaster.fit(history.head(4 * 48))
    now_s = float(history.timestamps_s[4 * 48 + 10])
    changed = History(history.timestamps_s, history.values.copy(), STEP_S)
    changed.values[4 * 48 + 11 :] *= 10  # the future
    assert forecaster.predict(history, now_s, HORIZON_S) == forecaster.predict(changed, now_s, HORIZON_S)
    row = np.array([4 * 48 + 11])
    assert forecaster.predict_rows(history, row).at(0) == forecaster.predict_rows(changed, row).at(0)


def test_features_are_causal() -> None:
    history = daily(9)
    spec = FeatureSpec(step_s=STEP_S, horizon_steps=3)
    rows = np.arange(1, len(history) + 1)
    full = feature_rows(history, rows, spec)
    for cut in (1, 50, 8 * 48 + 7):
        head = feature_rows(history.head(cut), rows[:cut], spec)
        np.testing.assert_array_equal(full[:cut], head)
    assert full.shape[1] == len(spec.names)


def test_confidence_falls_when_load_leaves_the_pattern() -> None:
    history = daily(10)
    forecaster = Forecaster(config())
    forecaster.fit(history.head(9 * 48))
    broken = History(history.timestamps_s, history.values.copy(), STEP_S)
    broken.values[9 * 48 :] *= 4  # a surge the history never showed
    rows = np.array([9 * 48 + 20])
    assert forecaster.predict_rows(history, rows).confidence[0] >= 0.5
    assert forecaster.predict_rows(broken, rows).confidence[0] < 0.5


def test_seasonal_naive_is_the_same_window_a_season_earlier() -> None:
    values = np.arange(100, dtype=np.float64)
    assert seasonal_naive_peak(values, np.array([60]), 3, 48).tolist() == [14.0]  # rows 12..14
    assert seasonal_naive_peak(values, np.array([10]), 3, 48).tolist() == [9.0]  # rows 7..9


def test_a_forecaster_answers_only_for_its_horizon() -> None:
    history = daily(1)
    with pytest.raises(ValueError):
        Forecaster(config()).predict(history, float(history.timestamps_s[-1]), 10 * STEP_S)
