"""The robust baseline of one series: how far a value lies from what its recent history expects.

``GaussianBaseline`` keeps the last ``window`` values with running sums (re-summed exactly every
``window`` updates, so float error cannot build up) and scores a value by its distance from their
mean in standard deviations, before the value joins them. With ``season_points`` set (1,440 for a
daily season of minute points) and at least ``seasons`` seasons of history, it expects the
median of the values one, two, ... seasons back at the same phase, and measures the spread on the
residuals from that expectation: a daily peak is then expected, and a missing one is not. The
deviation never falls below ``floor`` of the range seen so far, so a flat series does not turn
every small wiggle into an anomaly.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Expectation:
    expected: float
    spread: float  # standard deviation around ``expected``
    z: float  # |observed - expected| / spread


class RunningWindow:
    """Mean and deviation of the last ``size`` values, O(1) per value."""

    def __init__(self, size: int) -> None:
        self.values: deque[float] = deque(maxlen=size)
        self.total = 0.0
        self.squares = 0.0
        self._until_resum = size

    def push(self, value: float) -> None:
        if len(self.values) == self.values.maxlen:
            old = self.values[0]
            self.total -= old
            self.squares -= old * old
        self.values.append(value)
        self.total += value
        self.squares += value * value
        self._until_resum -= 1
        if self._until_resum <= 0:
            self.total = math.fsum(self.values)
            self.squares = math.fsum(v * v for v in self.values)
            self._until_resum = self.values.maxlen or 1

    def __len__(self) -> int:
        return len(self.values)

    def mean(self) -> float:
        return self.total / len(self.values)

    def std(self) -> float:
        mean = self.mean()
        return math.sqrt(max(self.squares / len(self.values) - mean * mean, 0.0))


class GaussianBaseline:
    def __init__(self, window: int, *, season_points: int | None = None, seasons: int = 3, floor: float = 1e-3) -> None:
        self.level = RunningWindow(window)
        self.season_points = season_points
        self.seasons = seasons
        self.floor = floor
        self._needed = season_points * seasons if season_points else 0
        self.history: deque[float] = deque(maxlen=max(self._needed, 1))
        self.residuals = RunningWindow(window)
        self.low = math.inf
        self.high = -math.inf

    def _seasonal(self) -> float | None:
        """The median of the values whole seasons back, at this phase (None: too little history)."""
        if not self.season_points or len(self.history) < self._needed:
            return None
        back = [self.history[-self.season_points * k] for k in range(1, self.seasons + 1)]
        return statistics.median(back)

    def expect(self, value: float) -> Expectation | None:
        """How unusual ``value`` is, from the history before it (None until there is some)."""
        if len(self.level) < 2:
            return None
        least = self.floor * (self.high - self.low) or 1e-9
        seasonal = self._seasonal()
        if seasonal is not None and len(self.residuals) >= 2:
            spread = max(self.residuals.std(), least)
            return Expectation(seasonal, spread, abs(value - seasonal) / spread)
        spread = max(self.level.std(), least)
        mean = self.level.mean()
        return Expectation(mean, spread, abs(value - mean) / spread)

    def push(self, value: float) -> None:
        seasonal = self._seasonal()
        if seasonal is not None:
            self.residuals.push(value - seasonal)
        self.level.push(value)
        if self.season_points:
            self.history.append(value)
        self.low, self.high = min(self.low, value), max(self.high, value)
