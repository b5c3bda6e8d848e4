"""The chat API client of the bench and the demo, against a loopback server that answers as the
gateway does: SSE over chunked bodies (events split across chunks), errors with a length."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import orjson
import pytest

from bench.sse_client import ChatConnection, ChatResult, LoopResult, closed_loop

T = TypeVar("T")


def _chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
    body = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + orjson.dumps(body) + b"\n\n"


STREAM = (_chunk({"role": "assistant", "content": ""}) + _chunk({"content": "Hello "}) + _chunk({"content": "there."})
          + _chunk({}, "stop") + b"data: [DONE]\n\n")  # fmt: skip


def _chunked(body: bytes, size: int) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def _answer(path_kind: bytes) -> bytes:
    if path_kind == b"stream":
        head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-request-id: r-1\r\ncontent-type: text/event-stream\r\n\r\n"
        return head + _chunked(STREAM, 37)  # events cut mid-line
    if path_kind == b"broken":
        error = b'data: {"error": {"code": "provider_error", "message": "x"}}\n\n'
        head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        return head + _chunked(_chunk({"content": "Hel"}) + error, 1000)
    body = b'{"error": {"code": "rate_limited", "message": "slow down"}}'
    return b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)


OPEN: set[asyncio.StreamWriter] = set()


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    OPEN.add(writer)
    try:
        while line := await reader.readline():
            length = 0
            while (header := await reader.readline()) != b"\r\n":
                if header.lower().startswith(b"content-length:"):
                    length = int(header.split(b":")[1])
            writer.write(_answer(await reader.readexactly(length)))
            await writer.drain()
    finally:
        OPEN.discard(writer)
        writer.close()


def _request(kind: bytes) -> bytes:
    return b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\ncontent-length: %d\r\n\r\n%s" % (len(kind), kind)


async def _with_server(work: Callable[[int], Awaitable[T]]) -> T:
    server = await asyncio.start_server(_serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        return await work(port)
    finally:
        server.close()
        for writer in list(OPEN):
            writer.close()
        await asyncio.sleep(0.05)  # the handlers see their connections close
        await server.wait_closed()


@pytest.mark.timeout(20)
def test_a_stream_split_anywhere_is_read_whole_and_the_connection_kept() -> None:
    async def work(port: int) -> list[ChatResult]:
        connection = ChatConnection("127.0.0.1", port)
        try:
            return [await connection.chat(_request(kind)) for kind in (b"stream", b"limited", b"stream", b"broken")]
        finally:
            connection.close()

    stream, limited, again, broken = asyncio.run(_with_server(work))
    assert stream.status == 200 and stream.completed and stream.error is None
    assert stream.request_id == "r-1" and stream.content_chunks == 2
    assert stream.ttft_s is not None and 0 <= stream.ttft_s <= stream.latency_s
    assert limited.status == 429 and not limited.completed and limited.error == "rate_limited"
    assert again.completed  # the same connection, after an error with a body
    assert not broken.completed and broken.error == "provider_error" and broken.ttft_s is not None


@pytest.mark.timeout(20)
def test_closed_loop_sends_the_count_over_its_connections() -> None:
    async def work(port: int) -> LoopResult:
        return await closed_loop("127.0.0.1", port, [_request(b"stream")], concurrency=3, count=10)

    loop = asyncio.run(_with_server(work))
    assert len(loop.results) == 10 and all(r.completed for r in loop.results)
    assert loop.completed_between(loop.started_s, loop.started_s + loop.elapsed_s + 1) == 10


def test_a_refused_connection_is_a_result_not_an_exception() -> None:
    async def work() -> ChatResult:
        server = await asyncio.start_server(_serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        return await ChatConnection("127.0.0.1", port).chat(_request(b"stream"), timeout_s=5)

    result = asyncio.run(work())
    assert result.status == 0 and not result.completed and result.error == "client: ConnectionRefusedError"
