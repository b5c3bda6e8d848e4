"""The chat API end to end in one process: the ASGI app with a fake direct producer that plays the
dispatch job (it answers each request on the fake reply reader, addressed by the request-id header).

httpx's ``ASGITransport`` hands back a response once the app has finished it, so a streamed
answer is read whole, after its end; a client that leaves mid-answer is played by calling the app
with an ASGI ``receive`` of our own.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import zlib
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp, Message

from gateway import openai_format as fmt
from gateway.app import create_app
from gateway.replies import ReplyReader, reply_partition
from tests.unit.gateway.fakes import (
    MODELS,
    FakeDirectProducer,
    FakeProducer,
    FakeReplyReader,
    Pause,
    Step,
    chunk_reply,
    completed_reply,
    failed_reply,
    make_chat,
    make_gateway,
    token,
)

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(10)]

HI = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}
STREAM = {**HI, "stream": True}
STREAM_USAGE = {**STREAM, "stream_options": {"include_usage": True}}
CONVERSATION = "x-chatstream-conversation-id"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def app_for(job: FakeDirectProducer, *, limits: dict[str, Any] | None = None, **timeouts: Any) -> FastAPI:
    return create_app(make_gateway(FakeProducer(), chat=make_chat(job, **timeouts), **(limits or {})))


def client(job: FakeDirectProducer, *, limits: dict[str, Any] | None = None, **timeouts: Any) -> httpx.AsyncClient:
    app = app_for(job, limits=limits, **timeouts)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


def auth(tenant: str = "acme", **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(tenant)}", **headers}


def job_playing(*script: Step) -> FakeDirectProducer:
    return FakeDirectProducer(FakeReplyReader(partition=3), script)


def events(answer: httpx.Response) -> list[Any]:
    """The SSE ``data:`` payloads, JSON decoded, ``[DONE]`` as the string."""
    assert answer.headers["content-type"].startswith("text/event-stream")
    frames = [frame for frame in answer.text.split("\n\n") if frame]
    assert all(frame.startswith("data: ") for frame in frames), frames
    payloads = [frame.removeprefix("data: ") for frame in frames]
    return [payload if payload == "[DONE]" else orjson.loads(payload) for payload in payloads]


def deltas(stream: list[Any]) -> list[dict[str, Any]]:
    return [event["choices"][0]["delta"] for event in stream if isinstance(event, dict) and event.get("choices")]


def openai_error(answer: httpx.Response) -> dict[str, Any]:
    """The body's ``error``, checked to be exactly OpenAI's four keys."""
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"]
    return error  # type: ignore[no-any-return]


async def no_stop_follows(job: FakeDirectProducer) -> None:
    """A stop is sent in the background: give it time to show up, then check it did not."""
    await asyncio.sleep(0.05)
    assert job.of("stop") == []


# --- A whole answer ---------------------------------------------------------------------------


async def test_a_whole_answer_in_openais_shape_with_usage_and_headers() -> None:
    job = job_playing(chunk_reply(0, "Hel"), completed_reply("Hello", prompt_tokens=5, completion_tokens=2))
    async with client(job) as c:
        answer = await c.post("/v1/chat/completions", json=HI, headers=auth(**{CONVERSATION: "conv-42"}))
    assert answer.status_code == 200
    request_id = answer.headers["x-request-id"]
    assert answer.headers[CONVERSATION] == "conv-42"
    body = answer.json()
    assert body["id"] == fmt.completion_id(request_id)
    assert body["object"] == "chat.completion" and body["model"] == "fast"
    assert body["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "Hello", "refusal": None},
                                "logprobs": None, "finish_reason": "stop"}]  # fmt: skip
    assert body["usage"] == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    (request,) = job.sent
    assert (request.topic, request.key, request.dispatch, request.request_id) == (
        "chat.actions.v1", b"conv-42", "request", request_id)
    assert request.partition == zlib.crc32(b"acme") % 6
    await no_stop_follows(job)
    assert job.replies.waiting == 0


async def test_the_request_record_carries_the_prompt_the_reply_partition_and_the_deadline() -> None:
    job = job_playing(completed_reply("Hi"))
    prompt = {**HI, "messages": [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"}],
              "max_completion_tokens": 9, "temperature": 0.5}  # fmt: skip
    async with client(job, total_timeout_s=1.5) as c:
        answer = await c.post("/v1/chat/completions", json=prompt,
                              headers=auth(**{CONVERSATION: "conv-42", "x-chatstream-session-id": "sess-7",
                                              "traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01"}))  # fmt: skip
    assert answer.status_code == 200
    action = job.sent[0].action()
    assert action["action"] == "MESSAGE_SENT"
    assert (action["tenant_id"], action["user_id"], action["conversation_id"], action["session_id"]) == (
        "acme", "alice", "conv-42", "sess-7")
    assert action["trace_id"] == "ab" * 16
    assert action["message_sent"]["content"] == "hi" and action["message_sent"]["model"] == "fast"
    completion = action["completion"]
    assert str(completion["request_id"]) == answer.headers["x-request-id"]
    assert completion["messages"] == [{"role": "SYSTEM", "content": "be brief"}, {"role": "USER", "content": "hi"}]
    assert (completion["stream"], completion["max_tokens"], completion["temperature"]) == (False, 9, 0.5)
    assert (completion["reply_partition"], completion["reply_to"]) == (3, "unit-gw-0")
    assert completion["deadline_at"] - action["occurred_at"] == timedelta(seconds=1.5)


async def test_without_a_conversation_header_a_new_conversation_keys_the_record_and_is_echoed() -> None:
    job = job_playing(completed_reply("Hi"))
    async with client(job) as c:
        first = await c.post("/v1/chat/completions", json=HI, headers=auth())
        second = await c.post("/v1/chat/completions", json=HI, headers=auth())
    conversations = [first.headers[CONVERSATION], second.headers[CONVERSATION]]
    assert conversations[0] != conversations[1]
    assert [sent.key.decode() for sent in job.sent] == conversations
    assert [sent.action()["conversation_id"] for sent in job.sent] == conversations
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_a_whole_answer_waits_its_total_time_after_the_first_chunk_not_the_idle_timeout() -> None:
    job = job_playing(chunk_reply(0, "Hel"), Pause(0.4), completed_reply("Hello"))
    async with client(job, idle_timeout_s=0.1, total_timeout_s=2.0) as c:
        answer = await c.post("/v1/chat/completions", json=HI, headers=auth())
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"] == "Hello"


async def test_a_whole_answer_that_never_completes_is_504_after_the_total_time_and_stopped() -> None:
    job = job_playing(chunk_reply(0, "Hel"))
    started = time.monotonic()
    async with client(job, total_timeout_s=0.3) as c:
        answer = await c.post("/v1/chat/completions", json=HI, headers=auth())
    assert answer.status_code == 504 and time.monotonic() - started >= 0.3
    assert openai_error(answer)["code"] == "timeout"
    stop = await job.first("stop")
    assert stop.request_id == job.sent[0].request_id
    assert job.replies.waiting == 0


async def test_a_whole_answer_failing_after_its_first_chunk_gets_the_failures_status() -> None:
    job = job_playing(chunk_reply(0, "Hel"), failed_reply("all_providers_failed", retryable=True))
    async with client(job) as c:
        answer = await c.post("/v1/chat/completions", json=HI, headers=auth())
    assert answer.status_code == 502
    assert openai_error(answer)["code"] == "all_providers_failed"
    await no_stop_follows(job)
    assert job.replies.waiting == 0


# --- A streamed answer ------------------------------------------------------------------------


async def test_a_streamed_answer_role_text_finish_usage_done() -> None:
    job = job_playing(chunk_reply(0, "Hel"), chunk_reply(1, "lo"), chunk_reply(1, "lo"), chunk_reply(0, "Hel"),
                      chunk_reply(2, " world"), completed_reply("Hello world", prompt_tokens=4, completion_tokens=3,
                                                                finish_reason="length"))  # fmt: skip
    async with client(job) as c:
        answer = await c.post("/v1/chat/completions", json=STREAM_USAGE, headers=auth(**{CONVERSATION: "conv-9"}))
    assert answer.status_code == 200
    assert answer.headers[CONVERSATION] == "conv-9" and answer.headers["cache-control"] == "no-cache"
    cid = fmt.completion_id(answer.headers["x-request-id"])
    stream = events(answer)
    assert stream[-1] == "[DONE]"
    chunks = stream[:-1]
    assert {(e["id"], e["object"], e["model"]) for e in chunks} == {(cid, "chat.completion.chunk", "fast")}
    assert deltas(chunks) == [{"role": "assistant", "content": ""}, {"content": "Hel"}, {"content": "lo"},
                              {"content": " world"}, {}]  # fmt: skip
    assert [e["choices"][0]["finish_reason"] for e in chunks[:-1]] == [None, None, None, None, "length"]
    assert all(e["usage"] is None for e in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}
    assert job.sent[0].action()["completion"]["stream"] is True
    await no_stop_follows(job)
    assert job.replies.waiting == 0


async def test_without_include_usage_no_usage_chunk_nor_usage_key() -> None:
    job = job_playing(chunk_reply(0, "Hi"), completed_reply("Hi"))
    async with client(job) as c:
        answer = await c.post("/v1/chat/completions", json=STREAM, headers=auth())
    stream = events(answer)
    assert stream[-1] == "[DONE]"
    assert deltas(stream) == [{"role": "assistant", "content": ""}, {"content": "Hi"}, {}]
    assert all("usage" not in e for e in stream[:-1])


async def test_a_stream_failing_after_text_ends_with_an_error_event_and_no_done() -> None:
    job = job_playing(chunk_reply(0, "Hel"), failed_reply("all_providers_failed", message="every provider failed"))
    async with client(job) as c:
        answer = await c.post("/v1/chat/completions", json=STREAM, headers=auth())
    assert answer.status_code == 200
    stream = events(answer)
    assert "[DONE]" not in stream
    assert deltas(stream) == [{"role": "assistant", "content": ""}, {"content": "Hel"}]
    assert stream[-1] == {"error": {"message": "every provider failed", "type": "api_error", "param": None,
                                    "code": "all_providers_failed"}}  # fmt: skip
    await no_stop_follows(job)
    assert job.replies.waiting == 0


async def test_a_stream_falling_silent_ends_with_a_timeout_event_after_the_idle_time_and_is_stopped() -> None:
    job = job_playing(chunk_reply(0, "Hel"))
    started = time.monotonic()
    async with client(job, idle_timeout_s=0.2) as c:
        answer = await c.post("/v1/chat/completions", json=STREAM, headers=auth())
    assert time.monotonic() - started >= 0.2
    stream = events(answer)
    assert "[DONE]" not in stream
    assert deltas(stream) == [{"role": "assistant", "content": ""}, {"content": "Hel"}]
    error = stream[-1]["error"]
    assert (error["type"], error["code"], error["param"]) == ("timeout", "timeout", None)
    stop = await job.first("stop")
    assert stop.request_id == answer.headers["x-request-id"]
    assert job.replies.waiting == 0


# --- Answers that never start -----------------------------------------------------------------


@pytest.mark.parametrize("payload", [HI, STREAM], ids=["whole", "streamed"])
async def test_no_answer_is_504_after_the_first_token_timeout_and_a_stop_is_sent(payload: dict[str, Any]) -> None:
    job = job_playing()
    started = time.monotonic()
    async with client(job, first_token_timeout_s=0.2) as c:
        answer = await c.post("/v1/chat/completions", json=payload, headers=auth(**{CONVERSATION: "conv-1"}))
    assert time.monotonic() - started >= 0.2
    assert answer.status_code == 504 and answer.headers["retry-after"] == "1"
    error = openai_error(answer)
    assert (error["type"], error["code"]) == ("timeout", "timeout")
    stop = await job.first("stop")
    request = job.of("request")[0]
    assert (stop.topic, stop.key, stop.partition) == (request.topic, request.key, request.partition)
    action = stop.action()
    assert action["action"] == "GENERATION_STOPPED"
    assert action["generation_stopped"]["request_id"] == request.request_id
    assert action["conversation_id"] == "conv-1"
    assert len(job.of("stop")) == 1
    assert job.replies.waiting == 0


@pytest.mark.parametrize(
    ("code", "retryable", "status", "kind", "retry_after"),
    [
        ("tenant_rate_limited", True, 429, "rate_limit_error", "1"),
        ("tenant_rate_limited", False, 429, "rate_limit_error", None),
        ("budget_exceeded", False, 429, "rate_limit_error", None),
        ("all_providers_failed", True, 502, "api_error", "1"),
        ("provider_error", False, 502, "api_error", None),
        ("no_deployment_available", False, 502, "api_error", None),
        ("expired", False, 504, "timeout", None),
        ("model_not_found", False, 404, "invalid_request_error", None),
    ],
)
@pytest.mark.parametrize("payload", [HI, STREAM], ids=["whole", "streamed"])
async def test_a_failure_before_any_text_gets_its_http_status(
    payload: dict[str, Any], code: str, retryable: bool, status: int, kind: str, retry_after: str | None
) -> None:
    job = job_playing(failed_reply(code, retryable=retryable, message=f"{code} said the job"))
    async with client(job) as c:
        answer = await c.post("/v1/chat/completions", json=payload, headers=auth())
    assert answer.status_code == status
    assert answer.headers.get("retry-after") == retry_after
    assert openai_error(answer) == {"message": f"{code} said the job", "type": kind, "param": None, "code": code}
    await no_stop_follows(job)
    assert job.replies.waiting == 0


async def test_the_jobs_wait_is_the_clients_retry_after() -> None:
    """A tenant over its RPM is told when its window frees, not to come back in a second."""
    job = job_playing({**failed_reply("tenant_rate_limited", retryable=True), "retry_after_s": 41.2})
    async with client(job) as c:
        answer = await c.post("/v1/chat/completions", json=HI, headers=auth())
    assert answer.status_code == 429 and answer.headers["retry-after"] == "42"


# --- Refusals before Kafka --------------------------------------------------------------------


async def test_an_unknown_model_is_404_in_openais_shape_and_nothing_is_sent() -> None:
    job = job_playing(completed_reply("never"))
    async with client(job) as c:
        answer = await c.post("/v1/chat/completions", json={**HI, "model": "gpt-17"}, headers=auth())
    assert answer.status_code == 404
    error = openai_error(answer)
    assert {k: error[k] for k in ("type", "param", "code")} == {
        "type": "invalid_request_error", "param": "model", "code": "model_not_found"}
    assert "gpt-17" in error["message"]
    assert job.sent == [] and job.replies.waiting == 0


async def test_a_bad_request_is_400_naming_the_param() -> None:
    job = job_playing(completed_reply("never"))
    async with client(job) as c:
        answer = await c.post("/v1/chat/completions", json={**HI, "n": 3}, headers=auth())
    assert answer.status_code == 400
    error = openai_error(answer)
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", "n", "malformed_request")
    assert job.sent == []


async def test_the_tenants_request_rate_is_429_in_openais_shape() -> None:
    job = job_playing(completed_reply("Hi"))
    async with client(job, limits={"rate": 1, "burst": 1}) as c:
        first = await c.post("/v1/chat/completions", json=HI, headers=auth("flood"))
        limited = await c.post("/v1/chat/completions", json=HI, headers=auth("flood"))
        other = await c.post("/v1/chat/completions", json=HI, headers=auth("calm"))
    assert (first.status_code, limited.status_code, other.status_code) == (200, 429, 200)
    assert int(limited.headers["retry-after"]) >= 1
    error = openai_error(limited)
    assert (error["type"], error["param"], error["code"]) == ("rate_limit_error", None, "rate_limited")
    assert len(job.of("request")) == 2


async def test_a_body_over_the_limit_is_413_in_openais_shape() -> None:
    job = job_playing(completed_reply("never"))
    async with client(job, limits={"max_bytes": 256}) as c:
        answer = await c.post("/v1/chat/completions", json={**HI, "messages": [{"role": "user", "content": "x" * 300}]},
                              headers=auth())  # fmt: skip
    assert answer.status_code == 413
    assert openai_error(answer)["code"] == "payload_too_large"
    assert job.sent == []


async def test_kafka_refusing_the_request_is_503_in_openais_shape() -> None:
    job = job_playing(completed_reply("never"))
    job.refuse = True
    async with client(job) as c:
        answer = await c.post("/v1/chat/completions", json=STREAM, headers=auth())
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
    error = openai_error(answer)
    assert (error["type"], error["param"], error["code"]) == ("api_error", None, "kafka_unavailable")
    assert job.sent == [] and job.replies.waiting == 0


@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/chat/completions"), ("GET", "/v1/models")])
@pytest.mark.parametrize("authorization", [None, "Bearer not-a-jwt"], ids=["no-token", "bad-token"])
async def test_no_valid_token_is_401_in_openais_shape(method: str, path: str, authorization: str | None) -> None:
    job = job_playing(completed_reply("never"))
    headers = {} if authorization is None else {"Authorization": authorization}
    async with client(job) as c:
        answer = await c.request(method, path, json=HI if method == "POST" else None, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    error = openai_error(answer)
    assert (error["type"], error["param"], error["code"]) == ("authentication_error", None, "unauthorized")
    assert job.sent == []


async def test_the_models_are_the_routing_configs_aliases() -> None:
    async with client(job_playing()) as c:
        answer = await c.get("/v1/models", headers=auth())
    assert answer.status_code == 200
    assert answer.json() == {"object": "list", "data": [
        {"id": alias, "object": "model", "created": 0, "owned_by": "chatstream", "description": text}
        for alias, text in MODELS.items()]}  # fmt: skip


async def test_the_event_routes_keep_their_own_error_shape() -> None:
    async with client(job_playing()) as c:
        answer = await c.post("/v1/events", content=b"{nope", headers=auth())
    assert answer.status_code == 400
    assert set(answer.json()["error"]) == {"code", "message"}


async def test_the_app_starts_the_reply_reader_and_closes_the_chats_kafka_clients() -> None:
    job = job_playing()
    app = app_for(job)
    async with app.router.lifespan_context(app):
        assert job.replies.started and not job.replies.closed and not job.closed
    assert job.replies.closed and job.closed


# --- A client that leaves ---------------------------------------------------------------------


async def call_and_leave(app: ASGIApp, payload: dict[str, Any], leave: asyncio.Event, *,
                         leave_on: bytes | None = None) -> list[Message]:  # fmt: skip
    """Call the app as uvicorn does (ASGI spec 2.3): the client disconnects once ``leave`` is set,
    or once the app sent a body holding ``leave_on``. The ASGI messages the app sent, in order."""
    body = orjson.dumps(payload)
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": "POST", "scheme": "http", "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions",
        "query_string": b"", "root_path": "", "server": ("gw", 80), "client": ("127.0.0.1", 5000),
        "headers": [(b"host", b"gw"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()), (b"authorization", f"Bearer {token()}".encode())],
    }  # fmt: skip
    body_sent = False
    messages: list[Message] = []

    async def receive() -> Message:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await leave.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        messages.append(message)
        if leave_on is not None and leave_on in message.get("body", b""):
            leave.set()

    await app(scope, receive, send)
    return messages


async def test_a_client_leaving_a_whole_answer_is_499_and_stops_the_generation() -> None:
    leave = asyncio.Event()
    job = job_playing(chunk_reply(0, "Hel"), Pause(0.05), leave.set, Pause(5), completed_reply("too late"))
    messages = await call_and_leave(app_for(job, total_timeout_s=5), HI, leave)
    job.close()
    assert messages[0]["type"] == "http.response.start" and messages[0]["status"] == 499
    stop = await job.first("stop")
    assert stop.request_id == job.of("request")[0].request_id
    assert stop.action()["generation_stopped"]["request_id"] == stop.request_id
    assert job.replies.waiting == 0


async def test_a_client_leaving_a_stream_stops_the_generation_at_once() -> None:
    job = job_playing(chunk_reply(0, "Hel"), Pause(5), completed_reply("too late"))
    started = time.monotonic()
    messages = await call_and_leave(app_for(job, idle_timeout_s=5, total_timeout_s=5), STREAM, asyncio.Event(),
                                    leave_on=b'"Hel"')  # fmt: skip
    job.close()
    assert time.monotonic() - started < 2  # not at the idle timeout
    assert messages[0]["status"] == 200
    assert all(m.get("more_body", True) for m in messages[1:])  # the stream never ended normally
    assert not any(b"[DONE]" in m.get("body", b"") for m in messages)
    stop = await job.first("stop")
    assert stop.request_id == job.of("request")[0].request_id
    assert len(job.of("stop")) == 1
    assert job.replies.waiting == 0


async def test_a_client_leaving_as_the_first_text_arrives_still_stops_the_generation() -> None:
    """The disconnect is there before the stream starts: the stream must still end, and tell the job."""
    leave = asyncio.Event()
    job = job_playing(chunk_reply(0, "Hel"), leave.set, Pause(5), completed_reply("too late"))
    messages = await call_and_leave(app_for(job, idle_timeout_s=5, total_timeout_s=5), STREAM, leave)
    job.close()
    assert not any(b"[DONE]" in m.get("body", b"") for m in messages)
    stop = await job.first("stop")
    assert stop.request_id == job.of("request")[0].request_id
    assert job.replies.waiting == 0


# --- Reply routing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "worker", "partitions", "expected"),
    [(0, 0, 6, 0), (0, 5, 6, 5), (0, 6, 6, 0), (4, 3, 6, 1), (2, 0, 1, 0)],
)
def test_a_workers_reply_partition(base: int, worker: int, partitions: int, expected: int) -> None:
    assert reply_partition(base, worker, partitions) == expected


def routing_only() -> ReplyReader:
    """A ReplyReader's routing half: ``__init__`` would reach Kafka, and nothing below needs it."""
    reader = ReplyReader.__new__(ReplyReader)
    reader._waiting = {}
    return reader


async def test_a_reply_reaches_only_its_requests_queue_until_unregistered() -> None:
    reader = routing_only()
    mine, other = str(uuid.uuid4()), str(uuid.uuid4())
    my_queue, other_queue = reader.register(mine), reader.register(other)
    assert reader.waiting == 2
    reader._deliver([{"request_id": uuid.UUID(mine), "kind": "CHUNK"}, {"request_id": str(uuid.uuid4()), "kind": "X"},
                     {"request_id": mine, "kind": "COMPLETED"}])  # fmt: skip
    assert [my_queue.get_nowait()["kind"], my_queue.get_nowait()["kind"]] == ["CHUNK", "COMPLETED"]
    assert other_queue.empty()
    reader.unregister(mine)
    reader.unregister(mine)  # twice is fine
    reader._deliver([{"request_id": mine, "kind": "LATE"}])
    assert my_queue.empty() and reader.waiting == 1

