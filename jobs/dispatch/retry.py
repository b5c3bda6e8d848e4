"""What a failed attempt leads to: another try after a backoff, the next deployment, or the end.

Backoff is exponential with full jitter: retry ``n`` (from 1) waits a uniform draw from
``[0, min(max_s, base_s * 2**(n-1))]``. A provider's Retry-After wins when it gives one, capped
at :data:`RETRY_AFTER_MAX_S` (60 s): a longer wait is no use to someone watching a chat window,
and the engine moves on to the next deployment rather than wait past the request's deadline.
"""

from __future__ import annotations

import random

from connectors.providers.base import ProviderError

RETRY_AFTER_MAX_S = 60.0

DEPLOYMENT_FAULT_CODES = frozenset({"auth_error", "permission_denied", "model_not_found", "not_found"})
DEPLOYMENT_FAULT_STATUSES = frozenset({401, 403, 404})


def backoff_s(
    retry_number: int,
    base_s: float,
    max_s: float,
    rng: random.Random,
    retry_after_s: float | None = None,
    *,
    retry_after_max_s: float = RETRY_AFTER_MAX_S,
) -> float:
    """Seconds to wait before retry ``retry_number`` (1 for the first retry)."""
    if retry_after_s is not None:
        return min(max(retry_after_s, 0.0), retry_after_max_s)
    ceiling = min(max_s, base_s * 2 ** max(retry_number - 1, 0))
    return rng.uniform(0.0, ceiling)


def should_retry(error: ProviderError, retries_done: int, max_retries: int) -> bool:
    """Retry the same deployment: the error says another attempt may succeed, and retries remain."""
    return error.retryable and retries_done < max_retries


def is_deployment_fault(error: ProviderError) -> bool:
    """A refusal that is this deployment's, not the request's (bad key, unknown model there):
    the next deployment may well answer."""
    return error.code in DEPLOYMENT_FAULT_CODES or error.status in DEPLOYMENT_FAULT_STATUSES


def counts_against_deployment(error: ProviderError) -> bool:
    """Whether the error is a failure for the deployment's breaker (a 400 is the request's)."""
    return error.retryable or is_deployment_fault(error)
