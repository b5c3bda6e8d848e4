"""The dispatch of one request against scripted providers, on a fake clock."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from contextlib import aclosing
from typing import Any

import pytest

from connectors.providers.base import (
    Finish,
    PromptMessage,
    ProviderRateLimitError,
    ProviderRequestError,
    ProviderServerError,
    Usage,
)
from jobs.dispatch.breaker import BreakerState
from jobs.dispatch.config import RoutingConfig
from jobs.dispatch.engine import Dispatcher
from jobs.dispatch.errors import ProviderSetupError
from jobs.dispatch.events import ChunkBatch, Completed, Dispatched, DispatchEvent, DispatchRequest, Failed
from jobs.dispatch.limits import TenantUsage, record
from jobs.dispatch.usage import cost_usd, estimate_prompt_tokens, estimate_tokens
from tests.unit.jobs.dispatch.fakes import FakeClock, Hang, ScriptedProvider, Step, Wait, answer, routing

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(10)]

MESSAGES = (PromptMessage("user", "Tell me about the fox."),)
FAST = {"backoff_base_s": 0.2, "backoff_max_s": 5, "max_retries": 2, "breaker_failures": 5}


def request(alias: str = "chat", tenant: str = "acme", deadline_at_ms: int | None = None) -> DispatchRequest:
    return DispatchRequest("r1", tenant, "alice", alias, MESSAGES, 200, 0.0, 0, deadline_at_ms)


def setup(
    scripts: dict[str, Sequence[Sequence[Step]]],
    *,
    strategy: str = "lowest_cost",
    resilience: dict[str, Any] | None = None,
    prices: dict[str, tuple[float, float]] | None = None,
    settings: dict[str, dict[str, Any]] | None = None,
    **sections: dict[str, Any],
) -> tuple[Dispatcher, dict[str, ScriptedProvider], FakeClock, RoutingConfig]:
    """Deployments in the order given (lowest_cost + equal prices = that order)."""
    clock = FakeClock()
    tables = {
        name: {"input_price_per_1k": p[0], "output_price_per_1k": p[1], **(settings or {}).get(name, {})}
        for name, p in ((name, (prices or {}).get(name, (0.0, 0.0))) for name in scripts)
    }
    config = routing(
        tables,
        {"chat": {"strategy": strategy, "deployments": list(scripts)}},
        resilience={**FAST, **(resilience or {})},
        **sections,
    )
    providers = {name: ScriptedProvider(clock, script) for name, script in scripts.items()}
    dispatcher = Dispatcher(config, providers, clock_ms=clock, sleep=clock.sleep, rng=random.Random(0))
    return dispatcher, providers, clock, config


async def collect(dispatcher: Dispatcher, req: DispatchRequest, usage: TenantUsage | None = None) -> list[DispatchEvent]:
    async with aclosing(dispatcher.run(req, usage or TenantUsage())) as events:
        return [event async for event in events]


def chunks(events: list[DispatchEvent]) -> list[ChunkBatch]:
    return [e for e in events if isinstance(e, ChunkBatch)]


def attempts(events: list[DispatchEvent]) -> list[str]:
    return [e.deployment for e in events if isinstance(e, Dispatched)]


def assert_chunks_whole(events: list[DispatchEvent], text: str) -> None:
    batches = chunks(events)
    assert [b.sequence for b in batches] == list(range(len(batches)))
    assert "".join(b.text for b in batches) == text


async def test_a_plain_success() -> None:
    dispatcher, providers, clock, _ = setup({"a": [[Wait(40), "Hello", Wait(5), ",", " world", Finish("stop", Usage(9, 3))]]})
    events = await collect(dispatcher, request())
    assert isinstance(events[0], Dispatched) and events[0].attempt == 1 and events[0].provider_kind == "simulated"
    assert events[0].provider_model == "model-a" and events[0].reason == "lowest cost 0 USD/1k tokens"
    done = events[-1]
    assert isinstance(done, Completed)
    assert_chunks_whole(events, "Hello, world")
    assert chunks(events)[0].text == "Hello"  # the first text goes out at once
    assert done.content == "Hello, world" and done.finish_reason == "stop" and done.deployment == "a"
    assert (done.prompt_tokens, done.completion_tokens, done.tokens_estimated) == (9, 3, False)
    assert (done.attempts, done.fallback_used, done.cached, done.chunks) == (1, False, False, len(chunks(events)))
    assert done.ttft_ms == 40 and done.latency_ms == 45
    assert done.tenant_usage.minute.totals(clock()) == (1, 12)
    assert providers["a"].requests[0].continue_from == "" and providers["a"].requests[0].max_tokens == 200


async def test_chunks_are_batched_per_n_deltas_or_m_ms() -> None:
    script: list[Step] = ["a", "b", "c", Wait(100), "d", "e", "f", "g", "h", "i", Finish("stop")]
    dispatcher, *_ = setup({"a": [script]}, chunks={"max_tokens": 4, "max_ms": 50})
    events = await collect(dispatcher, request())
    # the first at once; b c d when d arrives 100 ms after b; e-h by count; i at the end
    assert [c.text for c in chunks(events)] == ["a", "bcd", "efgh", "i"]


async def test_a_429_is_retried_after_the_providers_retry_after() -> None:
    rate_limited: list[Step] = [ProviderRateLimitError("slow down", retry_after_s=1.5)]
    dispatcher, providers, clock, _ = setup({"a": [rate_limited, answer("ok")]})
    events = await collect(dispatcher, request())
    assert clock.sleeps == [1.5]
    assert attempts(events) == ["a", "a"]
    retry = [e for e in events if isinstance(e, Dispatched)][1]
    assert retry.attempt == 2 and retry.reason == "retry 1/2 after rate_limited, waited 1.50 s"
    done = events[-1]
    assert isinstance(done, Completed) and done.attempts == 2 and not done.fallback_used


async def test_retries_back_off_with_jitter_and_stop_at_max_retries() -> None:
    failing: list[Step] = [ProviderServerError("boom", status=503)]
    dispatcher, _, clock, _ = setup({"a": [failing], "b": [answer("from b")]})
    events = await collect(dispatcher, request())
    assert attempts(events) == ["a", "a", "a", "b"]  # the first try and 2 retries, then the next deployment
    assert len(clock.sleeps) == 2 and 0 <= clock.sleeps[0] <= 0.2 and 0 <= clock.sleeps[1] <= 0.4
    done = events[-1]
    assert isinstance(done, Completed) and done.deployment == "b" and done.fallback_used


async def test_fallback_before_any_text_starts_afresh() -> None:
    dispatcher, providers, _, _ = setup({"a": [[ProviderServerError("down")]], "b": [answer("Fine.")]},
                                        resilience={"max_retries": 0})  # fmt: skip
    events = await collect(dispatcher, request())
    assert attempts(events) == ["a", "b"]
    assert providers["b"].requests[0].continue_from == ""
    second = [e for e in events if isinstance(e, Dispatched)][1]
    assert second.reason == "cost 0 USD/1k tokens; after a: provider_error"
    assert_chunks_whole(events, "Fine.")
    done = events[-1]
    assert isinstance(done, Completed) and done.fallback_used and done.attempts == 2


async def test_the_breaker_opens_after_n_failures_and_the_next_request_skips_the_deployment() -> None:
    failing: list[Step] = [ProviderServerError("down")]
    dispatcher, providers, _, _ = setup({"a": [failing], "b": [answer("b")]},
                                        resilience={"breaker_failures": 3, "max_retries": 2})  # fmt: skip
    first = await collect(dispatcher, request())
    assert attempts(first) == ["a", "a", "a", "b"]
    assert dispatcher.breaker_state("a") is BreakerState.OPEN
    second = await collect(dispatcher, request())
    assert attempts(second) == ["b"]
    assert len(providers["a"].requests) == 3
    assert isinstance(second[-1], Completed) and not second[-1].fallback_used


async def test_an_open_breaker_lets_one_probe_through_after_open_s() -> None:
    dispatcher, providers, clock, _ = setup({"a": [[ProviderServerError("down")], answer("back")], "b": [answer("b")]},
                                            resilience={"breaker_failures": 1, "max_retries": 0, "breaker_open_s": 30})  # fmt: skip
    await collect(dispatcher, request())
    clock.advance(30_000)
    events = await collect(dispatcher, request())
    assert attempts(events) == ["a"] and isinstance(events[-1], Completed)
    assert dispatcher.breaker_state("a") is BreakerState.CLOSED


async def test_mid_stream_fallback_continues_the_text_exactly_once() -> None:
    full = "The quick brown fox jumps over the lazy dog. It was a sunny day."
    a_script: list[Step] = ["The quick", " brown fox", " jumps over", " the lazy", " dog.", " It was",
                            ProviderServerError("stream broke")]  # fmt: skip
    # b restarts a little before the end of what it is asked to continue
    b_script: list[Step] = ["lazy dog.", " It", " was a", " sunny", " day.", Finish("stop", Usage(40, 9))]
    dispatcher, providers, _, config = setup({"a": [a_script], "b": [b_script]}, prices={"a": (0.5, 1.0), "b": (1.0, 2.0)},
                                             chunks={"max_tokens": 2, "max_ms": 1000})  # fmt: skip
    events = await collect(dispatcher, request())
    sent_by_a = "The quick brown fox jumps over the lazy dog. It was"
    assert providers["b"].requests[0].continue_from == sent_by_a
    assert providers["b"].requests[0].max_tokens == 200 - estimate_tokens(sent_by_a)
    assert attempts(events) == ["a", "b"]  # no retry of a: it had sent text
    assert_chunks_whole(events, full)
    done = events[-1]
    assert isinstance(done, Completed)
    assert done.content == full and done.fallback_used and done.deployment == "b" and done.tokens_estimated
    a_cost = cost_usd(config.deployments["a"], estimate_prompt_tokens(MESSAGES), estimate_tokens(sent_by_a))
    b_cost = cost_usd(config.deployments["b"], 40, 9)
    assert done.cost_usd == pytest.approx(a_cost + b_cost)
    assert done.charge is not None and done.charge.cost_usd == pytest.approx(a_cost + b_cost)
    reason = [e for e in events if isinstance(e, Dispatched)][1].reason
    assert reason.endswith(f"after a: provider_error, continuing after {len(sent_by_a)} chars")


async def test_all_deployments_failing_is_a_failed_with_the_last_error() -> None:
    dispatcher, _, _, _ = setup({"a": [["partial", ProviderServerError("a down")]],
                                 "b": [[ProviderRateLimitError("b busy", retry_after_s=2)]]},
                                resilience={"max_retries": 1})  # fmt: skip
    events = await collect(dispatcher, request())
    assert attempts(events) == ["a", "b", "b"]
    failed = events[-1]
    assert isinstance(failed, Failed)
    assert (failed.error_code, failed.retryable, failed.retry_after_s, failed.deployment) == ("rate_limited", True, 2, "b")
    assert failed.fallback_used and failed.attempts == 3 and failed.chunks == 1 and failed.ttft_ms == 0
    assert_chunks_whole(events, "partial")
    assert failed.charge is not None and failed.tenant_usage.minute.totals(failed.at_ms)[0] == 1


async def test_a_bad_request_fails_at_once_without_fallback() -> None:
    dispatcher, providers, _, _ = setup({"a": [[ProviderRequestError("too long", status=400)]], "b": [answer("b")]})
    events = await collect(dispatcher, request())
    assert attempts(events) == ["a"] and providers["b"].requests == []
    failed = events[-1]
    assert isinstance(failed, Failed) and failed.error_code == "bad_request" and not failed.retryable
    assert dispatcher.breaker_state("a") is BreakerState.CLOSED


async def test_an_auth_error_at_one_deployment_moves_to_the_next() -> None:
    dispatcher, _, _, _ = setup({"a": [[ProviderRequestError("bad key", status=401, code="auth_error")]],
                                 "b": [answer("b")]})  # fmt: skip
    events = await collect(dispatcher, request())
    assert attempts(events) == ["a", "b"] and isinstance(events[-1], Completed)


@pytest.mark.parametrize(
    ("alias", "usage", "deadline_at_ms", "code", "retry_after_s"),
    [
        ("nope", TenantUsage(), None, "model_not_found", None),
        ("chat", TenantUsage(), 1_000, "expired", None),  # the fake clock is far past it
        ("chat", "rpm", None, "tenant_rate_limited", 60.0),
        ("chat", "budget", None, "budget_exceeded", None),
    ],
)
async def test_refusals_spend_nothing(
    alias: str, usage: TenantUsage | str, deadline_at_ms: int | None, code: str, retry_after_s: float | None
) -> None:
    dispatcher, providers, clock, _ = setup({"a": [answer("a")]}, tenants={"acme": {"rpm": 1, "budget_usd_per_day": 1}})
    if usage == "rpm":
        usage = record(TenantUsage(), 10, 0.0, clock())
    elif usage == "budget":
        usage = record(TenantUsage(), 10, 1.0, clock() - 61_000)
    assert isinstance(usage, TenantUsage)
    events = await collect(dispatcher, request(alias, deadline_at_ms=deadline_at_ms), usage)
    assert len(events) == 1 and providers["a"].requests == []
    failed = events[0]
    assert isinstance(failed, Failed) and failed.error_code == code
    assert failed.charge is None and failed.tenant_usage == usage and failed.attempts == 0
    if retry_after_s is not None:
        assert failed.retry_after_s == pytest.approx(retry_after_s)
    assert (failed.retry_after_s is not None) is (code in ("tenant_rate_limited", "budget_exceeded"))


async def test_a_deadline_reached_during_retries_ends_the_request() -> None:
    dispatcher, _, clock, _ = setup({"a": [[Wait(3000), ProviderServerError("slow failure")]]})
    events = await collect(dispatcher, request(deadline_at_ms=clock() + 2000))
    failed = events[-1]
    assert isinstance(failed, Failed) and failed.error_code == "expired" and "slow failure" in failed.message


async def test_a_cache_hit_replays_the_answer_at_no_cost() -> None:
    dispatcher, providers, _, _ = setup({"a": [answer("Cached ", "answer ", "here.")]}, prices={"a": (1.0, 1.0)},
                                        cache={"enabled": True}, chunks={"max_tokens": 2})  # fmt: skip
    first = await collect(dispatcher, request())
    second = await collect(dispatcher, request())
    assert len(providers["a"].requests) == 1
    done = second[-1]
    assert isinstance(done, Completed) and done.cached and done.cost_usd == 0.0 and done.attempts == 0
    assert_chunks_whole(second, "Cached answer here.")
    assert len(chunks(second)) == 3  # pieces of 2 tokens' worth of characters
    assert done.charge is not None and done.charge.cost_usd == 0.0 and done.charge.tokens == 0
    assert isinstance(first[-1], Completed) and first[-1].cost_usd > 0


async def test_cancellation_closes_the_providers_stream() -> None:
    dispatcher, providers, _, _ = setup({"a": [["Hello", Hang()]]})
    got_text = asyncio.Event()
    seen: list[DispatchEvent] = []

    async def consume() -> None:
        async with aclosing(dispatcher.run(request(), TenantUsage())) as events:
            async for event in events:
                seen.append(event)
                if isinstance(event, ChunkBatch):
                    got_text.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_text.wait(), timeout=2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert providers["a"].closed == 1
    assert not any(isinstance(e, (Completed, Failed)) for e in seen)
    assert dispatcher.breaker_state("a") is BreakerState.CLOSED


async def test_closing_the_run_early_closes_the_providers_stream() -> None:
    dispatcher, providers, _, _ = setup({"a": [["Hello", Hang()]]})
    async with aclosing(dispatcher.run(request(), TenantUsage())) as events:
        async for event in events:
            if isinstance(event, ChunkBatch):
                break
    assert providers["a"].closed == 1


async def test_a_stream_without_a_finish_is_a_failed_attempt() -> None:
    dispatcher, _, _, _ = setup({"a": [["half"]], "b": [answer(" and the rest")]}, resilience={"max_retries": 0})
    events = await collect(dispatcher, request())
    assert attempts(events) == ["a", "b"]
    assert_chunks_whole(events, "half and the rest")


async def test_every_deployment_needs_a_provider() -> None:
    config = routing({"a": {}, "b": {}})
    with pytest.raises(ProviderSetupError, match="no provider client for deployment"):
        Dispatcher(config, {"a": ScriptedProvider(FakeClock(), [answer()])}, clock_ms=FakeClock(),
                   sleep=FakeClock().sleep, rng=random.Random(0))  # fmt: skip


async def test_lowest_latency_learns_from_attempts() -> None:
    dispatcher, _, _, _ = setup({"slow": [answer(Wait(200), "s")], "quick": [answer(Wait(20), "q")]},
                                strategy="lowest_latency")  # fmt: skip
    firsts = [attempts(await collect(dispatcher, request()))[0] for _ in range(4)]
    # unmeasured deployments go first (equal weights: in the alias's order), then the faster one
    assert firsts == ["slow", "quick", "quick", "quick"]


async def test_a_deployment_at_its_own_rpm_is_skipped() -> None:
    dispatcher, *_ = setup({"a": [answer("a")], "b": [answer("b")]}, settings={"a": {"rpm": 1}})
    assert [attempts(await collect(dispatcher, request())) for _ in range(2)] == [["a"], ["b"]]


async def test_no_deployment_available_says_when_one_may_be() -> None:
    dispatcher, providers, clock, _ = setup({"a": [[ProviderServerError("down")]]},
                                            resilience={"breaker_failures": 1, "max_retries": 0, "breaker_open_s": 30})  # fmt: skip
    first = await collect(dispatcher, request())
    assert isinstance(first[-1], Failed) and first[-1].error_code == "provider_error"
    clock.advance(10_000)
    second = await collect(dispatcher, request())
    assert len(second) == 1 and len(providers["a"].requests) == 1
    failed = second[0]
    assert isinstance(failed, Failed) and failed.error_code == "no_deployment_available" and failed.retryable
    assert failed.retry_after_s == pytest.approx(20) and failed.charge is None


@pytest.mark.parametrize("how", ["cancelled-in-the-provider", "closed-at-dispatched"])
async def test_an_abandoned_probe_leaves_the_probe_to_the_next_request(how: str) -> None:
    probe_script: list[list[Step]] = [[Hang()]] if how == "cancelled-in-the-provider" else []  # closed: never called
    scripts: dict[str, Sequence[Sequence[Step]]] = {"a": [[ProviderServerError("down")], *probe_script, answer("back")]}
    dispatcher, providers, clock, _ = setup(scripts, resilience={"breaker_failures": 1, "max_retries": 0})
    await collect(dispatcher, request())
    clock.advance(30_000)  # half-open: one probe may go
    dispatched = asyncio.Event()

    async def probe() -> None:
        async with aclosing(dispatcher.run(request(), TenantUsage())) as events:
            async for event in events:
                if isinstance(event, Dispatched):
                    if how == "closed-at-dispatched":
                        return
                    dispatched.set()

    if how == "closed-at-dispatched":
        await probe()
    else:
        task = asyncio.create_task(probe())
        await asyncio.wait_for(dispatched.wait(), timeout=2)
        await asyncio.sleep(0)  # let it reach the provider's wait
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert providers["a"].closed == 2
    events = await collect(dispatcher, request())
    assert attempts(events) == ["a"] and isinstance(events[-1], Completed)
