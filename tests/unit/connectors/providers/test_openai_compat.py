"""OpenAIProvider against a real HTTP server on 127.0.0.1 replaying OpenAI stream transcripts."""

from __future__ import annotations

import asyncio
import email.utils
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import orjson
import pytest

from connectors.providers.base import (
    Finish,
    PromptMessage,
    ProviderConnectError,
    ProviderError,
    ProviderEvent,
    ProviderRateLimitError,
    ProviderRequest,
    ProviderRequestError,
    ProviderServerError,
    ProviderTimeoutError,
    TextDelta,
    Timeouts,
    Usage,
)
from connectors.providers.openai_compat import OpenAIProvider
from connectors.providers.openai_wire import CONTINUE_INSTRUCTION
from tests.unit.connectors.providers.sse_server import (
    Reply,
    SSEServer,
    fixture_body,
    fixture_events,
)

pytestmark = pytest.mark.anyio

REQUEST = ProviderRequest(
    model="gpt-4o-mini",
    messages=(PromptMessage("system", "Be brief."), PromptMessage("user", "Say hello.")),
)
TIMEOUTS = Timeouts(connect_s=2.0, first_token_s=3.0, total_s=5.0)
USAGE_STREAM = fixture_events("chat_stream_usage.sse")


@asynccontextmanager
async def serving(*replies: Reply, **options: Any) -> AsyncIterator[tuple[SSEServer, OpenAIProvider]]:
    async with SSEServer(*replies) as server:
        provider = OpenAIProvider(base_url=server.base_url, **options)
        try:
            yield server, provider
        finally:
            await provider.aclose()


async def attempt(
    provider: OpenAIProvider, request: ProviderRequest = REQUEST, timeouts: Timeouts = TIMEOUTS
) -> tuple[list[ProviderEvent], ProviderError | None]:
    """Everything the attempt yielded, and the error it ended with (None when it finished)."""
    events: list[ProviderEvent] = []
    try:
        async for event in provider.stream(request, timeouts):
            events.append(event)
    except ProviderError as exc:
        return events, exc
    return events, None


