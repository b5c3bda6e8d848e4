"""Rate limits and budgets: sliding one-minute windows and a daily USD budget, as values.

A :class:`MinuteWindow` counts requests and tokens in one-second buckets over the last 60 of
them (the current second included), so a limit frees up second by second rather than at the
top of each minute, and the state stays small (at most 60 buckets) and serialisable.

:class:`TenantUsage` is a tenant's window plus what it spent on the current UTC day; the wiring
keeps it in a table keyed by tenant (requests are partitioned by tenant, so one worker owns a
tenant at a time). Everything here is pure: :func:`admit` decides, :func:`record` returns a new
value. The same window, with :func:`check_rate`, limits each deployment's own RPM/TPM.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from jobs.dispatch.config import TenantLimits

BUCKET_MS = 1_000
WINDOW_BUCKETS = 60
DAY_MS = 86_400_000

Limit = Literal["rpm", "tpm", "budget"]


@dataclass(frozen=True)
class Admission:
    """Whether a request may go now; if not, which limit refused it and when to try again."""

    allowed: bool
    reason: str = ""
    retry_after_s: float | None = None
    limit: Limit | None = None


ALLOWED = Admission(True)


@dataclass(frozen=True)
class MinuteWindow:
    """Requests and tokens per one-second bucket: ``(second, requests, tokens)``, oldest first."""

    buckets: tuple[tuple[int, int, int], ...] = ()

    def live(self, now_ms: int) -> tuple[tuple[int, int, int], ...]:
        oldest = now_ms // BUCKET_MS - WINDOW_BUCKETS + 1
        return tuple(bucket for bucket in self.buckets if bucket[0] >= oldest)

    def totals(self, now_ms: int) -> tuple[int, int]:
        """``(requests, tokens)`` in the minute up to ``now_ms``."""
        live = self.live(now_ms)
        return sum(b[1] for b in live), sum(b[2] for b in live)

    def add(self, requests: int, tokens: int, now_ms: int) -> MinuteWindow:
        second = now_ms // BUCKET_MS
        live = list(self.live(now_ms))
        if live and live[-1][0] == second:
            _, old_requests, old_tokens = live[-1]
            live[-1] = (second, old_requests + requests, old_tokens + tokens)
        else:
            live.append((second, requests, tokens))
        return MinuteWindow(tuple(live))


def _freed_in_s(live: tuple[tuple[int, int, int], ...], column: int, amount: int, now_ms: int) -> float:
    """Seconds until the oldest buckets have freed ``amount`` in ``column`` (1 requests, 2 tokens)."""
    freed = 0
    for bucket in live:
        freed += bucket[column]
        if freed >= amount:
            break
    return max(0.0, ((bucket[0] + WINDOW_BUCKETS) * BUCKET_MS - now_ms) / 1000)


def check_rate(window: MinuteWindow, rpm: int, tpm: int, tokens: int, now_ms: int) -> Admission:
    """May one more request of about ``tokens`` tokens go? 0 disables a limit.

    A request larger than the whole TPM limit still goes when the window is empty, otherwise
    it could never go at all (its retry-after is when the window empties).
    """
    live = window.live(now_ms)
    requests, used = sum(b[1] for b in live), sum(b[2] for b in live)
    if rpm and requests >= rpm:
        wait_s = _freed_in_s(live, 1, requests - rpm + 1, now_ms)
        return Admission(False, f"{rpm} requests/min reached", wait_s, "rpm")
    if tpm and used > 0 and used + tokens > tpm:
        wait_s = _freed_in_s(live, 2, used + tokens - tpm, now_ms)
        return Admission(False, f"{tpm} tokens/min reached", wait_s, "tpm")
    return ALLOWED


def utc_day(now_ms: int) -> int:
    """Days since 1970-01-01 UTC."""
    return now_ms // DAY_MS


@dataclass(frozen=True)
class TenantUsage:
    """A tenant's last minute of requests and tokens, and its spend on UTC day ``day``."""

    minute: MinuteWindow = MinuteWindow()
    day: int = 0
    spent_usd: float = 0.0

    def spent_today(self, now_ms: int) -> float:
        return self.spent_usd if self.day == utc_day(now_ms) else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able value (lists, ints, floats) for a state table."""
        return {
            "minute": [list(bucket) for bucket in self.minute.buckets],
            "day": self.day,
            "spent_usd": self.spent_usd,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TenantUsage:
        buckets = tuple(
            (int(second), int(requests), int(tokens))
            for second, requests, tokens in data.get("minute", ())
        )
        return cls(MinuteWindow(buckets), int(data.get("day", 0)), float(data.get("spent_usd", 0.0)))


def admit(usage: TenantUsage, limits: TenantLimits, prompt_tokens_estimate: int, now_ms: int) -> Admission:
    """May this tenant's next request go: under its RPM, its TPM and today's budget?"""
    rate = check_rate(usage.minute, limits.rpm, limits.tpm, prompt_tokens_estimate, now_ms)
    if not rate.allowed:
        return rate
    budget = limits.budget_usd_per_day
    spent = usage.spent_today(now_ms)
    if budget and spent >= budget:
        midnight_ms = (utc_day(now_ms) + 1) * DAY_MS
        reason = f"daily budget of {budget:.2f} USD spent ({spent:.4f} USD)"
        return Admission(False, reason, (midnight_ms - now_ms) / 1000, "budget")
    return ALLOWED


def record(usage: TenantUsage, tokens: int, cost_usd: float, now_ms: int) -> TenantUsage:
    """``usage`` with one more request of ``tokens`` tokens costing ``cost_usd`` at ``now_ms``."""
    today = utc_day(now_ms)
    spent = usage.spent_today(now_ms) + cost_usd
    return TenantUsage(usage.minute.add(1, tokens, now_ms), today, spent)


@dataclass(frozen=True)
class TenantCharge:
    """What one request adds to its tenant's usage; :meth:`apply_to` adds it to any value."""

    tokens: int
    cost_usd: float
    at_ms: int

    def apply_to(self, usage: TenantUsage) -> TenantUsage:
        return record(usage, self.tokens, self.cost_usd, self.at_ms)
