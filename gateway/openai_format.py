"""Answers as OpenAI's chat completions API writes them: whole responses and SSE chunks.

Pure functions from the ``ai.responses.v1`` events the dispatch job sends to the JSON objects
OpenAI clients parse (``chat.completion`` and ``chat.completion.chunk``).
"""

from __future__ import annotations

from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"


def completion_id(request_id: str) -> str:
    return "chatcmpl-" + request_id.replace("-", "")


def usage(reply: dict[str, Any]) -> dict[str, int] | None:
    """A COMPLETED event's token counts, as OpenAI's ``usage``."""
    prompt, completion = reply.get("prompt_tokens"), reply.get("completion_tokens")
    if prompt is None or completion is None:
        return None
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def chunk(cid: str, created: int, model: str, delta: dict[str, Any], *, finish_reason: str | None = None,
          include_usage: bool = False) -> dict[str, Any]:  # fmt: skip
    body: dict[str, Any] = {
        "id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }  # fmt: skip
    if include_usage:
        body["usage"] = None
    return body


def usage_chunk(cid: str, created: int, model: str, counts: dict[str, int] | None) -> dict[str, Any]:
    """The last chunk with ``stream_options.include_usage``: no choices, the request's usage."""
    return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": None, "choices": [], "usage": counts}  # fmt: skip


def completion(cid: str, created: int, model: str, reply: dict[str, Any]) -> dict[str, Any]:
    """The whole answer (``stream: false``) from its COMPLETED event."""
    return {
        "id": cid, "object": "chat.completion", "created": created, "model": model, "system_fingerprint": None,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.get("content") or "", "refusal": None},
                     "logprobs": None, "finish_reason": reply.get("finish_reason") or "stop"}],
        "usage": usage(reply),
    }  # fmt: skip


def sse(body: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(body) + b"\n\n"
