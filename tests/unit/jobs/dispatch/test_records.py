"""The dispatch job's records: a decoded chat action in, ``ai.requests.v1`` and ``ai.responses.v1`` out.

Chat actions are built as the gateway writes them and decoded as the job reads them (Confluent
framing, the real ``chat.actions.v1`` contract); every record built is encoded with its topic's
contract, strictly, and read back.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
import pytest

from chatstream.avro.catalog import load_catalog
from chatstream.avro.serde import ConfluentDecoder, ConfluentEncoder
from connectors.providers.base import PromptMessage
from jobs.dispatch.events import ChunkBatch, Completed, Dispatched, DispatchRequest, Failed
from jobs.dispatch.limits import TenantUsage
from jobs.dispatch.records import (
    CLIENT,
    Asked,
    asked,
    cancelled_record,
    chunk_record,
    completed_record,
    failed_record,
    request_record,
)

CATALOG = load_catalog()
PARSED = {topic: fastavro.parse_schema(contract.schema) for topic, contract in CATALOG.items()}
ACTIONS_ID = 7
ENCODER = ConfluentEncoder(CATALOG["chat.actions.v1"].schema, ACTIONS_ID)
DECODER = ConfluentDecoder({ACTIONS_ID: CATALOG["chat.actions.v1"].schema}.__getitem__)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

NOW_MS = 1_790_000_000_123
REQUEST_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
PROMPT = [{"role": "SYSTEM", "content": "be brief"}, {"role": "USER", "content": "hi"},
          {"role": "ASSISTANT", "content": "hello"}, {"role": "TOOL", "content": "42"},
          {"role": "USER", "content": "and é ✓?"}]  # fmt: skip


def chat_action(action: str = "MESSAGE_SENT", *, completion: dict[str, Any] | None = None, with_completion: bool = True,
                at_ms: int = NOW_MS, **fields: Any) -> dict[str, Any]:  # fmt: skip
    """A chat action as the gateway's chat API writes it, read back as the job reads it."""
    record: dict[str, Any] = {
        "event_id": str(uuid.uuid4()), "occurred_at": at_ms, "tenant_id": "acme", "user_id": "alice",
        "conversation_id": "conv-1", "session_id": "sess-1", "trace_id": "t" * 32, "client": "ua/1",
        "action": action, **fields,
    }  # fmt: skip
    if action == "MESSAGE_SENT":
        record["message_sent"] = ("io.chatstream.events.MessageSent", {
            "message_id": "m-user", "text_length": 8, "content": "and é ✓?", "model": "fast", "attachment_ids": []})
        if with_completion:
            record["completion"] = ("io.chatstream.events.CompletionRequest", {
                "request_id": REQUEST_ID, "messages": PROMPT, "stream": True, "max_tokens": 64, "temperature": 0.5,
                "reply_partition": 4, "reply_to": "gw-0", "deadline_at": at_ms + 120_000, **(completion or {})})
    elif action == "GENERATION_STOPPED":
        record["generation_stopped"] = ("io.chatstream.events.GenerationStopped", {
            "message_id": None, "request_id": REQUEST_ID, "tokens_generated": None})
    return DECODER.decode(ENCODER.encode(record))


def plain(value: Any) -> Any:
    """A value as a record builder writes it: epoch ms, uuid strings, union tuples unwrapped."""
    if isinstance(value, datetime):
        return (value - EPOCH) // timedelta(milliseconds=1)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        return plain(value[1])
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def round_trip(topic: str, record: dict[str, Any]) -> dict[str, Any]:
    """Encode with the topic's contract (no field it lacks; a field left out only if it has a
    default) and decode; the decoded record must equal the one built."""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, PARSED[topic], record, strict_allow_default=True)
    buffer.seek(0)
    decoded = plain(fastavro.schemaless_reader(buffer, PARSED[topic], None))
    assert {name: decoded[name] for name in record} == plain(record)
    return decoded  # type: ignore[no-any-return]


# --- A chat action in -------------------------------------------------------------------------


def test_a_message_sent_with_a_completion_is_a_request() -> None:
    request = asked(chat_action())
    assert request is not None
    assert request.request == DispatchRequest(
        request_id=REQUEST_ID, tenant_id="acme", user_id="alice", alias="fast",
        messages=(PromptMessage("system", "be brief"), PromptMessage("user", "hi"), PromptMessage("assistant", "hello"),
                  PromptMessage("tool", "42"), PromptMessage("user", "and é ✓?")),
        max_tokens=64, temperature=0.5, received_at_ms=NOW_MS, deadline_at_ms=NOW_MS + 120_000,
    )  # fmt: skip
    assert (request.stream, request.reply_partition, request.requested_at_ms) == (True, 4, NOW_MS)
    assert request.action["conversation_id"] == "conv-1"


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ({"stream": False}, {"stream": False}),
        ({"max_tokens": None, "temperature": None}, {"max_tokens": None, "temperature": None}),
        ({"reply_partition": 0}, {"reply_partition": 0}),
        ({"messages": []}, {"messages": ()}),
    ],
)
def test_a_requests_options_as_sent(completion: dict[str, Any], expected: dict[str, Any]) -> None:
    request = asked(chat_action(completion=completion))
    assert request is not None
    seen = {"stream": request.stream, "reply_partition": request.reply_partition,
            "max_tokens": request.request.max_tokens, "temperature": request.request.temperature,
            "messages": request.request.messages}  # fmt: skip
    assert {name: seen[name] for name in expected} == expected


