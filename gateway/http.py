"""HTTP pieces every gateway route shares: the body within its limit, the trace id, JSON replies."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from fastapi import Request, Response
from starlette.requests import ClientDisconnect

from gateway.errors import MalformedRequestError, PayloadTooLargeError


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it passes ``limit`` (declared or streamed, chunked too)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"body of {declared} bytes is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLargeError(f"body is over the {limit}-byte limit")
            chunks.append(chunk)
    except ClientDisconnect as exc:  # gone, or too slow (gateway.connection answered 408)
        raise MalformedRequestError("the connection closed before the body ended") from exc
    return b"".join(chunks)


def trace_id_of(request: Request) -> str:
    """The W3C traceparent's trace id when the client sent one, else a new one."""
    parent = request.headers.get("traceparent", "")
    parts = parent.split("-")
    if len(parts) == 4 and len(parts[1]) == 32:
        return parts[1]
    return uuid.uuid4().hex


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type="application/json")
