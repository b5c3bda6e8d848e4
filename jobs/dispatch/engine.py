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
3. the routing plan, deployment by deployment (none available: ``no_deployment_available``).
   Retryable errors are retried on the same deployment with backoff (Retry-After honoured) up
   to ``max_retries``, but only while that deployment has sent no text; after text, a failure
   goes straight to the next deployment, which is asked to continue all text sent so far, its
   repeat trimmed (:mod:`.continuation`). A non-retryable error fails the request at once,
   unless it is the deployment's own (auth, unknown model there): then the next deployment.
   A retry whose wait would pass the deadline gives way to the next deployment; a deadline
   passed between attempts ends the request (``expired``). When every deployment failed, the
   ``Failed`` carries the last error. Every attempt updates its deployment's breaker and, from
   its first text, latency window.

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
from jobs.dispatch import results
from jobs.dispatch.answer import AnswerProgress
from jobs.dispatch.batching import ChunkBatcher, split_text
from jobs.dispatch.breaker import BreakerState, CircuitBreaker
from jobs.dispatch.cache import ResponseCache, cache_key
from jobs.dispatch.config import DeploymentConfig, RoutingConfig
from jobs.dispatch.continuation import OverlapTrimmer
from jobs.dispatch.errors import ProviderSetupError
from jobs.dispatch.events import ChunkBatch, Completed, Dispatched, DispatchEvent, DispatchRequest, Failed
from jobs.dispatch.latency import LatencyWindows
from jobs.dispatch.limits import MinuteWindow, TenantUsage, admit
from jobs.dispatch.retry import backoff_s, counts_against_deployment, is_deployment_fault, should_retry
from jobs.dispatch.routing import RoutingState, plan_route
from jobs.dispatch.usage import CHARS_PER_TOKEN, NO_TOKENS, count_tokens, estimate_prompt_tokens, estimate_tokens

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class _Outcome:
    """How one attempt ended: ``finish`` on success, else ``error``; whether it sent text."""

    finish: Finish | None
    error: ProviderError | None
    sent_text: bool


