"""Per-tenant token buckets: one tenant's flood empties its own bucket, never another's.

Pure: callers pass the time, so tests need no clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import RateLimitedError


@dataclass
class TokenBucket:
    """``rate`` tokens a second up to ``burst``; a take of ``n`` either fits whole or waits."""

    rate: float
    burst: float
    tokens: float
    updated: float

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def take(self, n: float, now: float) -> float:
        """Take ``n`` tokens: 0.0 when granted, else the seconds until they would be there."""
        self._refill(now)
        if n <= self.tokens:
            self.tokens -= n
            return 0.0
        return (min(n, self.burst) - self.tokens) / self.rate

    def empty(self, now: float) -> bool:
        self._refill(now)
        return self.tokens < 1.0


class TenantLimiter:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, TokenBucket] = {}

    def _bucket(self, tenant: str, now: float) -> TokenBucket:
        bucket = self._buckets.get(tenant)
        if bucket is None:
            bucket = self._buckets[tenant] = TokenBucket(self.rate, self.burst, self.burst, now)
        return bucket

    def take(self, tenant: str, n: int, now: float) -> float:
        """0.0 when ``tenant`` may send ``n`` events now, else its Retry-After in seconds."""
        return self._bucket(tenant, now).take(n, now)

    def exhausted(self, tenant: str, now: float) -> float:
        """Before reading a body: the wait if the bucket has not even one token, else 0.0."""
        bucket = self._bucket(tenant, now)
        return bucket.take(1, now) if bucket.empty(now) else 0.0

    def admit(self, tenant: str, now: float, n: int = 0) -> None:
        """``RateLimitedError`` (429 with Retry-After) when the tenant's bucket is empty (``n`` = 0,
        before reading a body) or cannot give ``n`` events now; else takes them."""
        wait = self.take(tenant, n, now) if n else self.exhausted(tenant, now)
        if wait:
            raise RateLimitedError(f"tenant {tenant} is over its event rate", retry_after_s=wait)
