"""SimulatedProvider: deterministic answers, exact continuations, pacing and injected failures."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from connectors.providers.base import (
    Finish,
    PromptMessage,
    ProviderError,
    ProviderEvent,
    ProviderRateLimitError,
    ProviderRequest,
    ProviderServerError,
    ProviderTimeoutError,
    TextDelta,
    Timeouts,
    Usage,
)
from connectors.providers.simulated import VOCABULARY, SimulatedProvider, simulated_answer

pytestmark = pytest.mark.anyio

MESSAGES = (
    PromptMessage("system", "You are a helpful assistant."),
    PromptMessage("user", "How does Kafka keep events in order?"),
)
REQUEST = ProviderRequest(model="sim-large", messages=MESSAGES)


class FakeSleep:
    """Records the waits asked for; waits for nothing."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


async def attempt(
    provider: SimulatedProvider, request: ProviderRequest = REQUEST
) -> tuple[list[ProviderEvent], ProviderError | None]:
    events: list[ProviderEvent] = []
    try:
        async for event in provider.stream(request, Timeouts()):
            events.append(event)
    except ProviderError as exc:
        return events, exc
    return events, None


def text_of(events: list[ProviderEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


def full_answer(messages: tuple[PromptMessage, ...] = MESSAGES) -> str:
    return "".join(simulated_answer(messages, None))


def test_the_answer_is_words_from_the_vocabulary_ending_with_a_period() -> None:
    tokens = simulated_answer(MESSAGES, None)
    assert 16 <= len(tokens) <= 64
    assert all(t.endswith(" ") and t[:-1] in VOCABULARY for t in tokens[:-1])
    assert tokens[-1].endswith(".") and tokens[-1][:-1] in VOCABULARY
    assert len(set(VOCABULARY)) == 64  # one digest byte picks a word without bias


def test_the_answer_depends_on_roles_and_contents_only() -> None:
    prompts = [(PromptMessage("user", f"question {i}"),) for i in range(200)]
    lengths = {len(simulated_answer(prompt, None)) for prompt in prompts}
    assert min(lengths) >= 16 and max(lengths) <= 64 and len(lengths) > 20
    assert simulated_answer(MESSAGES, None) == simulated_answer(tuple(MESSAGES), None)
    as_assistant = (MESSAGES[0], PromptMessage("assistant", MESSAGES[1].content))
    assert simulated_answer(as_assistant, None) != simulated_answer(MESSAGES, None)
    # the boundary between messages counts: "ab" + "c" is not "a" + "bc"
    split_one = (PromptMessage("user", "ab"), PromptMessage("user", "c"))
    split_two = (PromptMessage("user", "a"), PromptMessage("user", "bc"))
    assert simulated_answer(split_one, 40) != simulated_answer(split_two, 40)
    assert len(simulated_answer(MESSAGES, 5)) == 5 and simulated_answer(MESSAGES, 0) == []


async def test_two_deployments_give_the_same_answer_whatever_the_model() -> None:
    one, _ = await attempt(SimulatedProvider(seed=1), REQUEST)
    other, _ = await attempt(
        SimulatedProvider(seed=2, ttft_ms=5, tokens_per_s=1000, sleep=FakeSleep()),
        ProviderRequest(model="sim-small", messages=MESSAGES),
    )
    assert text_of(one) == text_of(other) == full_answer()
    assert SimulatedProvider.kind == "simulated"


@pytest.mark.parametrize("cut", [1, 5, 6, 7, 30, -1, 0, 10_000])
async def test_a_continuation_yields_exactly_the_rest_of_the_answer(cut: int) -> None:
    full = full_answer()
    delivered = full[:cut] if cut else full  # 0: everything was delivered already
    events, error = await attempt(
        SimulatedProvider(), ProviderRequest(model="any", messages=MESSAGES, continue_from=delivered)
    )
    assert error is None
    assert delivered + text_of(events) == full
    assert all(isinstance(e, TextDelta) and e.text for e in events[:-1])
    assert isinstance(events[-1], Finish) and events[-1].reason == "stop"


async def test_a_fallback_after_a_failure_mid_stream_completes_the_uninterrupted_text() -> None:
    primary = SimulatedProvider(fail_after_tokens=7)
    fallback = SimulatedProvider(ttft_ms=20, sleep=FakeSleep())
    delivered, error = await attempt(primary)
    assert isinstance(error, ProviderServerError) and len(delivered) == 7
    request = ProviderRequest(model="sim-small", messages=MESSAGES, continue_from=text_of(delivered))
    rest, error = await attempt(fallback, request)
    assert error is None
    assert text_of(delivered) + text_of(rest) == full_answer()
    finish = rest[-1]
    assert isinstance(finish, Finish) and finish.usage is not None
    assert finish.usage.completion_tokens == len(simulated_answer(MESSAGES, None)) - 7


@pytest.mark.parametrize(
    ("max_tokens", "tokens", "reason"), [(5, 5, "length"), (20, 20, "stop"), (100, 20, "stop")]
)
async def test_max_tokens_cuts_the_answer_with_reason_length(
    max_tokens: int, tokens: int, reason: str
) -> None:
    request = ProviderRequest(model="m", messages=MESSAGES, max_tokens=max_tokens)
    events, _ = await attempt(SimulatedProvider(answer_tokens=20), request)
    assert len(events) == tokens + 1
    assert text_of(events) == "".join(simulated_answer(MESSAGES, 20)[:tokens])
    assert events[-1] == Finish(reason, Usage(prompt_tokens=18, completion_tokens=tokens))


async def test_usage_counts_prompt_words_plus_three_a_message_and_the_tokens_yielded() -> None:
    request = ProviderRequest(model="m", messages=MESSAGES, continue_from="one two")
    events, _ = await attempt(SimulatedProvider(answer_tokens=10), request)
    # 5 + 7 words, 2 messages; the partial answer is one more message of 2 words
    usage = Usage(prompt_tokens=(5 + 3) + (7 + 3) + (2 + 3), completion_tokens=len(events) - 1)
    assert events[-1] == Finish("stop", usage)


@pytest.mark.parametrize("after", [0, 1, 3, 12])
async def test_fail_after_tokens_fails_after_exactly_that_many(after: int) -> None:
    events, error = await attempt(SimulatedProvider(answer_tokens=12, fail_after_tokens=after))
    assert events == [TextDelta(t) for t in simulated_answer(MESSAGES, 12)[:after]]
    assert isinstance(error, ProviderServerError) and error.status == 500
    assert error.message.startswith("simulated provider: injected")


async def test_fail_after_more_tokens_than_the_answer_has_finishes() -> None:
    events, error = await attempt(SimulatedProvider(answer_tokens=12, fail_after_tokens=13))
    assert error is None and isinstance(events[-1], Finish)


@pytest.mark.parametrize(
    ("failure", "kind", "code"),
    [
        ("server_error", ProviderServerError, "provider_error"),
        ("rate_limited", ProviderRateLimitError, "rate_limited"),
        ("timeout", ProviderTimeoutError, "timeout_first_token"),
    ],
)
async def test_each_injected_failure_is_its_provider_error(
    failure: str, kind: type[ProviderError], code: str
) -> None:
    provider = SimulatedProvider(
        failure_rate=1.0, failure=failure, retry_after_s=1.5  # type: ignore[arg-type]
    )
    events, error = await attempt(provider)
    assert events == []
    assert isinstance(error, kind) and error.code == code and error.retryable
    assert error.message.startswith("simulated provider: injected")
    if failure == "rate_limited":
        assert error.retry_after_s == 1.5
    if failure == "timeout":
        assert isinstance(error, ProviderTimeoutError) and error.phase == "first_token"


async def test_a_timeout_injected_mid_stream_is_past_the_first_token() -> None:
    _, error = await attempt(SimulatedProvider(fail_after_tokens=3, failure="timeout"))
    assert isinstance(error, ProviderTimeoutError) and error.phase == "total"


async def test_the_failure_rate_is_drawn_from_the_instances_own_seeded_random() -> None:
    async def outcomes(provider: SimulatedProvider) -> list[bool]:
        return [(await attempt(provider))[1] is None for _ in range(60)]

    first = await outcomes(SimulatedProvider(failure_rate=0.3, seed=7))
    again = await outcomes(SimulatedProvider(failure_rate=0.3, seed=7))
    other = await outcomes(SimulatedProvider(failure_rate=0.3, seed=8))
    assert first == again != other
    assert 5 <= first.count(False) <= 35
    assert all(await outcomes(SimulatedProvider(failure_rate=0.0)))


async def test_it_waits_ttft_then_one_interval_per_token() -> None:
    sleep = FakeSleep()
    events, _ = await attempt(SimulatedProvider(ttft_ms=250, tokens_per_s=20, answer_tokens=4, sleep=sleep))
    assert len(events) == 5
    assert sleep.calls == [0.25, 0.05, 0.05, 0.05]


async def test_a_continuation_waits_ttft_once() -> None:
    sleep = FakeSleep()
    request = ProviderRequest(model="m", messages=MESSAGES, continue_from=full_answer()[:10])
    await attempt(SimulatedProvider(ttft_ms=100, answer_tokens=None, sleep=sleep), request)
    assert sleep.calls.count(0.1) == 1 and set(sleep.calls) <= {0.1, 0}


async def test_without_latency_it_still_lets_the_loop_run_now_and_then() -> None:
    sleep = FakeSleep()
    events, _ = await attempt(SimulatedProvider(answer_tokens=20, sleep=sleep))
    assert len(events) == 21 and sleep.calls == [0, 0]

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticking = asyncio.ensure_future(ticker())
    await attempt(SimulatedProvider(answer_tokens=1_000))
    ticking.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ticking
    assert ticks >= 100


async def test_a_zero_latency_provider_answers_hundreds_of_requests_a_second() -> None:
    provider = SimulatedProvider()
    prompts = [(PromptMessage("user", f"question {i}"),) for i in range(500)]
    requests = [ProviderRequest(model="m", messages=prompt) for prompt in prompts]
    started = time.perf_counter()
    results = await asyncio.gather(*(attempt(provider, r) for r in requests))
    elapsed_s = time.perf_counter() - started
    assert all(error is None and isinstance(events[-1], Finish) for events, error in results)
    assert elapsed_s < 1.0  # about 0.07 s here; the benchmark wants over 1,000 a second


@pytest.mark.parametrize(
    "options",
    [
        {"ttft_ms": -1.0},
        {"tokens_per_s": -5.0},
        {"answer_tokens": -1},
        {"fail_after_tokens": -2},
        {"failure_rate": 1.5},
        {"failure": "meltdown"},
    ],
)
def test_impossible_settings_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SimulatedProvider(**options)  # type: ignore[arg-type]