@dataclass(frozen=True)
class _MovedOn:
    """A deployment gave up on the request with ``error``: the next one is tried."""

    deployment: str
    error: ProviderError


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
        cache = config.cache
        self._cache = ResponseCache(cache.ttl_s, cache.max_entries) if cache.enabled else None

    def breaker_state(self, deployment: str) -> BreakerState:
        return self._breakers[deployment].state(self._clock_ms() / 1000)

    async def run(
        self, request: DispatchRequest, tenant_usage: TenantUsage
    ) -> AsyncGenerator[DispatchEvent, None]:
        """Dispatch ``request``: ``Dispatched`` and ``ChunkBatch`` events, then one ``Completed``
        or ``Failed`` carrying the tenant's usage with this request applied."""
        started_ms = self._clock_ms()
        chunks = self.config.chunks
        answer = AnswerProgress(ChunkBatcher(chunks.max_tokens, chunks.max_ms), started_ms)
        prompt_tokens = estimate_prompt_tokens(request.messages)
        refusal = self._refusal(request, tenant_usage, prompt_tokens, answer, started_ms)
        if refusal is not None:
            yield refusal
            return
        key = cache_key(request.alias, request.messages, request.max_tokens, request.temperature)
        cached = self._cache.get(key, started_ms / 1000) if self._cache else None
        if cached is not None:
            for piece in split_text(cached.content, chunks.max_tokens * CHARS_PER_TOKEN):
                yield answer.chunk(piece, self._clock_ms())
            yield results.replayed(cached, answer, tenant_usage, self._clock_ms())
            return
        state = RoutingState(self._breakers, self._latency, self._usage)
        plan = plan_route(self.config, request.alias, state, prompt_tokens=prompt_tokens, now_ms=started_ms,
                          rng=self._rng)  # fmt: skip
        for skipped in plan.skipped:
            logger.info("request %s: %s skipped: %s", request.request_id, skipped.deployment, skipped.reason)
        last: _MovedOn | None = None
        for step in plan.steps:
            if _past(request.deadline_at_ms, self._clock_ms()):
                break
            deployment = self.config.deployments[step.deployment]
            reason = step.reason if last is None else f"{step.reason}; after {last.deployment}: {last.error.code}"
            async with aclosing(self._use(deployment, reason, request, answer, tenant_usage)) as events:
                async for event in events:
                    if isinstance(event, _MovedOn):
                        last = event
                        continue
                    if isinstance(event, Completed) and self._cache is not None:
                        cached_answer = results.to_cache(answer, deployment, event.finish_reason)
                        self._cache.put(key, cached_answer, event.at_ms / 1000)
                    yield event
                    if isinstance(event, (Completed, Failed)):
                        return
        now_ms = self._clock_ms()
        error, failed_at = (last.error, last.deployment) if last else (None, None)
        if _past(request.deadline_at_ms, now_ms):
            yield results.expired(error, failed_at, answer, tenant_usage, now_ms)
        elif error is not None:
            yield results.provider_failed(error, failed_at, answer, tenant_usage, now_ms)
        else:
            waits = [s.retry_after_s for s in plan.skipped if s.retry_after_s is not None]
            yield results.failed(answer, tenant_usage, now_ms, "no_deployment_available",
                                 f"no deployment of {request.alias} is available now", retryable=True,
                                 retry_after_s=min(waits) if waits else None)  # fmt: skip

    async def _use(
        self,
        deployment: DeploymentConfig,
        reason: str,
        request: DispatchRequest,
        answer: AnswerProgress,
        tenant_usage: TenantUsage,
    ) -> AsyncGenerator[DispatchEvent | _MovedOn, None]:
        """Attempts at one deployment, retrying while it has sent no text. Ends with a terminal
        event (done), a :class:`_MovedOn` (try the next), or nothing (its breaker refused)."""
        breaker = self._breakers[deployment.name]
        resilience = self.config.resilience
        retries = 0
        while True:
            now_ms = self._clock_ms()
            if not breaker.acquire(now_ms / 1000):
                logger.info("request %s: %s skipped: breaker probe taken", request.request_id, deployment.name)
                return
            outcome: _Outcome | None = None
            try:  # from the breaker's permission to its verdict, however the attempt ends
                answer.start_attempt(deployment.name)
                if answer.text:
                    reason += f", continuing after {len(answer.text)} chars"
                yield Dispatched(answer.attempts, deployment.name, deployment.provider_kind, deployment.model,
                                 reason, now_ms)  # fmt: skip
                async with aclosing(self._attempt(deployment, request, answer)) as attempt:
                    async for item in attempt:
                        if isinstance(item, _Outcome):
                            outcome = item
                        else:
                            yield item
            finally:
                now_ms = self._clock_ms()
                if outcome is None:  # cancelled or closed: no verdict on the deployment
                    breaker.release()
                elif outcome.error is None:
                    breaker.record_success(now_ms / 1000)
                elif counts_against_deployment(outcome.error):
                    breaker.record_failure(now_ms / 1000)
                else:
                    breaker.release()
            assert outcome is not None
            batch = answer.flush(now_ms)  # all text taken so far reaches the client before what follows
            if batch is not None:
                yield batch
            if outcome.error is None:
                assert outcome.finish is not None
                yield results.completed(answer, deployment, outcome.finish.reason, tenant_usage, now_ms)
                return
            error = outcome.error
            logger.info("request %s: %s failed: %s: %s", request.request_id, deployment.name, error.code, error.message)
            if not error.retryable and not is_deployment_fault(error):
                yield results.provider_failed(error, deployment.name, answer, tenant_usage, now_ms)
                return
            if outcome.sent_text or not should_retry(error, retries, resilience.max_retries):
                yield _MovedOn(deployment.name, error)
                return
            retries += 1
            wait_s = backoff_s(retries, resilience.backoff_base_s, resilience.backoff_max_s, self._rng,
                               error.retry_after_s)  # fmt: skip
            if _past(request.deadline_at_ms, now_ms + int(wait_s * 1000)):
                yield _MovedOn(deployment.name, error)
                return
            await self._sleep(wait_s)
            reason = f"retry {retries}/{resilience.max_retries} after {error.code}, waited {wait_s:.2f} s"

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
        if isinstance(error, ProviderTimeoutError) and not raw:
            # a deployment too slow to answer at all is slow, not unmeasured
            self._latency.record(deployment.name, now_ms - started_ms, now_ms / 1000)
        if raw or finish is not None:
            usage = finish.usage if finish else None
            tokens = count_tokens(usage, request.messages, continue_from, "".join(raw))
        else:
            tokens = NO_TOKENS  # nothing generated, nothing billed
        answer.charge(deployment, tokens)
        self._count(deployment.name, 0, tokens.completion_tokens, now_ms)
        yield _Outcome(finish, error, sent)

    def _refusal(
        self, request: DispatchRequest, usage: TenantUsage, prompt_tokens: int, answer: AnswerProgress, now_ms: int
    ) -> Failed | None:
        if request.alias not in self.config.aliases:
            message = f"no model alias {request.alias!r}"
            return results.failed(answer, usage, now_ms, "model_not_found", message, retryable=False)
        if _past(request.deadline_at_ms, now_ms):
            message = "the request's deadline passed before dispatch"
            return results.failed(answer, usage, now_ms, "expired", message, retryable=False)
        admission = admit(usage, self.config.tenant_limits(request.tenant_id), prompt_tokens, now_ms)
        if admission.allowed:
            return None
        code = "budget_exceeded" if admission.limit == "budget" else "tenant_rate_limited"
        message = f"tenant {request.tenant_id}: {admission.reason}"
        return results.failed(answer, usage, now_ms, code, message, retryable=True,
                              retry_after_s=admission.retry_after_s)  # fmt: skip

    def _timeouts(self, request: DispatchRequest, now_ms: int) -> Timeouts:
        """The configured budgets of an attempt, none longer than what is left to the deadline."""
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


def _past(deadline_at_ms: int | None, now_ms: int) -> bool:
    return deadline_at_ms is not None and now_ms >= deadline_at_ms


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
