"""The dispatch of one request: admission, routing, attempts, retries and fallbacks, as events.

``Dispatcher.run(request, tenant_usage)`` is an async generator of the events in
:mod:`jobs.dispatch.events`. It talks to providers only; Kafka and the state tables are the
wiring's. A :class:`Dispatcher` lives as long as its worker and is shared by its concurrent
requests: it holds each deployment's breaker, latency window and RPM/TPM window, and the cache.

One request, in order:

1. refusals, each a ``Failed`` with nothing spent: unknown alias (``model_not_found``), the
   deadline already passed (``expired``), the tenant over its RPM/TPM (``tenant_rate_limited``,
   with ``retry_after_s``) or its daily budget (``budget_exceeded``);
2. a cache hit (when enabled) replays the cached answer as chunks: ``Completed(cached=True)``;
3. the routing plan, deployment by deployment. Retryable errors are retried on the same
   deployment with backoff (Retry-After honoured) up to ``max_retries``, but only while that
   deployment has sent no text; after text, a failure goes straight to the next deployment,
   asked to continue all text sent so far, its repeat trimmed (:mod:`.continuation`). A
   non-retryable error fails the request at once, unless it is the deployment's own
   (auth, unknown model there): then the next deployment. A retry whose wait would pass the
   deadline is given up for the next deployment. Every attempt updates the deployment's
   breaker and, from its first text, latency window.

Chunks are batched as deltas arrive (:mod:`.batching`): the first text goes out at once, and a
batch can wait up to one inter-token gap beyond ``chunks.max_ms``.

Cancelling the task that iterates ``run`` (the client left), or closing the generator, closes
the provider's stream at once and lets ``CancelledError`` propagate; no terminal event is
yielded and the tenant is charged nothing for the cancelled request. Iterate it inside
``contextlib.aclosing`` so that an abandoned iteration closes it promptly too.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

from connectors.providers.base import (
    Finish,
    Provider,
    ProviderError,
    ProviderRequest,
    ProviderServerError,
    ProviderTimeoutError,
    Timeouts,
)
from jobs.dispatch.answer import AnswerProgress
from jobs.dispatch.batching import ChunkBatcher, split_text
from jobs.dispatch.breaker import BreakerState, CircuitBreaker
from jobs.dispatch.cache import CachedAnswer, ResponseCache, cache_key
from jobs.dispatch.config import DeploymentConfig, RoutingConfig
from jobs.dispatch.continuation import OverlapTrimmer
from jobs.dispatch.errors import ProviderSetupError
from jobs.dispatch.events import ChunkBatch, Completed, Dispatched, DispatchEvent, DispatchRequest, Failed
from jobs.dispatch.latency import LatencyWindows
from jobs.dispatch.limits import MinuteWindow, TenantCharge, TenantUsage, admit
from jobs.dispatch.retry import backoff_s, counts_against_deployment, is_deployment_fault, should_retry
from jobs.dispatch.routing import RoutingState, plan_route
from jobs.dispatch.usage import CHARS_PER_TOKEN, NO_TOKENS, count_tokens, estimate_prompt_tokens, estimate_tokens

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class _Outcome:
    """How an attempt ended: ``finish`` on success, else ``error``; whether it sent text."""

    finish: Finish | None
    error: ProviderError | None
    sent_text: bool


class Dispatcher:
    """Dispatches requests to the deployments of ``config`` through ``providers`` (by name)."""

    def __init__(
        self,
        config: RoutingConfig,
        providers: Mapping[str, Provider],
        *,
        clock_ms: Callable[[], int],
        sleep: Callable[[float], Awaitable[None]],
        rng: random.Random,
    ) -> None:
        missing = sorted(set(config.deployments) - set(providers))
        if missing:
            raise ProviderSetupError(f"no provider client for deployment(s) {', '.join(missing)}")
        self.config = config
        self._providers = dict(providers)
        self._clock_ms = clock_ms
        self._sleep = sleep
        self._rng = rng
        resilience = config.resilience
        self._breakers = {
            name: CircuitBreaker(resilience.breaker_failures, resilience.breaker_open_s)
            for name in config.deployments
        }
        self._latency = LatencyWindows(resilience.latency_window_s)
        self._usage: dict[str, MinuteWindow] = {}
        self._cache = (
            ResponseCache(config.cache.ttl_s, config.cache.max_entries) if config.cache.enabled else None
        )

    def breaker_state(self, deployment: str) -> BreakerState:
        return self._breakers[deployment].state(self._clock_ms() / 1000)

    async def run(
        self, request: DispatchRequest, tenant_usage: TenantUsage
    ) -> AsyncGenerator[DispatchEvent, None]:
        """Dispatch ``request``; the last event is a ``Completed`` or ``Failed`` carrying the
        tenant's usage with this request applied."""
        started_ms = self._clock_ms()
        answer = AnswerProgress(ChunkBatcher(self.config.chunks.max_tokens, self.config.chunks.max_ms), started_ms)
        prompt_tokens = estimate_prompt_tokens(request.messages)
        refusal = self._refusal(request, tenant_usage, prompt_tokens, answer, started_ms)
        if refusal is not None:
            yield refusal
            return
        key = cache_key(request.alias, request.messages, request.max_tokens, request.temperature)
        cached = self._cache.get(key, started_ms / 1000) if self._cache else None
        if cached is not None:
            for piece in split_text(cached.content, self.config.chunks.max_tokens * CHARS_PER_TOKEN):
                yield answer.chunk(piece, self._clock_ms())
            yield self._completed_from_cache(cached, answer, tenant_usage)
            return
        state = RoutingState(self._breakers, self._latency, self._usage)
        plan = plan_route(self.config, request.alias, state, prompt_tokens=prompt_tokens, now_ms=started_ms, rng=self._rng)
        for skipped in plan.skipped:
            logger.info("request %s: %s skipped (%s)", request.request_id, skipped.deployment, skipped.reason)
        resilience = self.config.resilience
        last_error: ProviderError | None = None
        last_deployment: str | None = None
        for step in plan.steps:
            deployment = self.config.deployments[step.deployment]
            breaker = self._breakers[deployment.name]
            reason = step.reason if last_error is None else f"{step.reason}; after {last_deployment}: {last_error.code}"
            retries = 0
            while True:
                now_ms = self._clock_ms()
                if request.deadline_at_ms is not None and now_ms >= request.deadline_at_ms:
                    last = f"; last error {last_error.code}: {last_error.message}" if last_error else ""
                    yield self._failed(answer, tenant_usage, "expired", f"the request's deadline passed{last}",
                                       retryable=False, deployment=last_deployment)  # fmt: skip
                    return
                if not breaker.acquire(now_ms / 1000):
                    logger.info("request %s: %s skipped (breaker probe taken)", request.request_id, deployment.name)
                    break
                answer.start_attempt(deployment.name)
                if answer.text:
                    reason += f", continuing after {len(answer.text)} chars"
                yield Dispatched(answer.attempts, deployment.name, deployment.provider_kind, deployment.model, reason, now_ms)
                outcome: _Outcome | None = None
                try:
                    async with aclosing(self._attempt(deployment, request, answer)) as attempt:
                        async for item in attempt:
                            if isinstance(item, ChunkBatch):
                                yield item
                            else:
                                outcome = item
                finally:
                    if outcome is None:  # cancelled or closed: no verdict on the deployment
                        breaker.release()
                assert outcome is not None
                now_ms = self._clock_ms()
                if outcome.error is None:
                    breaker.record_success(now_ms / 1000)
                    batch = answer.flush(now_ms)
                    if batch is not None:
                        yield batch
                    assert outcome.finish is not None
                    yield self._completed(answer, deployment, outcome.finish.reason, tenant_usage, key)
                    return
                error = last_error = outcome.error
                last_deployment = deployment.name
                logger.info("request %s: %s failed: %s (%s)", request.request_id, deployment.name, error.code, error.message)
                if counts_against_deployment(error):
                    breaker.record_failure(now_ms / 1000)
                else:
                    breaker.release()
                batch = answer.flush(now_ms)
                if batch is not None:
                    yield batch
                if not error.retryable and not is_deployment_fault(error):
                    yield self._failed_with(error, answer, tenant_usage, deployment.name)
                    return
                if outcome.sent_text or not should_retry(error, retries, resilience.max_retries):
                    break
                retries += 1
                wait_s = backoff_s(retries, resilience.backoff_base_s, resilience.backoff_max_s, self._rng, error.retry_after_s)
                if request.deadline_at_ms is not None and now_ms + wait_s * 1000 >= request.deadline_at_ms:
                    break
                await self._sleep(wait_s)
                reason = f"retry {retries}/{resilience.max_retries} after {error.code}, waited {wait_s:.2f} s"
        if last_error is not None:
            yield self._failed_with(last_error, answer, tenant_usage, last_deployment)
            return
        waits = [s.retry_after_s for s in plan.skipped if s.retry_after_s is not None]
        yield self._failed(answer, tenant_usage, "no_deployment_available",
                           f"no deployment of {request.alias} is available now", retryable=True,
                           retry_after_s=min(waits) if waits else None)  # fmt: skip

    async def _attempt(
        self, deployment: DeploymentConfig, request: DispatchRequest, answer: AnswerProgress
    ) -> AsyncGenerator[ChunkBatch | _Outcome, None]:
        """One call to one deployment: its chunks, then exactly one :class:`_Outcome`."""
        continue_from = answer.text
        trimmer = OverlapTrimmer(continue_from) if continue_from else None
        started_ms = self._clock_ms()
        self._count(deployment.name, 1, estimate_prompt_tokens(request.messages, continue_from), started_ms)
        provider_request = ProviderRequest(
            model=deployment.model,
            messages=request.messages,
            max_tokens=_remaining_tokens(request.max_tokens, continue_from),
            temperature=request.temperature,
            continue_from=continue_from,
        )
        raw: list[str] = []
        sent = False
        finish: Finish | None = None
        error: ProviderError | None = None
        try:
            stream = self._providers[deployment.name].stream(provider_request, self._timeouts(request, started_ms))
            async with _closing(stream) as events:
                async for event in events:
                    now_ms = self._clock_ms()
                    if isinstance(event, Finish):
                        finish = event
                        break
                    if not raw:
                        self._latency.record(deployment.name, now_ms - started_ms, now_ms / 1000)
                    raw.append(event.text)
                    text = trimmer.feed(event.text) if trimmer else event.text
                    sent = sent or bool(text)
                    batch = answer.accept(text, now_ms)
                    if batch is not None:
                        yield batch
            if finish is None:
                raise ProviderServerError(f"{deployment.name}: the stream ended without a finish")
            if trimmer is not None:
                text = trimmer.finish()
                sent = sent or bool(text)
                batch = answer.accept(text, self._clock_ms())
                if batch is not None:
                    yield batch
        except ProviderError as exc:
            error = exc
        except Exception as exc:  # a client's untranslated error fails the attempt, not the worker
            logger.warning("provider client of %s raised %r", deployment.name, exc, exc_info=True)
            error = ProviderServerError(f"{deployment.name}: provider client failed: {type(exc).__name__}: {exc}")
        now_ms = self._clock_ms()
        if error is not None and not raw and isinstance(error, ProviderTimeoutError):
            # a deployment too slow to answer at all is slow, not unmeasured
            self._latency.record(deployment.name, now_ms - started_ms, now_ms / 1000)
        completion = "".join(raw)
        if raw or finish is not None:
            tokens = count_tokens(finish.usage if finish else None, request.messages, continue_from, completion)
        else:
            tokens = NO_TOKENS  # nothing generated: nothing billed
        answer.charge(deployment, tokens)
        self._count(deployment.name, 0, tokens.completion_tokens, now_ms)
        yield _Outcome(finish, error, sent)

    def _refusal(
        self, request: DispatchRequest, usage: TenantUsage, prompt_tokens: int, answer: AnswerProgress, now_ms: int
    ) -> Failed | None:
        if request.alias not in self.config.aliases:
            return self._failed(answer, usage, "model_not_found", f"no model alias {request.alias!r}", retryable=False)
        if request.deadline_at_ms is not None and now_ms >= request.deadline_at_ms:
            return self._failed(answer, usage, "expired", "the request's deadline passed before dispatch", retryable=False)
        admission = admit(usage, self.config.tenant_limits(request.tenant_id), prompt_tokens, now_ms)
        if admission.allowed:
            return None
        code = "budget_exceeded" if admission.limit == "budget" else "tenant_rate_limited"
        return self._failed(answer, usage, code, f"tenant {request.tenant_id}: {admission.reason}",
                            retryable=True, retry_after_s=admission.retry_after_s)  # fmt: skip

    def _completed(
        self, answer: AnswerProgress, deployment: DeploymentConfig, finish_reason: str, usage: TenantUsage, key: str
    ) -> Completed:
        now_ms = self._clock_ms()
        charge = TenantCharge(answer.tokens.total, answer.cost_usd, now_ms)
        completed = Completed(
            content=answer.text, finish_reason=finish_reason, deployment=deployment.name,
            provider_kind=deployment.provider_kind, provider_model=deployment.model,
            prompt_tokens=answer.tokens.prompt_tokens, completion_tokens=answer.tokens.completion_tokens,
            tokens_estimated=answer.tokens.estimated, cost_usd=answer.cost_usd,
            latency_ms=answer.latency_ms(now_ms), ttft_ms=answer.ttft_ms(), attempts=answer.attempts,
            fallback_used=answer.fallback_used, cached=False, chunks=answer.chunks, at_ms=now_ms,
            tenant_usage=charge.apply_to(usage), charge=charge,
        )  # fmt: skip
        if self._cache is not None:
            self._cache.put(key, CachedAnswer(
                completed.content, finish_reason, deployment.name, deployment.provider_kind, deployment.model,
                completed.prompt_tokens, completed.completion_tokens, completed.tokens_estimated,
            ), now_ms / 1000)  # fmt: skip
        return completed

    def _completed_from_cache(self, cached: CachedAnswer, answer: AnswerProgress, usage: TenantUsage) -> Completed:
        now_ms = self._clock_ms()
        charge = TenantCharge(0, 0.0, now_ms)  # a request for the tenant's RPM; no tokens, no cost
        return Completed(
            content=cached.content, finish_reason=cached.finish_reason, deployment=cached.deployment,
            provider_kind=cached.provider_kind, provider_model=cached.provider_model,
            prompt_tokens=cached.prompt_tokens, completion_tokens=cached.completion_tokens,
            tokens_estimated=cached.tokens_estimated, cost_usd=0.0, latency_ms=answer.latency_ms(now_ms),
            ttft_ms=answer.ttft_ms(), attempts=0, fallback_used=False, cached=True, chunks=answer.chunks,
            at_ms=now_ms, tenant_usage=charge.apply_to(usage), charge=charge,
        )  # fmt: skip

    def _failed_with(
        self, error: ProviderError, answer: AnswerProgress, usage: TenantUsage, deployment: str | None
    ) -> Failed:
        return self._failed(answer, usage, error.code, error.message, retryable=error.retryable,
                            retry_after_s=error.retry_after_s, deployment=deployment)  # fmt: skip

    def _failed(
        self,
        answer: AnswerProgress,
        usage: TenantUsage,
        code: str,
        message: str,
        *,
        retryable: bool,
        retry_after_s: float | None = None,
        deployment: str | None = None,
    ) -> Failed:
        now_ms = self._clock_ms()
        charge = TenantCharge(answer.tokens.total, answer.cost_usd, now_ms) if answer.attempts else None
        return Failed(
            error_code=code, message=message, retryable=retryable, retry_after_s=retry_after_s,
            deployment=deployment, attempts=answer.attempts, fallback_used=answer.fallback_used,
            latency_ms=answer.latency_ms(now_ms), ttft_ms=answer.ttft_ms(), chunks=answer.chunks,
            at_ms=now_ms, tenant_usage=charge.apply_to(usage) if charge else usage, charge=charge,
        )  # fmt: skip

    def _timeouts(self, request: DispatchRequest, now_ms: int) -> Timeouts:
        resilience = self.config.resilience
        total_s = resilience.total_timeout_s
        if request.deadline_at_ms is not None:
            total_s = max(0.001, min(total_s, (request.deadline_at_ms - now_ms) / 1000))
        return Timeouts(
            connect_s=min(resilience.connect_timeout_s, total_s),
            first_token_s=min(resilience.first_token_timeout_s, total_s),
            total_s=total_s,
        )

    def _count(self, deployment: str, requests: int, tokens: int, now_ms: int) -> None:
        self._usage[deployment] = self._usage.get(deployment, MinuteWindow()).add(requests, tokens, now_ms)


def _remaining_tokens(max_tokens: int | None, continue_from: str) -> int | None:
    """A continuation's share of the request's ``max_tokens``."""
    if max_tokens is None or not continue_from:
        return max_tokens
    return max(1, max_tokens - estimate_tokens(continue_from))


@asynccontextmanager
async def _closing(stream: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """Close a provider's stream on the way out (``aclose`` when it has one), however we leave."""
    try:
        yield stream
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()
