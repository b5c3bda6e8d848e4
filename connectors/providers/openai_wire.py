"""OpenAI's chat completions wire format, as pure functions: the request body, what one stream
chunk says, and what an error response means. No clients, no clock (``now`` is an argument).
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson

from connectors.providers.base import (
    Continuation,
    ProviderError,
    ProviderRateLimitError,
    ProviderRequest,
    ProviderRequestError,
    ProviderServerError,
    Usage,
)

CONTINUE_INSTRUCTION = (
    "Your previous answer was cut off. Continue it exactly where it stops, without repeating "
    "any of it and without any preamble: reply with the rest of the answer only."
)
MESSAGE_CHARS = 300


@dataclass(frozen=True)
class Chunk:
    """What one ``chat.completion.chunk`` says; empty fields when it says nothing of them."""

    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None


def chat_body(request: ProviderRequest, continuation: Continuation) -> dict[str, Any]:
    """The JSON body of a streaming chat completion, with the continuation messages if any."""
    messages = [{"role": m.role, "content": m.content} for m in request.messages]
    if request.continue_from:
        messages.append({"role": "assistant", "content": request.continue_from})
        if continuation == "instruct":
            messages.append({"role": "user", "content": CONTINUE_INSTRUCTION})
    body: dict[str, Any] = {
        "model": request.model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.continue_from and continuation == "vllm-prefill":  # vLLM continues a prefill only if told
        body.update(continue_final_message=True, add_generation_prompt=False)
    return body


def parse_chunk(data: str, where: str = "provider") -> Chunk:
    """One ``data:`` payload; an error object or malformed JSON is a :class:`ProviderServerError`."""
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        message = f"{where}: malformed JSON in the stream: {shorten(data, 120)}"
        raise ProviderServerError(message) from exc
    if not isinstance(payload, dict):
        raise ProviderServerError(f"{where}: unexpected event in the stream: {shorten(data, 120)}")
    if payload.get("error") is not None:
        raise ProviderServerError(f"{where}: error mid-stream: {error_detail(payload)}")
    text, reason = "", None
    choices = payload.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        delta = choices[0].get("delta")
        content = delta.get("content") if isinstance(delta, dict) else None
        text = content if isinstance(content, str) else ""
        finish = choices[0].get("finish_reason")
        reason = finish if isinstance(finish, str) and finish else None
    return Chunk(text, reason, _usage(payload.get("usage")))


def _usage(value: object) -> Usage | None:
    if not isinstance(value, dict):
        return None
    prompt, completion = value.get("prompt_tokens"), value.get("completion_tokens")
    if isinstance(prompt, int) and isinstance(completion, int):
        return Usage(prompt_tokens=prompt, completion_tokens=completion)
    return None


def error_for_status(
    status: int, headers: Mapping[str, str], body: bytes, now: datetime, where: str = "provider"
) -> ProviderError:
    """The error a non-2xx response means. ``headers`` must look names up case-insensitively."""
    detail = error_detail(_json_or_text(body))
    if status == 429:
        retry = retry_after_s(headers.get("retry-after"), headers.get("retry-after-ms"), now)
        return ProviderRateLimitError(f"{where}: rate limited (HTTP 429): {detail}", retry_after_s=retry)
    if status >= 500:
        return ProviderServerError(f"{where}: HTTP {status}: {detail}", status=status)
    code = {404: "model_not_found", 401: "auth_error", 403: "auth_error"}.get(status, "bad_request")
    return ProviderRequestError(f"{where}: HTTP {status}: {detail}", status=status, code=code)


def retry_after_s(retry_after: str | None, retry_after_ms: str | None, now: datetime) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` (preferred: finer) or ``Retry-After`` (seconds or
    an HTTP date, taken relative to ``now``); None when absent or unreadable; never negative."""
    if retry_after_ms:
        ms = _number(retry_after_ms)
        if ms is not None:
            return max(0.0, ms / 1000)
    if not retry_after:
        return None
    seconds = _number(retry_after)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(retry_after.strip())
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now).total_seconds())


def _number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def error_detail(payload: object) -> str:
    """The server's own message: OpenAI's ``{"error": {"message"}}``, Ollama's ``{"error": "..."}``,
    older vLLM's top-level ``message``; else the payload itself, shortened."""
    message: object = payload
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            message = error["message"]
        elif isinstance(error, str):
            message = error
        elif isinstance(payload.get("message"), str):
            message = payload["message"]
    text = message if isinstance(message, str) else orjson.dumps(message).decode()
    return shorten(text, MESSAGE_CHARS) or "(no message)"


def _json_or_text(body: bytes) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", errors="replace")


def shorten(text: str, limit: int) -> str:
    """One line, at most ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
