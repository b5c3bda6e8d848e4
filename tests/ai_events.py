"""``ai.requests.v1`` and ``ai.responses.v1`` records as the dispatch job writes them, for the sinks' tests.

Every event of one request carries its ``request_id`` and ``requested_at``; an attempt is an
``AiRequest``; its answer is CHUNK events, then one COMPLETED or FAILED ``AiResponse``.
"""

from __future__ import annotations

import uuid
from typing import Any

AT_MS = 1_790_000_000_000  # 2026-09-21T14:13:20Z

TEXTS = ["plain", "tab\there", "new\nline", "back\\slash", "quote ' and \"", "unicode é ✓ 😀", ""]


def common(request_id: str, requested_at: int | None, at_ms: int, tenant: str = "acme", **fields: Any) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "occurred_at": at_ms, "tenant_id": tenant, "user_id": "alice",
            "conversation_id": None, "session_id": None, "trace_id": "a" * 32, "client": None,
            "request_id": request_id, "requested_at": requested_at, "message_id": None, **fields}  # fmt: skip


def attempt(request_id: str, requested_at: int | None, at_ms: int, **fields: Any) -> dict[str, Any]:
    """An ``AiRequest``: the first try on the simulated provider unless ``fields`` say otherwise."""
    return common(request_id, requested_at, at_ms, **{
        "regenerates_message_id": None, "provider": "simulated", "model": "sim-1", "stream": True,
        "max_tokens": None, "temperature": None, "messages": [], "prompt_tokens_estimate": None,
        "attempt": 1, "deadline_at": None, "deployment": None, "reason": None, **fields})  # fmt: skip


def response(request_id: str, requested_at: int | None, at_ms: int, kind: str, **fields: Any) -> dict[str, Any]:
    """An ``AiResponse`` of ``kind``, optional fields null unless ``fields`` set them."""
    return common(request_id, requested_at, at_ms, **{
        "kind": kind, "provider": "simulated", "model": "sim-1", "sequence": 0, "delta": None,
        "content": None, "finish_reason": None, "prompt_tokens": None, "completion_tokens": None,
        "total_tokens": None, "cost_usd": None, "latency_ms": None, "time_to_first_token_ms": None,
        "error_code": None, "error_message": None, "retryable": None, "tokens_estimated": False,
        "fallback_used": False, "attempts": 1, **fields})  # fmt: skip


def chunk(request_id: str, requested_at: int | None, at_ms: int, sequence: int, delta: str, **fields: Any) -> dict[str, Any]:
    return response(request_id, requested_at, at_ms, "CHUNK", sequence=sequence, delta=delta, **fields)


def completed(request_id: str, requested_at: int | None, at_ms: int, content: str | None, **fields: Any) -> dict[str, Any]:
    """A COMPLETED with the provider's usage and cost, unless ``fields`` say otherwise."""
    usage = {"finish_reason": "stop", "prompt_tokens": 12, "completion_tokens": 34, "total_tokens": 46,
             "cost_usd": 0.000123, "latency_ms": 1_234, "time_to_first_token_ms": 56, "sequence": 3}  # fmt: skip
    return response(request_id, requested_at, at_ms, "COMPLETED", content=content, **{**usage, **fields})


def failed(request_id: str, requested_at: int | None, at_ms: int, error_code: str, **fields: Any) -> dict[str, Any]:
    return response(request_id, requested_at, at_ms, "FAILED", **{
        "error_code": error_code, "error_message": f"{error_code}: the provider gave up", "retryable": True,
        "latency_ms": 30_000, "attempts": 2, "fallback_used": True, **fields})  # fmt: skip


def varied_responses() -> list[dict[str, Any]]:
    """One request per record (nothing collapses): every kind, usage, errors, nulls, awkward text."""
    records = [
        chunk(str(uuid.uuid4()), AT_MS, AT_MS + 1, 0, "Hel"),
        chunk(str(uuid.uuid4()), AT_MS, AT_MS + 2, 5, TEXTS[5], client="web", conversation_id=TEXTS[1]),
        completed(str(uuid.uuid4()), AT_MS, AT_MS + 3, "unicode é ✓ 😀 and more", tokens_estimated=True,
                  attempts=2, fallback_used=True, message_id="m-1", session_id="s-1"),  # fmt: skip
        completed(str(uuid.uuid4()), AT_MS - 86_400_000, AT_MS + 4, None, finish_reason=None, prompt_tokens=None,
                  completion_tokens=None, total_tokens=None, cost_usd=None, latency_ms=None,
                  time_to_first_token_ms=None, sequence=0),  # fmt: skip
        completed(str(uuid.uuid4()), AT_MS, AT_MS + 5, "", cost_usd=0.1, finish_reason="length"),
        failed(str(uuid.uuid4()), AT_MS, AT_MS + 6, "timeout", error_message=TEXTS[4] + TEXTS[2], sequence=2),
        failed(str(uuid.uuid4()), AT_MS, AT_MS + 7, "rate_limited", retryable=False, error_message=None,
               latency_ms=None, conversation_id=TEXTS[3], cost_usd=1e-9),  # fmt: skip
    ]
    return records


def varied_attempts() -> list[dict[str, Any]]:
    """Attempts: a full one, a bare one (every optional null, no messages), a fallback."""
    messages = [{"role": "SYSTEM", "content": "be brief"}, {"role": "USER", "content": TEXTS[5]},
                {"role": "ASSISTANT", "content": TEXTS[1]}]  # fmt: skip
    request = str(uuid.uuid4())
    return [
        attempt(request, AT_MS, AT_MS + 1, messages=messages, max_tokens=256, temperature=0.7,
                prompt_tokens_estimate=42, deadline_at=AT_MS + 60_000, deployment="sim-primary",
                reason="weighted pick", client="librechat/0.7.5", conversation_id="c-1", message_id="m-1"),  # fmt: skip
        attempt(str(uuid.uuid4()), None, AT_MS + 2, stream=False),
        attempt(request, AT_MS, AT_MS + 3, attempt=2, messages=messages[:1], temperature=0.1,
                deployment="sim-fallback", reason=f"fallback from sim-primary: {TEXTS[4]}"),  # fmt: skip
    ]