@pytest.mark.parametrize(
    "at_ms",
    [
        pytest.param(NOW_MS, id="2026"),
        pytest.param(1_700_000_000_001, id="2023"),
        pytest.param(2_147_483_648_003, id="2038-after-2**31-s"),
    ],
)  # fmt: skip
def test_the_requests_times_are_the_actions_to_the_millisecond(at_ms: int) -> None:
    request = asked(chat_action(at_ms=at_ms))
    assert request is not None
    assert (request.requested_at_ms, request.request.received_at_ms) == (at_ms, at_ms)
    assert request.request.deadline_at_ms == at_ms + 120_000


@pytest.mark.parametrize(
    "action",
    [
        pytest.param(chat_action(with_completion=False), id="message-sent-without-completion"),
        pytest.param(chat_action("GENERATION_STOPPED"), id="generation-stopped"),
        pytest.param(chat_action("CONVERSATION_CREATED"), id="conversation-created"),
        pytest.param(chat_action("SESSION_STARTED"), id="session-started"),
    ],
)
def test_other_actions_are_no_request(action: dict[str, Any]) -> None:
    assert asked(action) is None


# --- Records out ------------------------------------------------------------------------------

ASKED = asked(chat_action())
assert ASKED is not None
ATTEMPT = Dispatched(attempt=2, deployment="openai-eu", provider_kind="openai", provider_model="gpt-4o-mini",
                     reason="fallback: primary 503", at_ms=NOW_MS + 50)  # fmt: skip
COMPLETED = Completed(
    content="Hello world", finish_reason="length", deployment="openai-eu", provider_kind="openai",
    provider_model="gpt-4o-mini", prompt_tokens=12, completion_tokens=34, tokens_estimated=True, cost_usd=0.000123,
    latency_ms=900, ttft_ms=120, attempts=2, fallback_used=True, cached=False, chunks=3, at_ms=NOW_MS + 950,
    tenant_usage=TenantUsage(), charge=None,
)  # fmt: skip
FAILED = Failed(
    error_code="all_providers_failed", message="x" * 2500, retryable=True, retry_after_s=None, deployment=None,
    attempts=3, fallback_used=True, latency_ms=4_000, ttft_ms=None, chunks=1, at_ms=NOW_MS + 4_050,
    tenant_usage=TenantUsage(), charge=None,
)  # fmt: skip

Build = Callable[[Asked], dict[str, Any]]
RECORDS: list[tuple[str, str, Build, int]] = [
    ("attempt", "ai.requests.v1", lambda a: request_record(a, ATTEMPT, 17), NOW_MS + 50),
    ("chunk", "ai.responses.v1", lambda a: chunk_record(a, ChunkBatch(2, "lo é", NOW_MS + 300), ATTEMPT), NOW_MS + 300),
    ("chunk-no-attempt", "ai.responses.v1", lambda a: chunk_record(a, ChunkBatch(0, "", NOW_MS + 1), None), NOW_MS + 1),
    ("completed", "ai.responses.v1", lambda a: completed_record(a, COMPLETED), NOW_MS + 950),
    ("failed", "ai.responses.v1", lambda a: failed_record(a, FAILED, ATTEMPT), NOW_MS + 4_050),
    ("failed-no-attempt", "ai.responses.v1", lambda a: failed_record(a, FAILED, None), NOW_MS + 4_050),
    ("cancelled", "ai.responses.v1", lambda a: cancelled_record(a, NOW_MS + 700, 2, ATTEMPT), NOW_MS + 700),
    ("cancelled-no-attempt", "ai.responses.v1", lambda a: cancelled_record(a, NOW_MS + 10, 0, None), NOW_MS + 10),
]


@pytest.mark.parametrize(("topic", "build", "at_ms"), [r[1:] for r in RECORDS], ids=[r[0] for r in RECORDS])
def test_every_record_fits_its_contract_and_names_its_request(topic: str, build: Build, at_ms: int) -> None:
    assert ASKED is not None
    record = build(ASKED)
    decoded = round_trip(topic, record)
    assert decoded["request_id"] == REQUEST_ID
    assert decoded["requested_at"] == NOW_MS
    assert decoded["occurred_at"] == at_ms
    assert (decoded["tenant_id"], decoded["user_id"], decoded["conversation_id"], decoded["session_id"],
            decoded["trace_id"], decoded["client"]) == ("acme", "alice", "conv-1", "sess-1", "t" * 32, CLIENT)  # fmt: skip
    assert uuid.UUID(decoded["event_id"]).version == 4
    assert build(ASKED)["event_id"] != record["event_id"]


