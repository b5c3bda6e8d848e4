"""OpenAI's wire format as pure functions: chunks, Retry-After, error bodies."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from connectors.providers.base import ProviderServerError, Usage
from connectors.providers.openai_wire import (
    Chunk,
    error_detail,
    error_for_status,
    parse_chunk,
    retry_after_s,
)

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("data", "chunk"),
    [
        ('{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}', Chunk("Hi")),
        ('{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}', Chunk()),
        ('{"choices":[{"index":0,"delta":{"content":null},"finish_reason":"stop"}]}', Chunk("", "stop")),
        ('{"choices":[{"index":0,"delta":{"content":"."},"finish_reason":"length"}]}', Chunk(".", "length")),
        ('{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7}}', Chunk(usage=Usage(5, 7))),
        ('{"choices":null,"usage":{"prompt_tokens":5,"completion_tokens":7}}', Chunk(usage=Usage(5, 7))),
        ('{"usage":{"prompt_tokens":"5"}}', Chunk()),  # unusable counts are no usage
        ('{"id":"x","object":"chat.completion.chunk"}', Chunk()),
    ],
)
def test_a_chunk_says_its_text_finish_reason_and_usage(data: str, chunk: Chunk) -> None:
    assert parse_chunk(data) == chunk


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ('{"error": {"message": "overloaded", "type": "server_error"}}', "overloaded"),
        ('{"error": "model crashed"}', "model crashed"),
        ("{nope", "malformed JSON"),
        ("[1, 2]", "unexpected event"),
    ],
)
def test_an_error_object_or_garbage_in_the_stream_is_a_server_error(data: str, says: str) -> None:
    with pytest.raises(ProviderServerError, match=says):
        parse_chunk(data)


@pytest.mark.parametrize(
    ("retry_after", "retry_after_ms", "seconds"),
    [
        ("2", None, 2.0),
        (" 0.5 ", None, 0.5),
        ("-3", None, 0.0),
        ("2", "250", 0.25),
        (None, "1500", 1.5),
        ("Tue, 24 Nov 2026 12:00:30 GMT", None, 30.0),
        ("Tue, 24 Nov 2026 11:59:00 GMT", None, 0.0),  # already past
        ("soon", None, None),
        ("nan", None, None),
        (None, None, None),
        ("", "garbage", None),
    ],
)
def test_retry_after_is_seconds_or_an_http_date_or_milliseconds(
    retry_after: str | None, retry_after_ms: str | None, seconds: float | None
) -> None:
    assert retry_after_s(retry_after, retry_after_ms, NOW) == seconds


@pytest.mark.parametrize(
    ("status", "kind", "code", "retryable"),
    [
        (429, "ProviderRateLimitError", "rate_limited", True),
        (500, "ProviderServerError", "provider_error", True),
        (502, "ProviderServerError", "provider_error", True),
        (404, "ProviderRequestError", "model_not_found", False),
        (401, "ProviderRequestError", "auth_error", False),
        (403, "ProviderRequestError", "auth_error", False),
        (400, "ProviderRequestError", "bad_request", False),
        (307, "ProviderRequestError", "bad_request", False),  # redirects are not followed
    ],
)
def test_a_status_maps_to_one_error(status: int, kind: str, code: str, retryable: bool) -> None:
    error = error_for_status(status, {}, b"{}", NOW)
    got = (type(error).__name__, error.code, error.retryable, error.status)
    assert got == (kind, code, retryable, status)


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        ({"error": {"message": "bad  key\n here"}}, "bad key here"),
        ({"error": "not found"}, "not found"),
        ({"message": "too long", "object": "error"}, "too long"),
        ({"detail": "x"}, '{"detail":"x"}'),
        ("plain text", "plain text"),
        ("", "(no message)"),
        ("word " * 100, "word " * 59 + "word…"),  # 300 characters
    ],
)
def test_the_error_detail_is_the_servers_message_on_one_short_line(payload: object, detail: str) -> None:
    assert error_detail(payload) == detail


def test_vllm_prefill_asks_vllm_to_continue_the_last_message() -> None:
    from connectors.providers.base import PromptMessage, ProviderRequest
    from connectors.providers.openai_wire import chat_body

    request = ProviderRequest("m", (PromptMessage("user", "hi"),), continue_from="Hello the")
    body = chat_body(request, "vllm-prefill")
    assert body["messages"][-1] == {"role": "assistant", "content": "Hello the"}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert "continue_final_message" not in chat_body(request, "prefill")
    fresh = ProviderRequest("m", (PromptMessage("user", "hi"),))
    assert "continue_final_message" not in chat_body(fresh, "vllm-prefill")  # a first attempt is a new turn
