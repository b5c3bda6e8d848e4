"""Tenants' and deployments' sliding minute windows, the daily budget, and the state's round trip."""

from __future__ import annotations

import json

import pytest

from jobs.dispatch.config import TenantLimits
from jobs.dispatch.limits import DAY_MS, MinuteWindow, TenantCharge, TenantUsage, admit, check_rate, record

NOON = 20_000 * DAY_MS + 12 * 3_600_000  # a UTC noon


def usage_with(*requests: tuple[int, int]) -> TenantUsage:
    """Usage after requests of (tokens, at ms after NOON), no cost."""
    usage = TenantUsage()
    for tokens, at_ms in requests:
        usage = record(usage, tokens, 0.0, NOON + at_ms)
    return usage


@pytest.mark.parametrize(
    ("requests", "limits", "estimate", "at_ms", "allowed", "limit", "retry_after_s"),
    [
        ([], TenantLimits(rpm=1, tpm=100), 10, 0, True, None, None),
        ([(10, 0)], TenantLimits(rpm=1), 10, 500, False, "rpm", 59.5),
        ([(10, 0)], TenantLimits(rpm=1), 10, 59_999, False, "rpm", 0.001),
        ([(10, 0)], TenantLimits(rpm=1), 10, 60_000, True, None, None),  # the minute slid past it
        ([(10, 0), (10, 20_000), (10, 40_000)], TenantLimits(rpm=3), 1, 45_000, False, "rpm", 15.0),
        ([(10, 0), (10, 20_000), (10, 40_000)], TenantLimits(rpm=3), 1, 60_000, True, None, None),
        ([(10, 0), (10, 20_000)], TenantLimits(rpm=0), 1, 21_000, True, None, None),  # 0 = unlimited
        ([(60, 0), (30, 30_000)], TenantLimits(tpm=100), 5, 31_000, True, None, None),  # 95 <= 100
        ([(60, 0), (30, 30_000)], TenantLimits(tpm=100), 20, 31_000, False, "tpm", 29.0),  # the first frees 60
        ([(60, 0), (30, 30_000)], TenantLimits(tpm=100), 80, 31_000, False, "tpm", 59.0),  # needs both gone
        ([], TenantLimits(tpm=100), 500, 0, True, None, None),  # too big for any minute: goes when idle
    ],
)
def test_tenant_rate_windows(
    requests: list[tuple[int, int]], limits: TenantLimits, estimate: int, at_ms: int,
    allowed: bool, limit: str | None, retry_after_s: float | None,
) -> None:  # fmt: skip
    admission = admit(usage_with(*requests), limits, estimate, NOON + at_ms)
    assert admission.allowed is allowed
    assert admission.limit == limit
    assert admission.retry_after_s == (None if retry_after_s is None else pytest.approx(retry_after_s))


@pytest.mark.parametrize(
    ("spent", "at_ms", "allowed", "retry_after_s"),
    [
        ([0.4, 0.5], 0, True, None),
        ([0.4, 0.6], 0, False, 12 * 3600.0),  # until UTC midnight
        ([0.4, 0.6], 12 * 3_600_000 - 1, False, 0.001),
        ([0.4, 0.6], 12 * 3_600_000, True, None),  # a new UTC day
    ],
)
def test_daily_budget_rolls_over_at_utc_midnight(
    spent: list[float], at_ms: int, allowed: bool, retry_after_s: float | None
) -> None:
    usage = TenantUsage()
    for cost in spent:
        usage = record(usage, 0, cost, NOON)
    admission = admit(usage, TenantLimits(budget_usd_per_day=1.0), 1, NOON + at_ms)
    assert admission.allowed is allowed
    assert admission.retry_after_s == (None if retry_after_s is None else pytest.approx(retry_after_s))
    assert admission.limit == (None if allowed else "budget")


def test_spending_on_a_new_day_starts_from_zero() -> None:
    usage = record(TenantUsage(), 0, 0.9, NOON)
    usage = record(usage, 0, 0.2, NOON + DAY_MS)
    assert usage.spent_today(NOON + DAY_MS) == pytest.approx(0.2)
    assert usage.spent_today(NOON + 2 * DAY_MS) == 0.0


def test_the_state_stays_small_and_round_trips_through_json() -> None:
    usage = TenantUsage()
    for second in range(200):
        usage = record(usage, 7, 0.01, NOON + second * 1000)
    assert len(usage.minute.buckets) == 60  # only the live minute is kept, a bucket a second
    assert usage.minute.totals(NOON + 199_000) == (60, 420)
    restored = TenantUsage.from_dict(json.loads(json.dumps(usage.to_dict())))
    assert restored == usage
    assert TenantUsage.from_dict({}) == TenantUsage()


def test_record_is_pure() -> None:
    before = TenantUsage()
    after = record(before, 10, 0.5, NOON)
    assert before == TenantUsage() and after.minute.totals(NOON) == (1, 10) and after.spent_usd == 0.5


def test_a_charge_applies_to_whatever_value_the_table_holds_now() -> None:
    charge = TenantCharge(tokens=30, cost_usd=0.25, at_ms=NOON)
    current = record(TenantUsage(), 10, 0.5, NOON)  # another request finished meanwhile
    assert charge.apply_to(current).minute.totals(NOON) == (2, 40)
    assert charge.apply_to(current).spent_usd == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("rpm", "tpm", "allowed"),
    [(0, 0, True), (3, 0, False), (4, 0, True), (0, 300, False), (0, 400, True)],
)
def test_deployment_windows_reuse_the_same_check(rpm: int, tpm: int, allowed: bool) -> None:
    window = MinuteWindow()
    for i in range(3):
        window = window.add(1, 100, NOON + i * 1000)
    assert check_rate(window, rpm, tpm, 50, NOON + 3000).allowed is allowed
