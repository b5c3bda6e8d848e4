"""Answers in OpenAI's shapes: ``chat.completion``, ``chat.completion.chunk``, usage, SSE framing."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway import openai_format as fmt

CID, CREATED, MODEL = "chatcmpl-abc", 1_790_000_000, "fast"


@pytest.mark.parametrize(
    ("request_id", "expected"),
    [
        ("0f8fad5b-d9cb-469f-a165-70867728950e", "chatcmpl-0f8fad5bd9cb469fa16570867728950e"),
        ("abc", "chatcmpl-abc"),
    ],
)
def test_completion_id_is_the_request_id_without_dashes(request_id: str, expected: str) -> None:
    assert fmt.completion_id(request_id) == expected


@pytest.mark.parametrize("include_usage", [False, True])
def test_a_chunk_has_openais_shape_and_a_usage_key_only_when_asked(include_usage: bool) -> None:
    body = fmt.chunk(CID, CREATED, MODEL, {"content": "Hel"}, include_usage=include_usage)
    expected: dict[str, Any] = {
        "id": CID, "object": "chat.completion.chunk", "created": CREATED, "model": MODEL, "system_fingerprint": None,
        "choices": [{"index": 0, "delta": {"content": "Hel"}, "logprobs": None, "finish_reason": None}],
    }  # fmt: skip
    if include_usage:
        expected["usage"] = None
    assert body == expected


def test_the_finish_chunk_has_an_empty_delta_and_the_reason() -> None:
    body = fmt.chunk(CID, CREATED, MODEL, {}, finish_reason="length")
    assert body["choices"] == [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "length"}]
    assert "usage" not in body


def test_the_usage_chunk_has_no_choices_and_the_counts() -> None:
    counts = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    assert fmt.usage_chunk(CID, CREATED, MODEL, counts) == {
        "id": CID, "object": "chat.completion.chunk", "created": CREATED, "model": MODEL, "system_fingerprint": None,
        "choices": [], "usage": counts,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ({"prompt_tokens": 5, "completion_tokens": 2}, {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}),
        ({"prompt_tokens": 0, "completion_tokens": 0}, {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}),
        ({"prompt_tokens": 5, "completion_tokens": None}, None),
        ({"prompt_tokens": None, "completion_tokens": 2}, None),
        ({}, None),
    ],
)
def test_usage_needs_both_counts(reply: dict[str, Any], expected: dict[str, int] | None) -> None:
    assert fmt.usage(reply) == expected


def test_a_whole_completion_from_its_completed_event() -> None:
    reply = {"kind": "COMPLETED", "content": "Hello", "finish_reason": "length", "prompt_tokens": 5,
             "completion_tokens": 2}  # fmt: skip
    assert fmt.completion(CID, CREATED, MODEL, reply) == {
        "id": CID, "object": "chat.completion", "created": CREATED, "model": MODEL, "system_fingerprint": None,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello", "refusal": None},
                     "logprobs": None, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }  # fmt: skip


def test_a_completion_without_content_reason_or_counts_is_empty_stop_and_no_usage() -> None:
    body = fmt.completion(CID, CREATED, MODEL, {"kind": "COMPLETED", "content": None, "finish_reason": None})
    assert body["choices"][0]["message"]["content"] == ""
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] is None


def test_sse_frames_one_json_event_and_done_ends_the_stream() -> None:
    event = fmt.sse({"a": "é\n"})
    assert event.startswith(b"data: ") and event.endswith(b"\n\n") and event.count(b"\n") == 2
    assert orjson.loads(event.removeprefix(b"data: ")) == {"a": "é\n"}
    assert fmt.DONE == b"data: [DONE]\n\n"
