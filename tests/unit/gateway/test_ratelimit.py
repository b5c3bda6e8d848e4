from __future__ import annotations

import pytest

from gateway.ratelimit import TenantLimiter, TokenBucket


def test_bucket_grants_until_empty_then_says_how_long_to_wait() -> None:
    bucket = TokenBucket(rate=10, burst=20, tokens=20, updated=0.0)
    assert bucket.take(15, now=0.0) == 0.0
    assert bucket.take(10, now=0.0) == pytest.approx(0.5)  # 5 left, 5 more needed at 10/s
    assert bucket.take(10, now=0.5) == 0.0


def test_bucket_never_holds_more_than_its_burst() -> None:
    bucket = TokenBucket(rate=10, burst=20, tokens=0, updated=0.0)
    assert bucket.take(20, now=1000.0) == 0.0
    assert bucket.take(1, now=1000.0) > 0


def test_a_take_larger_than_the_burst_waits_for_a_full_bucket_only() -> None:
    bucket = TokenBucket(rate=10, burst=20, tokens=0, updated=0.0)
    assert bucket.take(50, now=0.0) == pytest.approx(2.0)


def test_one_tenants_flood_leaves_others_untouched() -> None:
    limiter = TenantLimiter(rate=100, burst=100)
    for _ in range(10):
        limiter.take("flooder", 100, now=0.0)
    assert limiter.exhausted("flooder", now=0.0) > 0
    assert limiter.take("quiet", 100, now=0.0) == 0.0
    assert limiter.exhausted("quiet", now=1.0) == 0.0
