"""A real HTTP/1.1 server on 127.0.0.1 for the provider tests, in the test's own event loop.

It answers each request with the next scripted :class:`Reply`, records what it received, counts
connections, and notices when a client goes away in the middle of a stream. Just enough HTTP:
request bodies with ``Content-Length``, keep-alive, responses with ``Content-Length`` or chunked
(one chunk per server-sent event, so the client sees them arrive one by one).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

FIXTURES = Path(__file__).parents[3] / "fixtures" / "openai"


def fixture_events(name: str) -> list[bytes | float]:
    """A recorded stream split into its events (each ending with its blank line)."""
    raw = (FIXTURES / name).read_bytes()
    return [event + b"\n\n" for event in raw.split(b"\n\n") if event]


def fixture_body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@dataclass
class Reply:
    """One response. ``events`` (bytes to send as one chunk, or a float: seconds to wait first)
    makes it a chunked ``text/event-stream``; otherwise ``body`` is sent with its length."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    events: list[bytes | float] | None = None
    delay_s: float = 0.0  # before the status line
    hold_open: bool = False  # after the events, wait for the client to leave
    complete: bool = True  # False: close the connection without ending the chunked body


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class SSEServer:
    def __init__(self, *replies: Reply) -> None:
        self._replies = list(replies)
        self.requests: list[Received] = []
        self.connections = 0
        self.client_left = asyncio.Event()  # a client closed while a stream was held open
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def __aenter__(self) -> SSEServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            while await self._answer_one(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _answer_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Read one request and answer it; False when the connection is to be closed."""
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")[:-2]
        method, path, _ = request_line.split(" ", 2)
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append(Received(method, path, headers, body))
        reply = self._replies.pop(0) if self._replies else Reply(status=599, body=b"no reply scripted")
        await asyncio.sleep(reply.delay_s)
        return await self._send(reply, reader, writer)

    async def _send(
        self, reply: Reply, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        streamed = reply.events is not None
        headers = {
            "content-type": "text/event-stream" if streamed else "application/json",
            **{name.lower(): value for name, value in reply.headers.items()},
        }
        if streamed:
            headers["transfer-encoding"] = "chunked"
        else:
            headers["content-length"] = str(len(reply.body))
        lines = [f"HTTP/1.1 {reply.status} Scripted"] + [f"{k}: {v}" for k, v in headers.items()]
        head = "\r\n".join(lines) + "\r\n\r\n"
        writer.write(head.encode("latin-1"))
        if not streamed:
            writer.write(reply.body)
            await writer.drain()
            return True
        for item in reply.events or []:
            if isinstance(item, float):
                await asyncio.sleep(item)
                continue
            writer.write(b"%x\r\n%s\r\n" % (len(item), item))
            await writer.drain()
        if reply.hold_open:
            try:
                while await reader.read(1024):
                    pass
            except ConnectionError:
                pass
            self.client_left.set()
            return False
        if not reply.complete:
            return False
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True
