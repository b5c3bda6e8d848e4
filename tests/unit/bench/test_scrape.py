"""Histogram quantiles from Prometheus buckets (the dispatch job's TTFT) and tenants spread over
partitions, as the dispatch benchmark reads and makes them."""

from __future__ import annotations

import math
import zlib

import pytest

from bench.dispatch import spread_tenants
from bench.scrape import bucket_quantile, delta

BUCKETS = [(0.01, 0.0), (0.05, 50.0), (0.1, 90.0), (float("inf"), 100.0)]


@pytest.mark.parametrize(("q", "expected"), [(0.5, 0.05), (0.25, 0.03), (0.9, 0.1), (0.95, 0.1)])
def test_quantiles_interpolate_within_their_bucket(q: float, expected: float) -> None:
    assert bucket_quantile(BUCKETS, q) == pytest.approx(expected)


def test_an_empty_histogram_has_no_quantile() -> None:
    assert math.isnan(bucket_quantile([(0.1, 0.0), (float("inf"), 0.0)], 0.5))


def test_delta_is_what_was_observed_between_two_scrapes() -> None:
    before = [(0.05, 10.0), (float("inf"), 10.0)]
    assert delta(BUCKETS[1:], before) == [(0.05, 40.0), (0.1, 90.0), (float("inf"), 90.0)]


def test_tenants_spread_evenly_over_partitions() -> None:
    tenants = spread_tenants("t", 6, 12)
    assert len(set(tenants)) == 12
    per_partition = [sum(1 for t in tenants if zlib.crc32(t.encode()) % 6 == p) for p in range(6)]
    assert per_partition == [2] * 6
