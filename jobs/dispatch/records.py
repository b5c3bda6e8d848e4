"""The dispatch job's Avro records: a chat action in, ``ai.requests.v1`` and ``ai.responses.v1`` out.

Pure: the decoded ``MESSAGE_SENT`` (with its ``completion``) becomes a :class:`DispatchRequest`,
and each engine event becomes the record it is published as. Every record of one request carries
its ``request_id`` and ``requested_at`` (the message's time), so the stores can fold a request's
events into one row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from connectors.providers.base import PromptMessage
from jobs.dispatch.events import ChunkBatch, Completed, Dispatched, DispatchRequest, Failed

CLIENT = "chatstream-dispatch"


@dataclass(frozen=True)
class Asked:
    """A request as read from Kafka: the engine's view plus what the records repeat."""

    request: DispatchRequest
    action: dict[str, Any]  # the decoded chat action
    stream: bool
    reply_partition: int
    requested_at_ms: int

    @property
    def answer_message_id(self) -> str:
        """The assistant message's id, derived from the request so a retry names the same one."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"chatstream:answer:{self.request.request_id}"))


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _ms(value: Any) -> int:
    """fastavro gives timestamp-millis as aware datetimes; exact (a float's product is not)."""
    return (value - EPOCH) // timedelta(milliseconds=1) if isinstance(value, datetime) else int(value)


def asked(action: dict[str, Any]) -> Asked | None:
    """The request a chat action carries, or None (not a MESSAGE_SENT with a ``completion``)."""
    completion = action.get("completion")
    if action.get("action") != "MESSAGE_SENT" or not completion:
        return None
    messages = tuple(PromptMessage(m["role"].lower(), m["content"]) for m in completion["messages"])
    requested_at = _ms(action["occurred_at"])
    request = DispatchRequest(
        request_id=str(completion["request_id"]),
        tenant_id=action["tenant_id"],
        user_id=action["user_id"],
        alias=(action.get("message_sent") or {}).get("model") or "",
        messages=messages,
        max_tokens=completion.get("max_tokens"),
        temperature=completion.get("temperature"),
        received_at_ms=requested_at,
        deadline_at_ms=_ms(completion["deadline_at"]),
    )
    return Asked(request, action, bool(completion.get("stream", True)), int(completion["reply_partition"]),
                 requested_at)  # fmt: skip


def _common(asked: Asked, at_ms: int) -> dict[str, Any]:
    action = asked.action
    return {
        "event_id": str(uuid.uuid4()),
        "occurred_at": at_ms,
        "tenant_id": action["tenant_id"],
        "user_id": action["user_id"],
        "conversation_id": action.get("conversation_id"),
        "session_id": action.get("session_id"),
        "trace_id": action["trace_id"],
        "client": CLIENT,
        "request_id": asked.request.request_id,
        "requested_at": asked.requested_at_ms,
    }


def request_record(asked: Asked, event: Dispatched, prompt_tokens_estimate: int | None) -> dict[str, Any]:
    """``ai.requests.v1``: one attempt, the deployment chosen and why."""
    request = asked.request
    return {
        **_common(asked, event.at_ms),
        "message_id": (asked.action.get("message_sent") or {}).get("message_id"),
        "regenerates_message_id": None,
        "provider": event.provider_kind,
        "model": event.provider_model,
        "stream": asked.stream,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "messages": [{"role": m.role.upper(), "content": m.content} for m in request.messages],
        "prompt_tokens_estimate": prompt_tokens_estimate,
        "attempt": event.attempt,
        "deadline_at": request.deadline_at_ms,
        "deployment": event.deployment,
        "reason": event.reason,
    }


def _response(asked: Asked, at_ms: int, kind: str, provider: str, model: str, sequence: int) -> dict[str, Any]:
    return {
        **_common(asked, at_ms),
        "message_id": asked.answer_message_id,
        "kind": kind,
        "provider": provider,
        "model": model,
        "sequence": sequence,
        "delta": None, "content": None, "finish_reason": None, "prompt_tokens": None, "completion_tokens": None,
        "total_tokens": None, "cost_usd": None, "latency_ms": None, "time_to_first_token_ms": None,
        "error_code": None, "error_message": None, "retryable": None, "retry_after_s": None, "tokens_estimated": False,
        "fallback_used": False, "attempts": 1,
    }  # fmt: skip


def _by(attempt: Dispatched | None) -> tuple[str, str]:
    """The provider and model of the attempt under way ("none" before the first)."""
    return (attempt.provider_kind, attempt.provider_model) if attempt else ("none", "none")


def chunk_record(asked: Asked, event: ChunkBatch, attempt: Dispatched | None) -> dict[str, Any]:
    record = _response(asked, event.at_ms, "CHUNK", *_by(attempt), event.sequence)
    record["delta"] = event.text
    return record


def completed_record(asked: Asked, event: Completed) -> dict[str, Any]:
    record = _response(asked, event.at_ms, "COMPLETED", event.provider_kind, event.provider_model, event.chunks)
    record.update(
        content=event.content,
        finish_reason=event.finish_reason,
        prompt_tokens=event.prompt_tokens,
        completion_tokens=event.completion_tokens,
        total_tokens=event.prompt_tokens + event.completion_tokens,
        cost_usd=event.cost_usd,
        latency_ms=event.latency_ms,
        time_to_first_token_ms=event.ttft_ms,
        tokens_estimated=event.tokens_estimated,
        fallback_used=event.fallback_used,
        attempts=event.attempts,
    )
    return record


def failed_record(asked: Asked, event: Failed, attempt: Dispatched | None) -> dict[str, Any]:
    record = _response(asked, event.at_ms, "FAILED", *_by(attempt), event.chunks)
    record.update(
        finish_reason="error",
        latency_ms=event.latency_ms,
        time_to_first_token_ms=event.ttft_ms,
        error_code=event.error_code,
        error_message=event.message[:2000],
        retryable=event.retryable,
        retry_after_s=event.retry_after_s,
        fallback_used=event.fallback_used,
        attempts=event.attempts,
    )
    return record


def cancelled_record(asked: Asked, at_ms: int, chunks: int, attempt: Dispatched | None) -> dict[str, Any]:
    """The client stopped the answer (GENERATION_STOPPED): FAILED, ``cancelled``, nothing billed."""
    record = _response(asked, at_ms, "FAILED", *_by(attempt), chunks)
    record.update(finish_reason="cancelled", error_code="cancelled", error_message="the client stopped the answer",
                  retryable=False, latency_ms=at_ms - asked.requested_at_ms,
                  attempts=attempt.attempt if attempt else 0)  # fmt: skip
    return record
