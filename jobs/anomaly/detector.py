"""One series' streaming detector: a robust baseline and an IsolationForest, one score in [0, 1].

``SeriesDetector.observe(at_ms, value)`` scores a point from the history before it, then learns
it. Two views of the point, each turned into a tail probability (how rarely a normal point looks
at least this strange):

- the baseline (``jobs.anomaly.baseline``): distance from the expected value in deviations,
  two-sided normal tail;
- the model: an IsolationForest over the point's shape (``features``: change, volatility,
  distance from the recent mean),
  fitted on the last ``train_points`` points and refitted every ``refit_every`` points from the
  history the detector keeps (never per event); its score, in deviations of the scores it gave
  its own training points, one-sided normal tail. The model is asked only when the baseline
  already finds the point unusual (``model_gate`` deviations): it refines, it does not scan.

They combine as ``tail = base * model^w``: the model's evidence adds to the baseline's (a
strange shape makes a point stranger; a usual shape does not excuse an unusual level), and a
point's score is ``1 - `` the geometric mean of the last ``smooth_points`` points' tails
(0.9999: one normal stretch in ten thousand looks like this): an isolated blip scores less than a
run of strange points, and a change that lasts still scores at once (after NAB's likelihood idea). A new
series scores 0 for its first ``warmup_points`` points. Deduplication into opened and resolved
anomalies is ``jobs.anomaly.incident``'s.

The detector's state is its history and counters (``snapshot`` / ``restore``): the forest is
refitted from it, deterministically (fixed seed), so a restarted job scores as the one it
replaces.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import log_ndtr
from sklearn.ensemble import IsolationForest

from jobs.anomaly.baseline import GaussianBaseline
from jobs.anomaly.forest import CompiledForest

LOG_2 = math.log(2.0)
SHORT_MEAN = 5


@dataclass(frozen=True)
class DetectorConfig:
    window: int = 6400  # points the baseline's mean and deviation cover
    season_points: int | None = None  # points per season (1,440: daily, minute points)
    warmup_points: int = 30
    train_points: int = 3000
    refit_every: int = 1000
    trees: int = 25
    model_weight: float = 0.1
    model_gate: float = 2.0
    smooth_points: int = 5
    seed: int = 0

    @property
    def history_points(self) -> int:
        """What the detector keeps: enough to rebuild its baseline and refit its model."""
        seasonal = self.season_points * 3 if self.season_points else 0
        return max(self.window + seasonal, self.train_points + self.refit_every, SHORT_MEAN) + 1


@dataclass(frozen=True)
class Score:
    score: float  # in [0, 1]; 0 during warm-up
    expected: float | None
    spread: float | None
    base_z: float
    model_z: float | None  # None: the model was not asked (or not fitted yet)

    def explanation(self, observed: float) -> str:
        if self.expected is None:
            return "warming up"
        text = f"observed {observed:.6g} against {self.expected:.6g} ± {self.spread:.3g} expected ({self.base_z:.1f} deviations)"
        if self.model_z is not None:
            text += f"; isolation forest {self.model_z:.1f} deviations above its training points"
        return text


def features(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """What the forest sees of each point, from it and the points before it: its change from
    the previous one, the mean size of the last few changes (volatility) and its distance from
    the mean of the last few values; the level itself is the baseline's."""
    change = np.diff(values, prepend=values[0])
    kernel = np.ones(SHORT_MEAN) / SHORT_MEAN
    volatility = np.convolve(np.abs(change), kernel, "full")[: len(values)]
    local_mean = np.convolve(values, kernel, "full")[: len(values)]
    return np.column_stack([change, volatility, values - local_mean])


@dataclass
class _Model:
    forest: CompiledForest
    mean: float
    std: float


@dataclass
class SeriesDetector:
    config: DetectorConfig
    history: deque[float] = field(default_factory=deque)
    seen: int = 0
    since_fit: int = 0
    tails: deque[float] = field(default_factory=deque)  # the last points' log tails
    low: float = math.inf  # the range seen, which floors the baseline's deviation
    high: float = -math.inf
    baseline: GaussianBaseline = field(init=False)
    model: _Model | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.history = deque(self.history, maxlen=self.config.history_points)
        self.tails = deque(self.tails, maxlen=self.config.smooth_points)
        self.baseline = GaussianBaseline(self.config.window, season_points=self.config.season_points)
        for value in self.history:  # restored: the baseline from the history
            self.baseline.push(value)
        self.baseline.low, self.baseline.high = self.low, self.high
        if self.seen >= self.config.refit_every:  # the model as last fitted, before the newest points
            since_fit = self.since_fit
            self._fit(exclude_last=since_fit)
            self.since_fit = since_fit

    # -- state --------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy of the state (what a Faust table keeps)."""
        return {"history": list(self.history), "seen": self.seen, "since_fit": self.since_fit,
                "tails": list(self.tails), "low": self.baseline.low, "high": self.baseline.high}  # fmt: skip

    @classmethod
    def restore(cls, config: DetectorConfig, state: dict[str, Any]) -> SeriesDetector:
        return cls(config, deque(state["history"]), int(state["seen"]), int(state["since_fit"]),
                   deque(state["tails"]), float(state["low"]), float(state["high"]))  # fmt: skip

    # -- scoring ------------------------------------------------------------------------------
    def _fit(self, exclude_last: int = 0) -> None:
        if self.config.model_weight <= 0:
            return
        values = np.asarray(self.history, dtype=float)[: len(self.history) - exclude_last][-self.config.train_points :]
        if len(values) < 2 * SHORT_MEAN:
            return
        train = features(values)[SHORT_MEAN:]
        model = IsolationForest(n_estimators=self.config.trees, max_samples=min(256, len(train)),
                                random_state=self.config.seed).fit(train)  # fmt: skip
        scores = -model.score_samples(train)
        self.model = _Model(CompiledForest(model), float(scores.mean()), float(scores.std()) or 1e-9)
        self.since_fit = 0

    def observe(self, at_ms: int, value: float) -> Score:
        """Score ``value`` (at event time ``at_ms``) from the history before it, then learn it."""
        del at_ms  # the series' order is its time; kept for callers' symmetry and future calendars
        expectation = self.baseline.expect(value)
        score = Score(0.0, None, None, 0.0, None)
        if expectation is not None and self.seen >= self.config.warmup_points:
            base_log_tail = min(LOG_2 + float(log_ndtr(-expectation.z)), 0.0)
            model_z = None
            model_log_tail = 0.0
            if self.model is not None and expectation.z >= self.config.model_gate:
                recent = [self.history[-i] for i in range(min(SHORT_MEAN, len(self.history)), 0, -1)]
                raw = self.model.forest.score(features(np.array([*recent, value]))[-1])
                model_z = (raw - self.model.mean) / self.model.std
                model_log_tail = float(log_ndtr(-max(model_z, 0.0)))
            w = self.config.model_weight
            self.tails.append(base_log_tail + w * model_log_tail)
            tail = math.exp(sum(self.tails) / len(self.tails))
            score = Score(1.0 - tail, expectation.expected, expectation.spread, expectation.z, model_z)
        self._learn(value)
        return score

    def _learn(self, value: float) -> None:
        self.baseline.push(value)
        self.history.append(value)
        self.seen += 1
        self.since_fit += 1
        if self.since_fit >= self.config.refit_every:
            self._fit()
