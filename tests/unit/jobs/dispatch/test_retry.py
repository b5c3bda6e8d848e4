"""Backoff bounds, Retry-After, and what each error leads to."""

from __future__ import annotations

import random

import pytest

from connectors.providers.base import (
    ProviderConnectError,
    ProviderError,
    ProviderRateLimitError,
    ProviderRequestError,
    ProviderServerError,
    ProviderTimeoutError,
)
from jobs.dispatch.retry import (
    RETRY_AFTER_MAX_S,
    backoff_s,
    counts_against_deployment,
    is_deployment_fault,
    should_retry,
)


@pytest.mark.parametrize(
    ("retry_number", "ceiling_s"),
    [(1, 0.2), (2, 0.4), (3, 0.8), (5, 3.2), (6, 5.0), (30, 5.0)],
)
def test_backoff_is_full_jitter_under_an_exponential_capped_ceiling(retry_number: int, ceiling_s: float) -> None:
    rng = random.Random(7)
    waits = [backoff_s(retry_number, 0.2, 5.0, rng) for _ in range(2000)]
    assert all(0.0 <= w <= ceiling_s for w in waits)
    assert max(waits) > 0.9 * ceiling_s and min(waits) < 0.1 * ceiling_s  # full jitter: the whole range


@pytest.mark.parametrize(
    ("retry_after_s", "expected_s"),
    [(1.5, 1.5), (0.0, 0.0), (30.0, 30.0), (600.0, RETRY_AFTER_MAX_S), (-3.0, 0.0)],
)
def test_a_providers_retry_after_wins_capped(retry_after_s: float, expected_s: float) -> None:
    assert backoff_s(1, 0.2, 5.0, random.Random(0), retry_after_s) == expected_s


def test_the_retry_after_cap_can_be_set() -> None:
    assert backoff_s(1, 0.2, 5.0, random.Random(0), 20.0, retry_after_max_s=10.0) == 10.0


@pytest.mark.parametrize(
    ("error", "retries_done", "retry", "deployment_fault", "breaker_failure"),
    [
        (ProviderServerError("500", status=500), 0, True, False, True),
        (ProviderServerError("500", status=500), 2, False, False, True),  # retries used up
        (ProviderRateLimitError("429", retry_after_s=1), 1, True, False, True),
        (ProviderConnectError("refused"), 0, True, False, True),
        (ProviderTimeoutError("slow", "first_token"), 0, True, False, True),
        (ProviderRequestError("bad", status=400), 0, False, False, False),  # the request's fault
        (ProviderRequestError("key", status=401, code="auth_error"), 0, False, True, True),
        (ProviderRequestError("gone", status=404, code="model_not_found"), 0, False, True, True),
        (ProviderError("odd", code="permission_denied", retryable=False), 0, False, True, True),
    ],
)
def test_what_an_error_leads_to(
    error: ProviderError, retries_done: int, retry: bool, deployment_fault: bool, breaker_failure: bool
) -> None:
    assert should_retry(error, retries_done, max_retries=2) is retry
    assert is_deployment_fault(error) is deployment_fault
    assert counts_against_deployment(error) is breaker_failure
