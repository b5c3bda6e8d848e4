"""The moving window of time to first token."""

from __future__ import annotations

import pytest

from jobs.dispatch.latency import LatencyWindows


@pytest.mark.parametrize(
    ("samples", "now_s", "median"),
    [
        ([], 0.0, None),
        ([(0.0, 40.0)], 1.0, 40.0),
        ([(0.0, 40.0), (1.0, 100.0), (2.0, 42.0)], 3.0, 42.0),
        ([(0.0, 40.0), (1.0, 100.0)], 2.0, 70.0),
        ([(0.0, 1000.0), (50.0, 40.0), (55.0, 44.0)], 61.0, 42.0),  # the first sample left the window
        ([(0.0, 40.0)], 60.0, None),  # exactly window_s old: gone
    ],
)
def test_median_over_the_window(samples: list[tuple[float, float]], now_s: float, median: float | None) -> None:
    windows = LatencyWindows(window_s=60)
    for at_s, ttft_ms in samples:
        windows.record("a", ttft_ms, at_s)
    assert windows.median_ms("a", now_s) == median
    assert windows.median_ms("other", now_s) is None


def test_the_sample_count_is_bounded() -> None:
    windows = LatencyWindows(window_s=60, max_samples=3)
    for ttft_ms in (1000.0, 1000.0, 10.0, 20.0, 30.0):
        windows.record("a", ttft_ms, 0.0)
    assert windows.median_ms("a", 0.0) == 20.0
