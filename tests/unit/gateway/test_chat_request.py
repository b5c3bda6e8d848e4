"""OpenAI chat completion requests: what is accepted, what is refused and with which ``param``,
and the chat actions that carry a request (MESSAGE_SENT) and its end (GENERATION_STOPPED) to Kafka."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
import orjson
import pytest

from chatstream.avro.catalog import load_catalog
from chatstream.ids import uuid7
from gateway.auth import Identity
from gateway.chat_request import generation_stopped, message_sent, parse_chat_request, prompt_of
from gateway.errors import MalformedRequestError

ME = Identity("acme", "alice")
NOW_MS = 1_790_000_000_123
USER = {"role": "user", "content": "Hello?"}
MINIMAL = {"model": "fast", "messages": [USER]}
CHAT_ACTIONS = fastavro.parse_schema(load_catalog()["chat.actions.v1"].schema)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def body(**fields: Any) -> bytes:
    return orjson.dumps({**MINIMAL, **fields})


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(
            body(),
            {"model": "fast", "stream": False, "include_usage": False, "token_limit": None, "temperature": None,
             "prompt": [{"role": "USER", "content": "Hello?"}]},
            id="minimal",
        ),
        pytest.param(
            body(messages=[{"role": "user", "content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}]}]),
            {"prompt": [{"role": "USER", "content": "Hello"}]},
            id="content-parts-joined",
        ),
        pytest.param(
            body(messages=[{"role": "developer", "content": "be brief"}, {"role": "system", "content": "be kind"},
                           {"role": "assistant", "content": "ok"}, {"role": "tool", "content": "42"},
                           {"role": "function", "content": "43"}, USER]),
            {"prompt": [{"role": "SYSTEM", "content": "be brief"}, {"role": "SYSTEM", "content": "be kind"},
                        {"role": "ASSISTANT", "content": "ok"}, {"role": "TOOL", "content": "42"},
                        {"role": "TOOL", "content": "43"}, {"role": "USER", "content": "Hello?"}]},
            id="developer-is-system",
        ),
        pytest.param(body(max_tokens=100, max_completion_tokens=40), {"token_limit": 40},
                     id="max-completion-tokens-preferred"),
        pytest.param(body(max_tokens=100), {"token_limit": 100}, id="max-tokens"),
        pytest.param(
            body(stream=True, stream_options={"include_usage": True}, temperature=0.3),
            {"stream": True, "include_usage": True, "temperature": 0.3},
            id="stream-with-usage",
        ),
        pytest.param(
            body(top_p=0.9, presence_penalty=0.5, frequency_penalty=0.1, stop=["\n"], seed=7, user="u-1",
                 logit_bias={"50256": -100}, n=1, tools=None, some_future_field={"x": 1}),
            {"model": "fast", "token_limit": None, "prompt": [{"role": "USER", "content": "Hello?"}]},
            id="unknown-sampling-fields-ignored",
        ),
    ],
)  # fmt: skip
def test_accepted_requests(payload: bytes, expected: dict[str, Any]) -> None:
    request = parse_chat_request(payload)
    seen = {"model": request.model, "stream": request.stream, "include_usage": request.include_usage,
            "token_limit": request.token_limit, "temperature": request.temperature, "prompt": prompt_of(request)}  # fmt: skip
    assert {name: seen[name] for name in expected} == expected


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        pytest.param(b"{nope", None, id="not-json"),
        pytest.param(b"[1, 2]", None, id="not-an-object"),
        pytest.param(orjson.dumps({"messages": [USER]}), "model", id="missing-model"),
        pytest.param(body(model=""), "model", id="empty-model"),
        pytest.param(body(messages=[]), "messages", id="empty-messages"),
        pytest.param(orjson.dumps({"model": "fast"}), "messages", id="missing-messages"),
        pytest.param(body(messages=[USER, {"role": "robot", "content": "beep"}]), "messages[1].role", id="bad-role"),
        pytest.param(body(messages=["hi"]), "messages[0]", id="message-not-an-object"),
        pytest.param(body(temperature=3), "temperature", id="temperature-3"),
        pytest.param(body(max_tokens=0), "max_tokens", id="max-tokens-0"),
        pytest.param(body(stream_options={"include_usage": "maybe"}), "stream_options.include_usage",
                     id="include-usage-not-bool"),
        pytest.param(body(n=2), "n", id="n-2"),
        pytest.param(body(tools=[{"type": "function", "function": {"name": "f"}}]), "tools", id="tools"),
        pytest.param(body(functions=[{"name": "f"}]), "functions", id="functions"),
        pytest.param(
            body(messages=[{"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]),
            "messages[0].content[1]",
            id="image-part",
        ),
        pytest.param(
            body(messages=[USER, {"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]),
            "messages[1].content[0]",
            id="audio-part",
        ),
        pytest.param(
            body(messages=[{"role": "user", "content": [{"text": "no type"}]}]),
            "messages[0].content[0].type",
            id="part-without-type",
        ),
        pytest.param(
            body(messages=[{"role": "user", "content": 5}]),
            "messages[0].content",
            id="content-a-number",
        ),
        pytest.param(body(temperature=True), "temperature", id="temperature-true-is-not-1"),
        pytest.param(body(stream="yes"), "stream", id="stream-yes-is-not-true"),
        pytest.param(body(messages=[{"role": "user", "content": [{"type": "text"}]}]), "messages[0].content[0].text",
                     id="text-part-without-text"),
    ],
)  # fmt: skip
def test_refusals_name_the_field_at_fault(payload: bytes, param: str | None) -> None:
    with pytest.raises(MalformedRequestError) as refused:
        parse_chat_request(payload)
    assert refused.value.status == 400
    assert refused.value.param == param
    assert refused.value.openai_body()["error"]["param"] == param
    assert refused.value.openai_body()["error"]["type"] == "invalid_request_error"


def encode_and_decode(record: dict[str, Any]) -> dict[str, Any]:
    """Strictly (no field the contract lacks; only fields with a default left out), then back."""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, CHAT_ACTIONS, record, strict_allow_default=True)
    buffer.seek(0)
    decoded = fastavro.schemaless_reader(buffer, CHAT_ACTIONS, None)
    assert isinstance(decoded, dict)
    return decoded


def at(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def test_message_sent_fits_chat_actions_and_carries_the_completion() -> None:
    request = parse_chat_request(body(
        messages=[{"role": "developer", "content": "be brief"}, {"role": "user", "content": [
            {"type": "text", "text": "Bonjour "}, {"type": "text", "text": "é ✓"}]}],
        stream=True, max_completion_tokens=64, temperature=0.25))  # fmt: skip
    request_id, message_id = str(uuid.uuid4()), uuid7(NOW_MS)
    record = message_sent(request, ME, event_id=uuid7(NOW_MS), request_id=request_id, message_id=message_id,
                          conversation_id="conv-1", session_id="sess-1", trace_id="t" * 32, client="ua/1",
                          now_ms=NOW_MS, deadline_ms=NOW_MS + 120_000, reply_partition=5, reply_to="gw-0")  # fmt: skip
    decoded = encode_and_decode(record)
    assert decoded["action"] == "MESSAGE_SENT"
    assert (decoded["tenant_id"], decoded["user_id"], decoded["conversation_id"], decoded["session_id"]) == (
        "acme", "alice", "conv-1", "sess-1")
    assert decoded["occurred_at"] == at(NOW_MS)
    assert decoded["message_sent"] == {"message_id": message_id, "parent_message_id": None, "text_length": 11,
                                       "token_count": None, "content": "Bonjour é ✓", "model": "fast",
                                       "attachment_ids": []}  # fmt: skip
    assert decoded["completion"] == {
        "request_id": uuid.UUID(request_id),
        "messages": [{"role": "SYSTEM", "content": "be brief"}, {"role": "USER", "content": "Bonjour é ✓"}],
        "stream": True, "max_tokens": 64, "temperature": 0.25,
        "reply_partition": 5, "reply_to": "gw-0", "deadline_at": at(NOW_MS + 120_000),
    }  # fmt: skip
    assert decoded["generation_stopped"] is None


def test_message_sent_with_nothing_optional_still_fits() -> None:
    record = message_sent(parse_chat_request(body(max_tokens=2**31 - 1)), ME, event_id=uuid7(NOW_MS),
                          request_id=str(uuid.uuid4()), message_id="m-1", conversation_id="c", session_id=None,
                          trace_id="t" * 32, client=None, now_ms=NOW_MS, deadline_ms=NOW_MS,
                          reply_partition=0, reply_to="gw-0")  # fmt: skip
    decoded = encode_and_decode(record)
    assert decoded["session_id"] is None and decoded["client"] is None
    assert decoded["completion"]["stream"] is False and decoded["completion"]["temperature"] is None
    assert decoded["completion"]["max_tokens"] == 2**31 - 1


def test_generation_stopped_fits_chat_actions() -> None:
    request_id = str(uuid.uuid4())
    record = generation_stopped(ME, event_id=uuid7(NOW_MS), request_id=request_id, message_id=None,
                                conversation_id="conv-1", session_id=None, trace_id="t" * 32, client=None,
                                now_ms=NOW_MS, tokens_generated=None)  # fmt: skip
    decoded = encode_and_decode(record)
    assert decoded["action"] == "GENERATION_STOPPED"
    assert decoded["generation_stopped"] == {"message_id": None, "request_id": request_id, "tokens_generated": None}
    assert decoded["completion"] is None and decoded["message_sent"] is None
    assert decoded["conversation_id"] == "conv-1" and decoded["occurred_at"] == at(NOW_MS)
