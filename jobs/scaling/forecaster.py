"""Load forecasts: the peak of the coming window, with a prediction interval and a confidence.

``Forecaster`` is a gradient-boosted regressor (scikit-learn's ``HistGradientBoostingRegressor``,
squared error on ``log1p`` load) over ``features``. The caller decides when to refit it:
``fit(history)`` learns from the rows known then; ``predict(history, now_s, horizon_s)`` forecasts
the peak load of the ``horizon_s`` after ``now_s``.

The interval is conformalised on a holdout: ``fit`` first trains on the older part of the history
and measures its errors on the newer part (the holdout), then retrains on all of it. The upper
bound comes from a second, quantile-loss model at ``upper_quantile`` (``interval="quantile"``: its
width follows the hour and the level), shifted by the holdout's quantile of its errors so that it
holds as often as it says; the lower bound, or with ``interval="residual"`` both, are the point
forecast shifted by the holdout's error quantiles. Errors are in log space: the bands are ratios.

``confidence`` is how often the interval held lately: the share of the last ``recent_checks``
forecasts whose window has passed that fell inside it (0 when the model did no better than
seasonal-naive on the holdout). Until it has ``min_history_s`` of history a ``Forecaster`` returns
the seasonal-naive forecast at confidence 0, so that a policy falls back to its reactive value.

``SeasonalNaiveForecaster`` is the yardstick: the same window one season (a day) earlier.

Deterministic: a fixed ``random_state`` and no subsampling, so the same history gives the same
forecast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from jobs.scaling.features import (
    DAY_S,
    FeatureSpec,
    FloatArray,
    History,
    IntArray,
    feature_rows,
    peak_targets,
    seasonal_naive_peak,
)


@dataclass(frozen=True)
class Forecast:
    """The peak load expected over the horizon: a point ``value`` and an interval around it."""

    value: float
    lower: float
    upper: float
    confidence: float  # 0..1; see the module docstring


@dataclass(frozen=True)
class ForecastBatch:
    """Forecasts for several moments at once (the same model), as arrays."""

    value: FloatArray
    lower: FloatArray
    upper: FloatArray
    confidence: FloatArray

    def __len__(self) -> int:
        return int(self.value.shape[0])

    def at(self, i: int) -> Forecast:
        return Forecast(float(self.value[i]), float(self.lower[i]), float(self.upper[i]), float(self.confidence[i]))


@dataclass(frozen=True)
class ForecasterConfig:
    step_s: float
    horizon_s: float
    season_s: float = DAY_S
    lower_quantile: float = 0.05  # of the holdout's errors
    upper_quantile: float = 0.9
    holdout_fraction: float = 0.25
    min_history_s: float = 2 * DAY_S
    max_train_s: float = 28 * DAY_S  # older rows are dropped: bounded cost, and load drifts
    interval: Literal["quantile", "residual"] = "quantile"
    recent_checks: int = 12
    max_iter: int = 150
    learning_rate: float = 0.05
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 40  # small trees, big leaves: load is noisy, history short
    random_state: int = 0
    threads: int = 1  # OpenMP threads; more spin against other work on a busy host (seen 5x slower)

    @property
    def horizon_steps(self) -> int:
        return max(1, math.ceil(self.horizon_s / self.step_s - 1e-9))

    @property
    def spec(self) -> FeatureSpec:
        return FeatureSpec(step_s=self.step_s, horizon_steps=self.horizon_steps, season_s=self.season_s)


def _check_horizon(step_s: float, expected_steps: int, horizon_s: float) -> None:
    if max(1, math.ceil(horizon_s / step_s - 1e-9)) != expected_steps:
        raise ValueError(f"this forecaster predicts {expected_steps} steps of {step_s} s, not {horizon_s} s")


class SeasonalNaiveForecaster:
    """The coming window's peak as it was one season earlier (before a season is known: the last
    window's peak). No interval (lower = upper = value) and confidence 0: a yardstick, not a model."""

    def __init__(self, step_s: float, horizon_s: float, season_s: float = DAY_S) -> None:
        self.step_s = step_s
        self.horizon_steps = max(1, math.ceil(horizon_s / step_s - 1e-9))
        self.season_steps = max(1, round(season_s / step_s))

    def predict_rows(self, history: History, now_rows: IntArray) -> FloatArray:
        return seasonal_naive_peak(history.values, now_rows, self.horizon_steps, self.season_steps)

    def predict(self, history: History, now_s: float, horizon_s: float) -> Forecast:
        _check_horizon(self.step_s, self.horizon_steps, horizon_s)
        value = float(self.predict_rows(history, np.array([_now_row(history, now_s)]))[0])
        return Forecast(value, value, value, 0.0)


def _now_row(history: History, now_s: float) -> int:
    row = history.known_at(now_s)
    if row < 1:
        raise ValueError("no history known at now_s")
    return row


@dataclass(frozen=True)
class _Fitted:
    model: HistGradientBoostingRegressor
    upper_model: HistGradientBoostingRegressor | None  # with interval="quantile"
    error_lower: float  # log-space error quantiles on the holdout
    error_upper: float
    skill: float  # 1 - model MAE / seasonal-naive MAE on the holdout, log space


