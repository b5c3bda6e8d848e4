"""A lean client of the chat API (``POST /v1/chat/completions``) for benchmarks and the demo.

HTTP/1.1 over keep-alive connections, pre-built request bytes (``bench.loadgen.build_request``),
and a streaming reader of the answer: the chunked body is read as it arrives and split into SSE
events, so the time to first token is taken when the first ``data:`` chunk with non-empty
``delta.content`` is read, not when the answer ends. A whole answer (``stream: false``) and an
error (any non-200 status, or OpenAI's in-stream error object) are read too. Loopback only: no
TLS, no redirects, no proxies; CPU per request is a few tens of microseconds, so on a 2-core
machine the client takes little from the server it measures (``bench.dispatch`` reports it).

:func:`closed_loop` keeps a fixed number of requests in flight (each connection sends its next
request as soon as its answer ended) for a duration or a count.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import orjson

REQUEST_TIMEOUT_S = 60.0


@dataclass
class ChatResult:
    """One request's answer as the client saw it; times from ``time.perf_counter``."""

    sent_s: float
    wall_sent_s: float  # time.time() when sent: comparable with other processes' timestamps
    status: int = 0  # 0: no HTTP answer (connection failed, timed out)
    ttft_s: float | None = None  # to the first non-empty delta.content (streams only)
    ended_s: float = 0.0
    completed: bool = False  # 200 and the whole answer: a finish_reason and [DONE], or a chat.completion
    error: str | None = None  # OpenAI error code (HTTP or in-stream), or the client's reason
    request_id: str | None = None  # the gateway's X-Request-Id
    content_chunks: int = 0

    @property
    def latency_s(self) -> float:
        return self.ended_s - self.sent_s


class ProtocolError(Exception):
    """The server's answer is not the HTTP/SSE this client reads."""


class ChatConnection:
    """One keep-alive connection; :meth:`chat` sends a request and reads its whole answer."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def chat(self, request: bytes, timeout_s: float = REQUEST_TIMEOUT_S) -> ChatResult:
        """Never raises for the server's or the network's faults: they are in the result."""
        result = ChatResult(sent_s=time.perf_counter(), wall_sent_s=time.time())
        try:
            if self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            result.sent_s, result.wall_sent_s = time.perf_counter(), time.time()
            self._writer.write(request)
            keep = await asyncio.wait_for(self._answer(result), timeout_s)
            if not keep:
                self.close()
        except (OSError, asyncio.IncompleteReadError, ProtocolError, TimeoutError) as exc:
            result.error = result.error or f"client: {type(exc).__name__}"
            result.completed = False
            self.close()
        result.ended_s = time.perf_counter()
        return result

    async def _answer(self, result: ChatResult) -> bool:
        """Read one response into ``result``; whether the connection may be reused."""
        assert self._reader is not None
        reader = self._reader
        status_line = await reader.readline()
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ProtocolError(f"not an HTTP status line: {status_line[:80]!r}")
        result.status = int(parts[1])
        length, chunked, keep = 0, False, True
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                keep = value.lower() != b"close"
            elif name == b"x-request-id":
                result.request_id = value.decode()
        if chunked:
            events = _EventReader(result)
            while (size_line := await reader.readline()) not in (b"0\r\n", b""):
                size = int(size_line.split(b";", 1)[0], 16)
                events.feed((await reader.readexactly(size + 2))[:-2])
            while (await reader.readline()) not in (b"\r\n", b""):  # trailers
                pass
            events.end()
        else:
            _whole(result, await reader.readexactly(length) if length else b"")
        return keep

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


class _EventReader:
    """SSE events of a streamed answer, fed as HTTP chunks arrive (an event may span chunks)."""

    def __init__(self, result: ChatResult) -> None:
        self.result = result
        self.buffer = b""
        self.finished = False  # a finish_reason came
        self.done = False  # data: [DONE]

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\n\n")) >= 0:
            event, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
            for line in event.split(b"\n"):
                if line.startswith(b"data:"):
                    self._data(line[5:].strip())

    def _data(self, payload: bytes) -> None:
        result = self.result
        if payload == b"[DONE]":
            self.done = True
            return
        body = orjson.loads(payload)
        if "error" in body:
            result.error = str((body["error"] or {}).get("code") or "stream_error")
            return
        for choice in body.get("choices") or ():
            if (choice.get("delta") or {}).get("content"):
                result.content_chunks += 1
                if result.ttft_s is None:
                    result.ttft_s = time.perf_counter() - result.sent_s
            if choice.get("finish_reason"):
                self.finished = True

    def end(self) -> None:
        result = self.result
        if result.status != 200:
            _whole(result, self.buffer)
            return
        result.completed = self.finished and self.done and result.error is None
        if not result.completed and result.error is None:
            result.error = "client: the stream ended without a finish"


def _whole(result: ChatResult, body: bytes) -> None:
    """A response with a length: a ``chat.completion``, or an error body."""
    try:
        parsed = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        parsed = {}
    if result.status == 200 and parsed.get("object") == "chat.completion":
        result.completed = True
        return
    error = parsed.get("error") if isinstance(parsed, dict) else None
    result.error = str((error or {}).get("code") or f"http_{result.status}")


@dataclass
class LoopResult:
    results: list[ChatResult] = field(default_factory=list)
    started_s: float = 0.0
    elapsed_s: float = 0.0

    def completed_between(self, start_s: float, end_s: float) -> int:
        """Answers completed within [start_s, end_s) of perf_counter time."""
        return sum(1 for r in self.results if r.completed and start_s <= r.ended_s < end_s)


async def closed_loop(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    concurrency: int,
    duration_s: float | None = None,
    count: int | None = None,
    on_result: Callable[[ChatResult], None] = lambda _: None,
    timeout_s: float = REQUEST_TIMEOUT_S,
) -> LoopResult:
    """``concurrency`` connections, each sending its next request (cycling through ``requests``)
    as soon as its answer ended, until ``duration_s`` has passed or ``count`` were sent; the
    answers in flight then are read to their end."""
    if duration_s is None and count is None:
        raise ValueError("give duration_s or count")
    loop = LoopResult(started_s=time.perf_counter())
    deadline = loop.started_s + duration_s if duration_s is not None else float("inf")
    numbers = itertools.count()

    async def connection() -> None:
        conn = ChatConnection(host, port)
        try:
            while time.perf_counter() < deadline:
                n = next(numbers)
                if count is not None and n >= count:
                    return
                result = await conn.chat(requests[n % len(requests)], timeout_s)
                loop.results.append(result)
                on_result(result)
        finally:
            conn.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    loop.elapsed_s = time.perf_counter() - loop.started_s
    return loop


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``values``; NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