def text_of(events: list[ProviderEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


def stream_reply(name: str, **options: Any) -> Reply:
    return Reply(events=fixture_events(name), **options)


async def test_a_stream_yields_its_text_then_one_finish_with_the_usage() -> None:
    async with serving(stream_reply("chat_stream_usage.sse")) as (_, provider):
        events, error = await attempt(provider)
    assert error is None
    assert [type(e) for e in events] == [TextDelta] * 9 + [Finish]
    assert text_of(events) == "Hello! How can I help you today?"
    assert events[-1] == Finish("stop", Usage(prompt_tokens=19, completion_tokens=9))


async def test_a_stream_without_usage_finishes_with_none_and_its_reason() -> None:
    async with serving(stream_reply("chat_stream_no_usage.sse")) as (_, provider):
        events, error = await attempt(provider)
    assert error is None
    assert text_of(events) == "Kafka keeps every event in order"
    assert events[-1] == Finish("length", None)


async def test_an_error_mid_stream_comes_after_the_text_before_it() -> None:
    async with serving(stream_reply("chat_stream_error_midway.sse")) as (_, provider):
        events, error = await attempt(provider)
    assert text_of(events) == "The answer is"
    assert not any(isinstance(e, Finish) for e in events)
    assert isinstance(error, ProviderServerError) and error.retryable
    assert "The server had an error while processing your request" in error.message


@pytest.mark.parametrize(
    ("complete", "says"), [(True, "stream ended early"), (False, "connection lost")]
)
async def test_a_stream_cut_short_is_a_server_error_after_its_text(complete: bool, says: str) -> None:
    reply = stream_reply("chat_stream_cut_short.sse", complete=complete)
    async with serving(reply) as (_, provider):
        events, error = await attempt(provider)
    assert text_of(events) == "Partitions are the unit of"
    assert isinstance(error, ProviderServerError) and error.code == "provider_error"
    assert says in error.message


async def test_malformed_json_in_a_data_line_is_a_server_error() -> None:
    events = fixture_events("chat_stream_usage.sse")[:2] + [b'data: {"choices": [\n\n']
    async with serving(Reply(events=events)) as (_, provider):
        got, error = await attempt(provider)
    assert text_of(got) == "Hello"
    assert isinstance(error, ProviderServerError) and "malformed JSON" in error.message


def http_date(after_s: float) -> str:
    when = datetime.now(timezone.utc) + timedelta(seconds=after_s)
    return email.utils.format_datetime(when, usegmt=True)


@pytest.mark.parametrize(
    ("headers", "low", "high"),
    [
        ({"Retry-After": "2"}, 2.0, 2.0),
        ({"Retry-After": "2", "retry-after-ms": "1500"}, 1.5, 1.5),
        ({"Retry-After": "http-date in 30 s"}, 27.0, 31.0),  # made when the test runs, not when collected
    ],
    ids=["seconds", "milliseconds", "http-date"],
)
async def test_429_is_a_rate_limit_with_the_servers_retry_after(
    headers: dict[str, str], low: float, high: float
) -> None:
    if headers["Retry-After"] == "http-date in 30 s":
        headers = {"Retry-After": http_date(30)}
    reply = Reply(status=429, headers=headers, body=fixture_body("error_429_rate_limit.json"))
    async with serving(reply) as (_, provider):
        events, error = await attempt(provider)
    assert events == []
    assert isinstance(error, ProviderRateLimitError) and error.retryable and error.status == 429
    assert error.retry_after_s is not None and low <= error.retry_after_s <= high
    assert "Rate limit reached for gpt-4o-mini" in error.message


async def test_429_without_retry_after_leaves_it_to_the_caller() -> None:
    async with serving(Reply(status=429, body=b"{}")) as (_, provider):
        _, error = await attempt(provider)
    assert isinstance(error, ProviderRateLimitError) and error.retry_after_s is None


async def test_500_is_a_retryable_server_error_with_the_servers_message() -> None:
    async with serving(Reply(status=500, body=fixture_body("error_500_server.json"))) as (_, provider):
        _, error = await attempt(provider)
    assert isinstance(error, ProviderServerError)
    assert error.status == 500 and error.retryable
    assert "The server had an error while processing your request. Sorry about that!" in error.message


@pytest.mark.parametrize(
    ("status", "body", "code", "says"),
    [
        (404, fixture_body("error_404_model_not_found.json"), "model_not_found", "`gpt-9-turbo` does"),
        (401, fixture_body("error_401_invalid_key.json"), "auth_error", "Incorrect API key provided"),
        (403, b'{"error": "forbidden for this key"}', "auth_error", "forbidden for this key"),
        (400, b'{"object": "error", "message": "max_tokens too large"}', "bad_request", "max_tokens too"),
        (422, b"<html>unprocessable</html>", "bad_request", "<html>unprocessable</html>"),
    ],
)
async def test_other_4xx_are_request_errors_that_no_retry_fixes(
    status: int, body: bytes, code: str, says: str
) -> None:
    async with serving(Reply(status=status, body=body)) as (_, provider):
        _, error = await attempt(provider)
    assert isinstance(error, ProviderRequestError)
    assert (error.status, error.code, error.retryable) == (status, code, False)
    assert says in error.message


async def test_a_long_error_message_is_shortened() -> None:
    body = orjson.dumps({"error": {"message": "overloaded " * 500}})
    async with serving(Reply(status=503, body=body)) as (_, provider):
        _, error = await attempt(provider)
    assert isinstance(error, ProviderServerError)
    assert "overloaded overloaded" in error.message and len(error.message) < 400


@pytest.mark.parametrize(
    "reply",
    [
        # the role chunk comes at once (it has no text), the first text a second later
        Reply(events=[*USAGE_STREAM[:1], 1.0, *USAGE_STREAM[1:]]),
        Reply(events=USAGE_STREAM, delay_s=1.0),  # the headers are late
    ],
    ids=["late-text", "late-headers"],
)
async def test_no_text_within_first_token_s_is_a_first_token_timeout(reply: Reply) -> None:
    timeouts = Timeouts(connect_s=1.0, first_token_s=0.2, total_s=5.0)
    async with serving(reply) as (_, provider):
        started = time.monotonic()
        events, error = await attempt(provider, timeouts=timeouts)
        elapsed_s = time.monotonic() - started
    assert events == []
    assert isinstance(error, ProviderTimeoutError) and error.phase == "first_token"
    assert error.code == "timeout_first_token" and error.retryable
    assert 0.2 <= elapsed_s < 0.8


async def test_a_stream_slower_than_total_s_is_a_total_timeout_after_its_text() -> None:
    events = fixture_events("chat_stream_usage.sse")
    slow: list[bytes | float] = [item for event in events for item in (event, 0.1)]
    async with serving(Reply(events=slow)) as (_, provider):
        timeouts = Timeouts(connect_s=1.0, first_token_s=0.3, total_s=0.45)
        got, error = await attempt(provider, timeouts=timeouts)
    assert text_of(got).startswith("Hello")
    assert isinstance(error, ProviderTimeoutError) and error.phase == "total"


async def test_a_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on once this socket is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = OpenAIProvider(base_url=f"http://127.0.0.1:{port}/v1")
    try:
        events, error = await attempt(provider)
    finally:
        await provider.aclose()
    assert events == []
    assert isinstance(error, ProviderConnectError)
    assert error.code == "connect_error" and error.retryable
    assert isinstance(error.__cause__, httpx.ConnectError)


@pytest.mark.parametrize("continuation", ["prefill", "instruct"])
async def test_the_request_says_what_openai_expects_and_continues_a_partial_answer(
    continuation: str,
) -> None:
    request = ProviderRequest(
        model="llama-3.1-8b",
        messages=REQUEST.messages,
        max_tokens=64,
        temperature=0.2,
        continue_from="Hello! How",
    )
    async with serving(stream_reply("chat_stream_usage.sse")) as (server, _):
        provider = OpenAIProvider(
            base_url=server.base_url + "/",  # a trailing slash is tolerated
            api_key="sk-test",
            kind="vllm",
            continuation=continuation,  # type: ignore[arg-type]
            extra_headers={"X-Tenant": "acme"},
        )
        try:
            events, error = await attempt(provider, request)
        finally:
            await provider.aclose()
    assert error is None and provider.kind == "vllm"
    assert text_of(events) == "Hello! How can I help you today?"  # what the server sent, untrimmed
    [received] = server.requests
    assert (received.method, received.path) == ("POST", "/v1/chat/completions")
    assert received.headers["authorization"] == "Bearer sk-test"
    assert received.headers["content-type"] == "application/json"
    assert received.headers["x-tenant"] == "acme"
    continued = [{"role": "assistant", "content": "Hello! How"}]
    if continuation == "instruct":
        continued.append({"role": "user", "content": CONTINUE_INSTRUCTION})
    assert received.json() == {
        "model": "llama-3.1-8b",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello."},
            *continued,
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 64,
        "temperature": 0.2,
    }


async def test_a_plain_request_has_no_key_no_limits_and_no_continuation() -> None:
    async with serving(stream_reply("chat_stream_usage.sse")) as (server, provider):
        await attempt(provider)
    [received] = server.requests
    assert "authorization" not in received.headers
    body = received.json()
    assert body["messages"][-1] == {"role": "user", "content": "Say hello."}
    assert "max_tokens" not in body and "temperature" not in body


async def test_finished_streams_share_one_connection() -> None:
    replies = [stream_reply("chat_stream_usage.sse"), stream_reply("chat_stream_no_usage.sse")]
    async with serving(*replies) as (server, provider):
        first, _ = await attempt(provider)
        second, _ = await attempt(provider)
    assert isinstance(first[-1], Finish) and isinstance(second[-1], Finish)
    assert server.connections == 1


@pytest.mark.parametrize("how", ["aclose", "cancel"])
async def test_stopping_mid_stream_closes_the_connection(how: str) -> None:
    reply = Reply(events=fixture_events("chat_stream_usage.sse")[:3], hold_open=True)
    async with serving(reply) as (server, provider):
        stream = provider.stream(REQUEST, TIMEOUTS)
        first = await anext(stream)
        assert first == TextDelta("Hello")
        if how == "aclose":
            await stream.aclose()  # type: ignore[attr-defined]
        else:
            assert await anext(stream) == TextDelta("!")
            reading = asyncio.ensure_future(anext(stream))  # waits for text that never comes
            await asyncio.sleep(0.05)
            reading.cancel()
            with pytest.raises(asyncio.CancelledError):
                await reading
        await asyncio.wait_for(server.client_left.wait(), 1.0)
    assert server.client_left.is_set()


async def test_the_transport_is_injectable() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            content=fixture_body("chat_stream_usage.sse"),
        )

    provider = OpenAIProvider(
        base_url="https://api.example.test/v1", api_key="sk-mock", transport=httpx.MockTransport(handler)
    )
    try:
        events, error = await attempt(provider)
    finally:
        await provider.aclose()
    assert error is None and text_of(events) == "Hello! How can I help you today?"
    assert str(seen[0].url) == "https://api.example.test/v1/chat/completions"
    assert seen[0].headers["authorization"] == "Bearer sk-mock"


@pytest.mark.parametrize("base_url", ["api.openai.com/v1", "ftp://host/v1", "http:///v1"])
def test_a_base_url_that_is_not_http_is_refused(base_url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        OpenAIProvider(base_url=base_url)
