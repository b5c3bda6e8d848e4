"""A circuit breaker per deployment: stop sending requests to one that keeps failing.

States, every transition decided by the caller's ``now_s``::

    CLOSED ──N consecutive failures──▶ OPEN ──open_s elapsed──▶ HALF_OPEN
       ▲                                 ▲                         │ lets exactly one probe through
       └──────── probe succeeds ─────────┼─────────────────────────┤
                                         └──── probe fails ────────┘

Routing asks :meth:`CircuitBreaker.allows` (no side effect) while planning; the engine calls
:meth:`acquire` right before an attempt (in HALF_OPEN that takes the one probe) and then exactly
one of :meth:`record_success`, :meth:`record_failure` or :meth:`release` (the attempt ended
with no verdict on the deployment: the request's own fault, or it was cancelled).
"""

from __future__ import annotations

from enum import Enum


class BreakerState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """One deployment's breaker: opens after ``failures_to_open`` failures in a row."""

    def __init__(self, failures_to_open: int, open_s: float) -> None:
        if failures_to_open < 1 or open_s <= 0:
            raise ValueError("a breaker needs failures_to_open >= 1 and open_s > 0")
        self.failures_to_open = failures_to_open
        self.open_s = open_s
        self._failures = 0
        self._opened_at_s: float | None = None
        self._probe_out = False

    def state(self, now_s: float) -> BreakerState:
        if self._opened_at_s is None:
            return BreakerState.CLOSED
        if now_s - self._opened_at_s >= self.open_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allows(self, now_s: float) -> bool:
        """Would an attempt be let through now? Changes nothing."""
        state = self.state(now_s)
        return state is BreakerState.CLOSED or (state is BreakerState.HALF_OPEN and not self._probe_out)

    def acquire(self, now_s: float) -> bool:
        """Take permission for one attempt; in HALF_OPEN, the single probe."""
        if not self.allows(now_s):
            return False
        if self.state(now_s) is BreakerState.HALF_OPEN:
            self._probe_out = True
        return True

    def reopens_in_s(self, now_s: float) -> float | None:
        """Seconds until an OPEN breaker lets a probe through; None when it is not OPEN."""
        if self.state(now_s) is not BreakerState.OPEN or self._opened_at_s is None:
            return None
        return self._opened_at_s + self.open_s - now_s

    def record_success(self, now_s: float) -> None:
        self._failures = 0
        self._opened_at_s = None
        self._probe_out = False

    def record_failure(self, now_s: float) -> None:
        state = self.state(now_s)
        self._failures += 1
        if state is BreakerState.HALF_OPEN:
            self._opened_at_s = now_s  # the probe failed: open for another open_s
        elif state is BreakerState.CLOSED and self._failures >= self.failures_to_open:
            self._opened_at_s = now_s
        self._probe_out = False

    def release(self) -> None:
        """An attempt ended without a verdict on the deployment: a probe may go again."""
        self._probe_out = False