def test_an_attempt_record_says_where_and_why() -> None:
    assert ASKED is not None
    record = round_trip("ai.requests.v1", request_record(ASKED, ATTEMPT, 17))
    assert record["messages"] == PROMPT  # the roles upper-cased again, as the contract's enum
    assert {k: record[k] for k in ("message_id", "regenerates_message_id", "provider", "model", "stream", "max_tokens",
                                   "temperature", "prompt_tokens_estimate", "attempt", "deadline_at", "deployment",
                                   "reason")} == {
        "message_id": "m-user", "regenerates_message_id": None, "provider": "openai", "model": "gpt-4o-mini",
        "stream": True, "max_tokens": 64, "temperature": 0.5, "prompt_tokens_estimate": 17, "attempt": 2,
        "deadline_at": NOW_MS + 120_000, "deployment": "openai-eu", "reason": "fallback: primary 503",
    }  # fmt: skip


RESPONSE_FIELDS = ("message_id", "kind", "provider", "model", "sequence", "delta", "content", "finish_reason",
                   "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd", "latency_ms",
                   "time_to_first_token_ms", "error_code", "error_message", "retryable", "tokens_estimated",
                   "fallback_used", "attempts")  # fmt: skip
NONE_YET = {"delta": None, "content": None, "finish_reason": None, "prompt_tokens": None, "completion_tokens": None,
            "total_tokens": None, "cost_usd": None, "latency_ms": None, "time_to_first_token_ms": None,
            "error_code": None, "error_message": None, "retryable": None, "tokens_estimated": False,
            "fallback_used": False, "attempts": 1}  # fmt: skip


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        pytest.param(
            lambda a: chunk_record(a, ChunkBatch(2, "lo é", NOW_MS + 300), ATTEMPT),
            {**NONE_YET, "kind": "CHUNK", "provider": "openai", "model": "gpt-4o-mini", "sequence": 2, "delta": "lo é"},
            id="chunk",
        ),
        pytest.param(
            lambda a: chunk_record(a, ChunkBatch(0, "Hi", NOW_MS + 1), None),
            {**NONE_YET, "kind": "CHUNK", "provider": "none", "model": "none", "sequence": 0, "delta": "Hi"},
            id="chunk-no-attempt",
        ),
        pytest.param(
            lambda a: completed_record(a, COMPLETED),
            {**NONE_YET, "kind": "COMPLETED", "provider": "openai", "model": "gpt-4o-mini", "sequence": 3,
             "content": "Hello world", "finish_reason": "length", "prompt_tokens": 12, "completion_tokens": 34,
             "total_tokens": 46, "cost_usd": 0.000123, "latency_ms": 900, "time_to_first_token_ms": 120,
             "tokens_estimated": True, "fallback_used": True, "attempts": 2},
            id="completed",
        ),
        pytest.param(
            lambda a: failed_record(a, FAILED, ATTEMPT),
            {**NONE_YET, "kind": "FAILED", "provider": "openai", "model": "gpt-4o-mini", "sequence": 1,
             "finish_reason": "error", "latency_ms": 4_000, "error_code": "all_providers_failed",
             "error_message": "x" * 2000, "retryable": True, "fallback_used": True, "attempts": 3},
            id="failed-message-cut-at-2000",
        ),
        pytest.param(
            lambda a: cancelled_record(a, NOW_MS + 700, 2, ATTEMPT),
            {**NONE_YET, "kind": "FAILED", "provider": "openai", "model": "gpt-4o-mini", "sequence": 2,
             "finish_reason": "cancelled", "latency_ms": 700, "error_code": "cancelled",
             "error_message": "the client stopped the answer", "retryable": False, "attempts": 2},
            id="cancelled",
        ),
        pytest.param(
            lambda a: cancelled_record(a, NOW_MS + 10, 0, None),
            {**NONE_YET, "kind": "FAILED", "provider": "none", "model": "none", "sequence": 0,
             "finish_reason": "cancelled", "latency_ms": 10, "error_code": "cancelled",
             "error_message": "the client stopped the answer", "retryable": False, "attempts": 0},
            id="cancelled-before-any-attempt",
        ),
    ],
)  # fmt: skip
def test_each_answer_record_as_the_gateway_reads_it(build: Build, expected: dict[str, Any]) -> None:
    assert ASKED is not None
    record = round_trip("ai.responses.v1", build(ASKED))
    assert {name: record[name] for name in RESPONSE_FIELDS} == {**expected, "message_id": ASKED.answer_message_id}


def test_the_answer_message_id_is_stable_for_a_request() -> None:
    again = asked(chat_action())  # the same request read twice (a redelivery, a retry)
    other = asked(chat_action(completion={"request_id": str(uuid.uuid4())}))
    assert ASKED is not None and again is not None and other is not None
    assert again.answer_message_id == ASKED.answer_message_id
    assert other.answer_message_id != ASKED.answer_message_id
    assert ASKED.answer_message_id != "m-user"
    assert str(uuid.UUID(ASKED.answer_message_id)) == ASKED.answer_message_id
    records = [chunk_record(ASKED, ChunkBatch(0, "a", NOW_MS), None), completed_record(ASKED, COMPLETED),
               cancelled_record(again, NOW_MS, 1, None)]  # fmt: skip
    assert {r["message_id"] for r in records} == {ASKED.answer_message_id}
