"""Time to first token per deployment over a moving window, for ``lowest_latency`` routing."""

from __future__ import annotations

from collections import deque
from statistics import median


class LatencyWindows:
    """TTFT samples per deployment, kept for ``window_s`` seconds (at most ``max_samples``)."""

    def __init__(self, window_s: float, max_samples: int = 1_000) -> None:
        self.window_s = window_s
        self.max_samples = max_samples
        self._samples: dict[str, deque[tuple[float, float]]] = {}

    def record(self, deployment: str, ttft_ms: float, now_s: float) -> None:
        samples = self._samples.setdefault(deployment, deque(maxlen=self.max_samples))
        samples.append((now_s, ttft_ms))
        self._expire(samples, now_s)

    def median_ms(self, deployment: str, now_s: float) -> float | None:
        """The median TTFT of the window, or None with no samples in it."""
        samples = self._samples.get(deployment)
        if not samples:
            return None
        self._expire(samples, now_s)
        return median(ttft for _, ttft in samples) if samples else None

    def _expire(self, samples: deque[tuple[float, float]], now_s: float) -> None:
        while samples and samples[0][0] <= now_s - self.window_s:
            samples.popleft()
