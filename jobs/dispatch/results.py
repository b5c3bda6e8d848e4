"""The terminal event of a run, ``Completed`` or ``Failed``, built from its :class:`AnswerProgress`.

Both carry the tenant's usage: ``charge`` is what this request adds (None when it was refused
before anything was spent) and ``tenant_usage`` the value passed to ``run`` with it applied.
"""

from __future__ import annotations

from connectors.providers.base import ProviderError
from jobs.dispatch.answer import AnswerProgress
from jobs.dispatch.cache import CachedAnswer
from jobs.dispatch.config import DeploymentConfig
from jobs.dispatch.events import Completed, Failed
from jobs.dispatch.limits import TenantCharge, TenantUsage


def completed(
    answer: AnswerProgress, deployment: DeploymentConfig, finish_reason: str, usage: TenantUsage, now_ms: int
) -> Completed:
    charge = TenantCharge(answer.tokens.total, answer.cost_usd, now_ms)
    return Completed(
        content=answer.text,
        finish_reason=finish_reason,
        deployment=deployment.name,
        provider_kind=deployment.provider_kind,
        provider_model=deployment.model,
        prompt_tokens=answer.tokens.prompt_tokens,
        completion_tokens=answer.tokens.completion_tokens,
        tokens_estimated=answer.tokens.estimated,
        cost_usd=answer.cost_usd,
        latency_ms=answer.latency_ms(now_ms),
        ttft_ms=answer.ttft_ms(),
        attempts=answer.attempts,
        fallback_used=answer.fallback_used,
        cached=False,
        chunks=answer.chunks,
        at_ms=now_ms,
        tenant_usage=charge.apply_to(usage),
        charge=charge,
    )


def replayed(cached: CachedAnswer, answer: AnswerProgress, usage: TenantUsage, now_ms: int) -> Completed:
    """A cache hit: no attempt, no cost; it counts as a request for the tenant's RPM, no tokens."""
    charge = TenantCharge(0, 0.0, now_ms)
    return Completed(
        content=cached.content,
        finish_reason=cached.finish_reason,
        deployment=cached.deployment,
        provider_kind=cached.provider_kind,
        provider_model=cached.provider_model,
        prompt_tokens=cached.prompt_tokens,
        completion_tokens=cached.completion_tokens,
        tokens_estimated=cached.tokens_estimated,
        cost_usd=0.0,
        latency_ms=answer.latency_ms(now_ms),
        ttft_ms=answer.ttft_ms(),
        attempts=0,
        fallback_used=False,
        cached=True,
        chunks=answer.chunks,
        at_ms=now_ms,
        tenant_usage=charge.apply_to(usage),
        charge=charge,
    )


def to_cache(answer: AnswerProgress, deployment: DeploymentConfig, finish_reason: str) -> CachedAnswer:
    return CachedAnswer(
        answer.text,
        finish_reason,
        deployment.name,
        deployment.provider_kind,
        deployment.model,
        answer.tokens.prompt_tokens,
        answer.tokens.completion_tokens,
        answer.tokens.estimated,
    )


def failed(
    answer: AnswerProgress,
    usage: TenantUsage,
    now_ms: int,
    code: str,
    message: str,
    *,
    retryable: bool,
    retry_after_s: float | None = None,
    deployment: str | None = None,
) -> Failed:
    """A failure; the tenant is charged only when an attempt was made."""
    charge = TenantCharge(answer.tokens.total, answer.cost_usd, now_ms) if answer.attempts else None
    return Failed(
        error_code=code,
        message=message,
        retryable=retryable,
        retry_after_s=retry_after_s,
        deployment=deployment,
        attempts=answer.attempts,
        fallback_used=answer.fallback_used,
        latency_ms=answer.latency_ms(now_ms),
        ttft_ms=answer.ttft_ms(),
        chunks=answer.chunks,
        at_ms=now_ms,
        tenant_usage=charge.apply_to(usage) if charge else usage,
        charge=charge,
    )


def provider_failed(
    error: ProviderError, deployment: str | None, answer: AnswerProgress, usage: TenantUsage, now_ms: int
) -> Failed:
    """The request failed with a provider's error (the last one, when every deployment failed)."""
    return failed(answer, usage, now_ms, error.code, error.message, retryable=error.retryable,
                  retry_after_s=error.retry_after_s, deployment=deployment)  # fmt: skip


def expired(
    error: ProviderError | None, deployment: str | None, answer: AnswerProgress, usage: TenantUsage, now_ms: int
) -> Failed:
    """The deadline passed while dispatching; the last provider error, if any, is in the message."""
    last = f"; last error {error.code}: {error.message}" if error else ""
    message = f"the request's deadline passed during dispatch{last}"
    return failed(answer, usage, now_ms, "expired", message, retryable=False, deployment=deployment)