class Forecaster:
    """Gradient-boosted peak-load forecaster; see the module docstring for the contract."""

    def __init__(self, config: ForecasterConfig) -> None:
        self.config = config
        self._naive = SeasonalNaiveForecaster(config.step_s, config.horizon_s, config.season_s)
        self._fitted: _Fitted | None = None

    @property
    def fitted(self) -> bool:
        return self._fitted is not None

    @property
    def skill(self) -> float:
        """The last fit's skill over seasonal-naive on its holdout (0 before a fit)."""
        return self._fitted.skill if self._fitted else 0.0

    def _fit_model(self, X: FloatArray, y: FloatArray, quantile: float | None = None) -> HistGradientBoostingRegressor:
        c = self.config
        model = HistGradientBoostingRegressor(
            loss="squared_error" if quantile is None else "quantile", quantile=quantile,
            max_iter=c.max_iter, learning_rate=c.learning_rate, max_leaf_nodes=c.max_leaf_nodes,
            min_samples_leaf=c.min_samples_leaf, l2_regularization=1.0, early_stopping=False, random_state=c.random_state,
        )  # fmt: skip
        X = X.copy()
        X[:, np.isnan(X).all(axis=0)] = 0.0  # not known yet (a week ago, in the first week): no splits
        return model.fit(X, y)

    def fit(self, history: History) -> None:
        """Learn from every row of ``history`` whose target window has passed. With less than
        ``min_history_s`` the forecaster keeps its previous fit (none: the naive fallback)."""
        with threadpool_limits(limits=self.config.threads, user_api="openmp"):
            self._fit(history)

    def _fit(self, history: History) -> None:
        c = self.config
        h = c.horizon_steps
        if len(history) * c.step_s < c.min_history_s:
            return
        first = max(1, len(history) - h - round(c.max_train_s / c.step_s))
        rows = np.arange(first, len(history) - h + 1, dtype=np.int64)
        X = feature_rows(history, rows, c.spec)
        y = np.log1p(peak_targets(history.values, rows, h))
        split = int(len(rows) * (1 - c.holdout_fraction))
        train, holdout = slice(0, max(1, split - h)), slice(split, len(rows))  # a gap: targets overlap
        first_model = self._fit_model(X[train], y[train])
        errors = y[holdout] - first_model.predict(X[holdout])
        naive = np.log1p(self._naive.predict_rows(history, rows[holdout]))
        naive_mae = float(np.mean(np.abs(y[holdout] - naive)))
        skill = 1.0 - float(np.mean(np.abs(errors))) / naive_mae if naive_mae > 0 else 0.0
        upper_model = None
        error_upper = float(np.quantile(errors, c.upper_quantile))
        if c.interval == "quantile":  # conformalised: the holdout corrects the quantile model's bias
            first_upper = self._fit_model(X[train], y[train], c.upper_quantile)
            error_upper = float(np.quantile(y[holdout] - first_upper.predict(X[holdout]), c.upper_quantile))
            upper_model = self._fit_model(X, y, c.upper_quantile)
        self._fitted = _Fitted(
            model=self._fit_model(X, y),
            upper_model=upper_model,
            error_lower=float(np.quantile(errors, c.lower_quantile)),
            error_upper=error_upper,
            skill=skill,
        )

    def predict(self, history: History, now_s: float, horizon_s: float) -> Forecast:
        """The peak of the ``horizon_s`` after ``now_s`` from the rows known at ``now_s``."""
        _check_horizon(self.config.step_s, self.config.horizon_steps, horizon_s)
        row = _now_row(history, now_s)
        return self.predict_rows(history.head(row), np.array([row])).at(0)

    def predict_rows(self, history: History, now_rows: IntArray) -> ForecastBatch:
        """Forecasts for the moments just after rows ``t - 1`` (each reads ``values[:t]`` only)."""
        t = np.asarray(now_rows, dtype=np.int64)
        if self._fitted is None:
            naive = self._naive.predict_rows(history, t)
            return ForecastBatch(naive, naive.copy(), naive.copy(), np.zeros(t.shape))
        point, lower, upper = self._bands(history, t)
        return ForecastBatch(point, lower, upper, self._confidence(history, t))

    def _bands(self, history: History, rows: IntArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        assert self._fitted is not None
        X = feature_rows(history, rows, self.config.spec)
        with threadpool_limits(limits=self.config.threads, user_api="openmp"):
            mu = self._fitted.model.predict(X)
            top = mu if self._fitted.upper_model is None else self._fitted.upper_model.predict(X)
        point = np.maximum(np.expm1(mu), 0.0)
        lower = np.maximum(np.expm1(mu + self._fitted.error_lower), 0.0)
        upper = np.maximum(np.expm1(top + self._fitted.error_upper), point)
        return point, lower, upper

    def _confidence(self, history: History, t: IntArray) -> FloatArray:
        """Share of the last ``recent_checks`` passed windows (rows r with r + h <= t) whose peak
        fell inside this model's interval; 0 if the model has no skill over seasonal-naive."""
        assert self._fitted is not None
        if self._fitted.skill <= 0 or t.size == 0:
            return np.zeros(t.shape)
        h, k = self.config.horizon_steps, self.config.recent_checks
        first = max(1, int(t.min()) - h - k + 1)
        last = int(t.max()) - h  # the newest row whose window has passed
        if last < first:
            return np.zeros(t.shape)
        rows = np.arange(first, last + 1, dtype=np.int64)
        _, lower, upper = self._bands(history, rows)
        actual = peak_targets(history.values, rows, h)
        inside = ((actual >= lower) & (actual <= upper)).astype(np.float64)
        csum = np.concatenate([[0.0], np.cumsum(inside)])
        hi = np.clip(t - h - first + 1, 0, len(rows))  # rows[:hi] have passed at t
        lo = np.clip(hi - k, 0, len(rows))
        count = hi - lo
        return np.where(count > 0, (csum[hi] - csum[lo]) / np.maximum(count, 1), 0.0)
