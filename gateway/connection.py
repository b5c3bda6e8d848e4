"""uvicorn's httptools protocol with the two limits it lacks: how large a request's head may be,
and how long a client may take to send a request.

- A head (request line and headers) over ``max_head_bytes`` is answered 431 and the connection
  closed as soon as that many bytes arrived without the head ending: at most one socket read
  beyond the limit is ever buffered, whatever the client sends.
- A connection that does not deliver a whole request (head and body) within ``read_timeout_s``
  of opening or of starting the request is answered 408 (if no answer has started) and closed:
  stalled clients do not hold connections open. The time the app takes to answer is not
  counted, and idle keep-alive connections stay uvicorn's (``timeout_keep_alive``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol


def guarded_protocol(max_head_bytes: int, read_timeout_s: float) -> type[HttpToolsProtocol]:
    """The protocol class uvicorn's ``http`` option takes, with these limits."""

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._head_bytes = 0
            self._in_head = True
            self._refused = False
            self._read_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            if self._in_head:
                self._head_bytes += len(data)
            super().data_received(data)
            if self._in_head and self._head_bytes > max_head_bytes and not self._refused:
                self._refuse(431, "headers_too_large", f"request line and headers over {max_head_bytes} bytes")

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_head = True
            self._arm()

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._head_bytes = 0
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._disarm()
            self._in_head = True
            super().on_message_complete()

        def send_400_response(self, msg: str) -> None:
            if not self._refused:  # after a refusal the parser may still complain: one answer only
                super().send_400_response(msg)

        def _arm(self) -> None:
            self._disarm()
            self._read_timer = self.loop.call_later(read_timeout_s, self._read_timed_out)

        def _disarm(self) -> None:
            if self._read_timer is not None:
                self._read_timer.cancel()
                self._read_timer = None

        def _read_timed_out(self) -> None:
            self._read_timer = None
            if self.transport.is_closing():
                return
            if self.cycle is not None and self.cycle.response_started:
                self.transport.close()
                return
            self._refuse(408, "request_timeout", f"the request was not complete within {read_timeout_s:g}s")

        def _refuse(self, status: int, code: str, message: str) -> None:
            """Answer with the gateway's error body and close (the app never sees the request)."""
            self._refused = True
            self._disarm()
            if self.cycle is not None and not self.cycle.response_complete:
                self.cycle.disconnected = True  # the app, if it runs, stops waiting for the body
                self.cycle.message_event.set()
            body = orjson.dumps({"error": {"code": code, "message": message}})
            head = [STATUS_LINE[status], b"content-type: application/json\r\n",
                    b"content-length: %d\r\n" % len(body), b"connection: close\r\n\r\n"]  # fmt: skip
            self.transport.write(b"".join(head) + body)
            self.transport.close()

    return GuardedHttpToolsProtocol
