"""Lag, rolling and calendar features of a load history at a fixed step; pure, numpy only.

A ``History`` is what is known at some moment: rows of (timestamp_s, value), one per step, oldest
first. Rows are taken as consecutive steps (a trace's rare missing rows are not filled in).

Row ``t`` of the feature matrix describes the moment just after row ``t - 1`` was observed: it reads
``values[:t]`` and nothing later (``feature_rows`` is causal; a test holds it to that). Its target
(``peak_targets``) is the peak of the next ``horizon_steps`` rows, ``max(values[t:t + horizon])``:
the load the replicas decided at that moment must carry before a later decision can add any.

Values are used as ``log1p``: load is positive, its noise grows with its level, and a tree model
then learns ratios rather than absolute levels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DAY_S = 86_400.0
WEEK_S = 7 * DAY_S


@dataclass(frozen=True)
class History:
    """Rows of (timestamp_s, value) at ``step_s``, oldest first."""

    timestamps_s: FloatArray
    values: FloatArray
    step_s: float

    def __post_init__(self) -> None:
        if self.timestamps_s.shape != self.values.shape or self.timestamps_s.ndim != 1:
            raise ValueError("timestamps_s and values must be 1-d arrays of the same length")
        if self.step_s <= 0:
            raise ValueError("step_s must be positive")

    @classmethod
    def of(cls, timestamps_s: list[float] | FloatArray, values: list[float] | FloatArray, step_s: float) -> History:
        return cls(np.asarray(timestamps_s, dtype=np.float64), np.asarray(values, dtype=np.float64), float(step_s))

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def head(self, rows: int) -> History:
        """The first ``rows`` rows: what was known when the last of them was observed."""
        return History(self.timestamps_s[:rows], self.values[:rows], self.step_s)

    def known_at(self, now_s: float) -> int:
        """How many rows are observed at ``now_s`` (rows stamped at or before it)."""
        return int(np.searchsorted(self.timestamps_s, now_s, side="right"))


@dataclass(frozen=True)
class FeatureSpec:
    """Which features: lags and windows in steps, seasons (a day, a week) in seconds."""

    step_s: float
    horizon_steps: int
    lags: tuple[int, ...] = (1, 2, 3, 4, 6)
    windows: tuple[int, ...] = (3, 6, 12, 48)
    season_s: float = DAY_S
    seasons_profiled: int = 7  # days averaged into the time-of-day profile

    def __post_init__(self) -> None:
        if self.horizon_steps < 1 or self.horizon_steps + 1 >= self.season_steps:
            raise ValueError("horizon_steps must be at least 1 and shorter than a season less a step")

    @property
    def season_steps(self) -> int:
        return max(1, round(self.season_s / self.step_s))

    @property
    def names(self) -> list[str]:
        names = [f"lag_{k}" for k in self.lags]
        names += [f"{stat}_{w}" for w in self.windows for stat in ("mean", "max", "std")]
        names += ["day_ago_max", "day_ago_mean", "week_ago_max", "week_ago_mean", "profile_mean", "profile_max"]
        names += ["hour_sin", "hour_cos", "weekday", "weekend"]
        return names


def _window_stat(series: FloatArray, width: int, ends: IntArray, stat: str) -> FloatArray:
    """``stat`` of ``series[end - width:end]`` for each end; NaN where the window is not complete."""
    out = np.full(ends.shape, np.nan)
    ok = ends >= width
    if width <= 0 or not ok.any() or series.shape[0] < width:
        return out
    windows = np.lib.stride_tricks.sliding_window_view(series, width)  # windows[i] = series[i:i+width]
    picked = windows[ends[ok] - width]
    if stat == "mean":
        out[ok] = picked.mean(axis=1)
    elif stat == "max":
        out[ok] = picked.max(axis=1)
    else:
        out[ok] = picked.std(axis=1)
    return out


def feature_rows(history: History, now_rows: IntArray, spec: FeatureSpec) -> FloatArray:
    """One row of features per entry of ``now_rows`` (0 < t <= len(history)), reading ``values[:t]``.

    Missing parts (a lag before the start, a week ago in the first week) are NaN, which the
    gradient-boosted trees route on their own.
    """
    lv = np.log1p(np.maximum(history.values, 0.0))
    t = np.asarray(now_rows, dtype=np.int64)
    if t.size and (t.min() < 1 or t.max() > len(history)):
        raise ValueError("now rows must lie in 1..len(history)")
    columns: list[FloatArray] = []
    for k in spec.lags:
        columns.append(np.where(t - k >= 0, lv[np.maximum(t - k, 0)], np.nan))
    for w in spec.windows:
        for stat in ("mean", "max", "std"):
            columns.append(_window_stat(lv, w, t, stat))
    # The coming window as it was a day and a week ago: rows t - season - 1 .. t - season + horizon,
    # a step wider each side against jitter (it ends before t: FeatureSpec asks horizon < season).
    width = spec.horizon_steps + 2
    for days in (1, 7):
        ends = t - days * spec.season_steps + spec.horizon_steps + 1
        columns.append(_window_stat(lv, width, ends, "max"))
        columns.append(_window_stat(lv, width, ends, "mean"))
    profile = [
        (_window_stat(lv, width, t - days * spec.season_steps + spec.horizon_steps + 1, "mean"),
         _window_stat(lv, width, t - days * spec.season_steps + spec.horizon_steps + 1, "max"))
        for days in range(1, spec.seasons_profiled + 1)
    ]  # fmt: skip
    columns.append(_nan_mean(np.column_stack([mean for mean, _ in profile])))
    columns.append(_nan_mean(np.column_stack([peak for _, peak in profile])))
    columns.extend(calendar(target_midpoint_s(history, t, spec.horizon_steps)))
    return np.column_stack(columns) if columns else np.empty((t.size, 0))


def _nan_mean(table: FloatArray) -> FloatArray:
    """Mean of each row's non-NaN entries; NaN for a row with none."""
    known = ~np.isnan(table)
    count = known.sum(axis=1)
    total = np.where(known, table, 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def target_midpoint_s(history: History, now_rows: IntArray, horizon_steps: int) -> FloatArray:
    """The middle of the forecast window: after the last known row, ``(horizon + 1) / 2`` steps on."""
    last = history.timestamps_s[np.maximum(now_rows - 1, 0)]
    return last + history.step_s * (horizon_steps + 1) / 2


def calendar(timestamps_s: FloatArray) -> list[FloatArray]:
    """Hour of day (as a point on a circle), weekday (0 is Monday) and a weekend flag, in UTC."""
    day_fraction = (timestamps_s % DAY_S) / DAY_S
    weekday = ((timestamps_s // DAY_S) + 3) % 7  # 1970-01-01 was a Thursday
    return [
        np.sin(2 * np.pi * day_fraction),
        np.cos(2 * np.pi * day_fraction),
        weekday,
        (weekday >= 5).astype(np.float64),
    ]


def peak_targets(values: FloatArray, now_rows: IntArray, horizon_steps: int) -> FloatArray:
    """``max(values[t:t + horizon])`` per row; the caller keeps rows with ``t + horizon <= len``."""
    t = np.asarray(now_rows, dtype=np.int64)
    if t.size and t.max() + horizon_steps > values.shape[0]:
        raise ValueError("a target window runs past the history")
    windows = np.lib.stride_tricks.sliding_window_view(values, horizon_steps)
    return np.asarray(windows[t].max(axis=1), dtype=np.float64)


def seasonal_naive_peak(values: FloatArray, now_rows: IntArray, horizon_steps: int, season_steps: int) -> FloatArray:
    """The coming window's peak as it was one season earlier; where that is not yet known, the
    peak of the last ``horizon_steps`` rows (persistence)."""
    t = np.asarray(now_rows, dtype=np.int64)
    out = np.empty(t.shape)
    for i, row in enumerate(t.tolist()):
        start = row - season_steps
        if start >= 0 and start + horizon_steps <= row:
            out[i] = values[start : start + horizon_steps].max()
        else:
            out[i] = values[max(0, row - horizon_steps) : row].max()
    return out
