"""The OpenAI-compatible chat API: ``POST /v1/chat/completions`` and ``GET /v1/models``.

A chat completion travels through Kafka both ways. The gateway produces the user's message as a
``MESSAGE_SENT`` chat action whose ``completion`` holds the prompt and this worker's reply
partition (``gateway.replies``); the dispatch job answers with ``ai.responses.v1`` events on that
partition, which the gateway turns into OpenAI's response or SSE chunks.

- The request goes to its tenant's partition of ``chat.actions.v1`` (keyed by conversation as
  every chat action, partitioned by tenant), so one dispatch worker at a time holds a tenant's
  limits and budget.
- Until the first event of the answer arrives nothing is sent, so an answer that never starts,
  or fails first, gets its true HTTP status: 504 after ``CHATSTREAM_CHAT_FIRST_TOKEN_TIMEOUT_S``
  (the job or Kafka is not answering), 503 if Kafka did not take the request, the job's failure
  otherwise (429 tenant limits, 502 every provider failed). Once streaming, a failure or a silence
  longer than ``CHATSTREAM_CHAT_IDLE_TIMEOUT_S`` ends the stream with an OpenAI error event.
- A client that leaves before the answer ends makes the gateway send ``GENERATION_STOPPED``
  (same partition as the request), and the job cancels the provider call.

Conversation and session ids come from the ``X-Chatstream-Conversation-Id`` and
``X-Chatstream-Session-Id`` headers, else a new conversation id; the answer's headers carry them
and ``X-Request-Id``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

from chatstream.avro.serde import ConfluentEncoder
from chatstream.ids import uuid7
from gateway import openai_format as fmt
from gateway import openapi
from gateway.auth import Identity
from gateway.chat_request import ChatCompletionRequest, generation_stopped, message_sent, parse_chat_request
from gateway.direct_producer import DirectProducer
from gateway.errors import (
    AnswerFailedError,
    AnswerTimeoutError,
    ClientGoneError,
    GatewayError,
    ModelNotFoundError,
)
from gateway.http import json_response, read_body, trace_id_of
from gateway.replies import ReplyReader
from pipelines.topics import DISPATCH_HEADER, REQUEST_HEADER

log = logging.getLogger(__name__)

CONVERSATION_HEADER = "x-chatstream-conversation-id"
SESSION_HEADER = "x-chatstream-session-id"


@dataclass
class ChatService:
    """What the chat routes need besides the gateway's auth and limits."""

    producer: DirectProducer
    replies: ReplyReader
    encoder: ConfluentEncoder  # chat.actions.v1
    topic: str
    partitions: int  # of the topic
    models: dict[str, str]  # alias -> description
    reply_to: str
    first_token_timeout_s: float
    idle_timeout_s: float
    total_timeout_s: float
    _background: set[asyncio.Task[None]] = field(default_factory=set)

    def partition_of(self, tenant_id: str) -> int:
        return zlib.crc32(tenant_id.encode()) % self.partitions

    def later(self, work: Any) -> None:
        """Run ``work`` (a coroutine) to its end even if the request's task is cancelled."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


@dataclass
class _Call:
    """One chat completion in flight."""

    request: ChatCompletionRequest
    identity: Identity
    request_id: str
    message_id: str
    conversation_id: str
    session_id: str | None
    trace_id: str
    client: str | None
    queue: asyncio.Queue[dict[str, Any]]
    created: int = field(default_factory=lambda: int(time.time()))
    chunks: int = 0
    finished: bool = False

    @property
    def cid(self) -> str:
        return fmt.completion_id(self.request_id)


def add_chat_routes(app: FastAPI, gw: Any, chat: ChatService) -> None:
    """``gw`` is the ``gateway.app.Gateway`` (auth, tenant limits, body limits, metrics)."""

    @app.get("/v1/models", summary="The model aliases of the routing config (OpenAI's list of models).",
             responses={401: openapi.chat_error_responses()[401]})  # fmt: skip
    async def list_models(request: Request) -> Response:
        gw.verifier.verify(request.headers.get("authorization"))
        data = [{"id": alias, "object": "model", "created": 0, "owned_by": "chatstream", "description": text}
                for alias, text in chat.models.items()]  # fmt: skip
        return json_response({"object": "list", "data": data})

    @app.post("/v1/chat/completions", summary="OpenAI-compatible chat completion, streamed (SSE) or whole; "
              "through Kafka and the dispatch job.",
              responses={200: {"description": "`chat.completion` JSON, or with `stream: true` Server-Sent Events of "
                               "`chat.completion.chunk` objects ending with `data: [DONE]` (an error after the first "
                               "chunk is an `{\"error\": ...}` event instead).",
                               "content": {"application/json": {}, "text/event-stream": {}}},
                         **openapi.chat_error_responses()},
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                  "type": "object", "required": ["model", "messages"],
                  "description": "OpenAI's chat completion request (see gateway/chat_request.py for what is honoured)."}}}}})  # fmt: skip
    async def chat_completions(request: Request) -> Response:
        identity = gw.verifier.verify(request.headers.get("authorization"))
        now = time.time()
        gw.limiter.admit(identity.tenant_id, now)
        parsed = parse_chat_request(await read_body(request, gw.limits.max_body_bytes))
        if parsed.model not in chat.models:
            raise ModelNotFoundError(f"The model `{parsed.model}` does not exist; GET /v1/models lists the aliases",
                                     param="model")  # fmt: skip
        gw.limiter.admit(identity.tenant_id, now, 1)  # a chat completion counts as one event
        now_ms = int(now * 1000)
        request_id = str(uuid.uuid4())
        call = _Call(parsed, identity, request_id, uuid7(now_ms),
                     request.headers.get(CONVERSATION_HEADER) or uuid7(now_ms), request.headers.get(SESSION_HEADER),
                     trace_id_of(request), request.headers.get("user-agent"), chat.replies.register(request_id))  # fmt: skip
        try:
            record = message_sent(parsed, identity, event_id=uuid7(now_ms), request_id=request_id,
                                  message_id=call.message_id, conversation_id=call.conversation_id,
                                  session_id=call.session_id, trace_id=call.trace_id, client=call.client, now_ms=now_ms,
                                  deadline_ms=now_ms + int(chat.total_timeout_s * 1000),
                                  reply_partition=chat.replies.partition, reply_to=chat.reply_to)  # fmt: skip
            await _send(chat, call, record, "request")
            gw.metrics.produced.labels(chat.topic).inc()
            first = await _first(chat, call, request)
        except BaseException:
            chat.replies.unregister(request_id)
            raise
        headers = {"x-request-id": request_id, CONVERSATION_HEADER: call.conversation_id}
        if parsed.stream:
            return StreamingResponse(_stream(chat, call, first), media_type="text/event-stream",
                                     headers={**headers, "cache-control": "no-cache"})  # fmt: skip
        try:
            reply = await _whole(chat, call, first, request)
        finally:
            chat.replies.unregister(request_id)
        return json_response(fmt.completion(call.cid, call.created, parsed.model, reply), headers=headers)


async def _send(chat: ChatService, call: _Call, record: dict[str, Any], kind: str) -> None:
    await chat.producer.send(
        chat.topic, call.conversation_id.encode(), chat.encoder.encode(record),
        partition=chat.partition_of(call.identity.tenant_id),
        headers=[(DISPATCH_HEADER, kind.encode()), (REQUEST_HEADER, call.request_id.encode())],
    )  # fmt: skip


async def _first(chat: ChatService, call: _Call, request: Request) -> dict[str, Any]:
    """The answer's first event; a FAILED one, silence or the client leaving become errors."""
    reply = await _next(chat, call, request, chat.first_token_timeout_s,
                        "no answer started within {:g} s: the dispatch job is not answering")  # fmt: skip
    if reply["kind"] == "FAILED":
        call.finished = True
        raise _failure(reply)
    return reply


async def _next(chat: ChatService, call: _Call, request: Request | None, timeout_s: float, silence: str) -> dict[str, Any]:
    getting = asyncio.ensure_future(call.queue.get())
    waiting: set[asyncio.Future[Any]] = {getting}
    leaving = None
    if request is not None:
        leaving = asyncio.ensure_future(_disconnected(request))
        waiting.add(leaving)
    try:
        done, _ = await asyncio.wait(waiting, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in waiting:
            if not future.done():
                future.cancel()
    if getting in done:
        return getting.result()
    if leaving is not None and leaving in done:
        _stop(chat, call)
        raise ClientGoneError("the client closed the connection before the answer")
    _stop(chat, call)
    raise AnswerTimeoutError(silence.format(timeout_s), retry_after_s=1)


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _failure(reply: dict[str, Any]) -> GatewayError:
    code = reply.get("error_code") or "provider_error"
    message = reply.get("error_message") or code
    wait = reply.get("retry_after_s") or 1.0  # the job's figure: a tenant's window, a provider's Retry-After
    return AnswerFailedError(code, message, retry_after_s=wait if reply.get("retryable") else None)


def _stop(chat: ChatService, call: _Call) -> None:
    """The client will not read the rest: tell the job to stop (in the background)."""
    if call.finished:
        return
    call.finished = True
    now_ms = int(time.time() * 1000)
    record = generation_stopped(call.identity, event_id=uuid7(now_ms), request_id=call.request_id,
                                message_id=None, conversation_id=call.conversation_id, session_id=call.session_id,
                                trace_id=call.trace_id, client=call.client, now_ms=now_ms, tokens_generated=None)  # fmt: skip

    async def send() -> None:
        try:
            await _send(chat, call, record, "stop")
        except GatewayError as exc:
            log.warning("could not send GENERATION_STOPPED for request %s: %s", call.request_id, exc)

    chat.later(send())


async def _whole(chat: ChatService, call: _Call, reply: dict[str, Any], request: Request) -> dict[str, Any]:
    """The COMPLETED event. The job sends a whole answer's first chunk only (it has started),
    so after it the wait is the rest of the request's total time, not the idle timeout."""
    deadline = time.monotonic() + chat.total_timeout_s
    while reply["kind"] != "COMPLETED":
        if reply["kind"] == "FAILED":
            call.finished = True
            raise _failure(reply)
        reply = await _next(chat, call, request, max(0.0, deadline - time.monotonic()),
                            "no whole answer within {:g} s")  # fmt: skip
    call.finished = True
    return reply


async def _stream(chat: ChatService, call: _Call, reply: dict[str, Any]) -> AsyncIterator[bytes]:
    """SSE: a role chunk, the text, the finish chunk, the usage chunk if asked, ``[DONE]``.
    Starlette cancels this when the client disconnects; ``finally`` then tells the job."""
    model, usage = call.request.model, call.request.include_usage
    try:
        yield fmt.sse(fmt.chunk(call.cid, call.created, model, {"role": "assistant", "content": ""}, include_usage=usage))
        while True:
            kind = reply["kind"]
            if kind == "CHUNK":
                if reply.get("sequence", 0) >= call.chunks:  # a repeated event is not repeated text
                    call.chunks = reply.get("sequence", 0) + 1
                    yield fmt.sse(fmt.chunk(call.cid, call.created, model, {"content": reply.get("delta") or ""},
                                            include_usage=usage))  # fmt: skip
            elif kind == "COMPLETED":
                call.finished = True
                yield fmt.sse(fmt.chunk(call.cid, call.created, model, {}, finish_reason=reply.get("finish_reason") or "stop",
                                        include_usage=usage))  # fmt: skip
                if usage:
                    yield fmt.sse(fmt.usage_chunk(call.cid, call.created, model, fmt.usage(reply)))
                yield fmt.DONE
                return
            else:  # FAILED after text was sent: OpenAI's in-stream error object, then the end
                call.finished = True
                yield fmt.sse(_failure(reply).openai_body())
                return
            try:
                reply = await _next(chat, call, None, chat.idle_timeout_s, "the answer stopped for {:g} s")
            except AnswerTimeoutError as exc:
                yield fmt.sse(exc.openai_body())
                return
    finally:
        chat.replies.unregister(call.request_id)
        _stop(chat, call)
