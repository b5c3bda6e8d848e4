"""The gateway's ASGI app: the clients' only door.

``create_app`` takes its collaborators ready-made (producer, verifier, limiter, event shape), so
tests and ``main`` wire it the same way; nothing here reads settings or the environment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from chatstream.ops_publisher import OpsPublisher

from gateway import openapi
from gateway.analytics import add_analytics_routes
from gateway.analytics_store import AnalyticsStore
from gateway.auth import TokenVerifier
from gateway.chat import ChatService, add_chat_routes
from gateway.dashboard import add_dashboard
from gateway.errors import (
    ForbiddenError,
    GatewayError,
    InvalidEventsError,
    MalformedRequestError,
    PayloadTooLargeError,
)
from gateway.events import ChatActionShape
from gateway.http import json_response, read_body, trace_id_of
from gateway.metrics import GatewayMetrics
from gateway.producer import EventProducer
from gateway.ratelimit import TenantLimiter
from pipelines.topics import CHAT_ACTIONS

EVENTS_TOPIC = CHAT_ACTIONS.name
OPENAI_ROUTES = ("/v1/chat/completions", "/v1/models")  # errors in OpenAI's shape there

@dataclass(frozen=True)
class Limits:
    max_batch_events: int
    max_body_bytes: int
    max_event_bytes: int = 1_000_000  # one encoded event (key and value): what the topic takes


@dataclass
class Gateway:
    producer: EventProducer
    verifier: TokenVerifier
    limiter: TenantLimiter
    shape: ChatActionShape
    limits: Limits
    metrics: GatewayMetrics
    ready_checks: dict[str, Callable[[], bool]]
    chat: ChatService | None = None  # the OpenAI-compatible chat API, when the routing config is there
    analytics: AnalyticsStore | None = None  # the analytics API's ClickHouse, when configured
    ops: OpsPublisher | None = None  # this worker's load to ops.metrics.v1


def parse_events(body: bytes, max_events: int) -> list[Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequestError(f"body is not valid JSON: {exc}") from exc
    if isinstance(payload, dict) and "events" in payload:
        events = payload["events"]
        if not isinstance(events, list) or set(payload) != {"events"}:
            raise MalformedRequestError('a batch is {"events": [event, ...]} and nothing else')
    elif isinstance(payload, dict):
        events = [payload]
    else:
        raise MalformedRequestError('send one event object or {"events": [...]}')
    if not events:
        raise MalformedRequestError("the batch is empty")
    if len(events) > max_events:
        raise PayloadTooLargeError(f"{len(events)} events in one request; the limit is {max_events}")
    return events


class MeasureMiddleware:
    """Request count and latency by route: a plain ASGI middleware (no per-request task)."""

    def __init__(self, app: Any, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_and_note(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(path, str(status[0])).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - started)


def create_app(gw: Gateway) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if gw.chat is not None:
            gw.chat.replies.start(asyncio.get_running_loop())
        if gw.ops is not None:
            await asyncio.to_thread(gw.ops.start)
        yield
        if gw.ops is not None:
            await asyncio.to_thread(gw.ops.close)
        await asyncio.to_thread(gw.producer.close)
        if gw.chat is not None:
            await asyncio.to_thread(gw.chat.producer.close)
            await asyncio.to_thread(gw.chat.replies.close)
        if gw.analytics is not None:
            gw.analytics.close()

    app = FastAPI(
        title="chatstream gateway",
        version="1",
        lifespan=lifespan,
    )

    @app.exception_handler(GatewayError)
    async def refused(request: Request, exc: GatewayError) -> Response:
        gw.metrics.rejections.labels(exc.code).inc()
        openai = request.url.path in OPENAI_ROUTES
        return json_response(exc.openai_body() if openai else exc.body(), exc.status, exc.headers())

    app.add_middleware(MeasureMiddleware, metrics=gw.metrics)

    body = openapi.body_schema(gw.shape.schema, gw.limits.max_batch_events)

    @app.post(
        "/v1/events",
        status_code=202,
        summary="Post one chat action or a batch; 202 only once Kafka committed every event.",
        responses={202: openapi.ACCEPTED, **openapi.error_responses(400, 401, 403, 408, 413, 422, 429, 431, 503, 504)},
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": body}}}},
    )
    async def post_events(request: Request) -> Response:
        identity = gw.verifier.verify(request.headers.get("authorization"))
        now = time.time()
        gw.limiter.admit(identity.tenant_id, now)
        body = await read_body(request, gw.limits.max_body_bytes)
        events = parse_events(body, gw.limits.max_batch_events)
        if len(events) > gw.limiter.burst:
            raise PayloadTooLargeError(
                f"{len(events)} events in one request is over tenant {identity.tenant_id}'s burst of "
                f"{gw.limiter.burst:g} events; send smaller batches")  # fmt: skip
        result = gw.shape.normalize(events, identity, now_ms=int(now * 1000), trace_id=trace_id_of(request),
                                    check_nul=b"\\u0000" in body)  # JSON's only way to write a NUL  # fmt: skip
        if result.forbidden:
            raise ForbiddenError(
                "events name another tenant or user than the token",
                details=[e.to_json() for e in result.forbidden],
            )
        if result.errors:
            raise InvalidEventsError(
                f"{len({e.index for e in result.errors})} of {len(events)} events are invalid; none was accepted",
                details=[e.to_json() for e in result.errors],
            )
        too_large = [{"index": i, "field": "", "message": f"{len(k) + len(v)} bytes encoded; Kafka takes at most "
                      f"{gw.limits.max_event_bytes}"} for i, (k, v) in enumerate(result.encoded)
                     if len(k) + len(v) > gw.limits.max_event_bytes]  # fmt: skip
        if too_large:
            raise PayloadTooLargeError("events too large for one Kafka record; none was accepted", details=too_large)
        gw.limiter.admit(identity.tenant_id, now, len(events))
        await gw.producer.send(EVENTS_TOPIC, result.encoded)
        gw.metrics.produced.labels(EVENTS_TOPIC).inc(len(result.encoded))
        return json_response({"accepted": len(result.event_ids), "event_ids": result.event_ids}, 202)

    if gw.chat is not None:
        add_chat_routes(app, gw, gw.chat)
    if gw.analytics is not None:
        add_analytics_routes(app, gw.verifier, gw.analytics)
    add_dashboard(app)

    @app.get("/healthz", summary="The process is alive.")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Kafka, the events topic and the schema registry are there.",
             responses={200: {"description": "Ready.", "content": {"application/json": {"schema": openapi.READINESS}}},
                        503: {"description": "Not ready: the checks that failed are false.",
                              "content": {"application/json": {"schema": openapi.READINESS}}}})  # fmt: skip
    async def readyz() -> Response:
        checks = {name: await asyncio.to_thread(check) for name, check in gw.ready_checks.items()}
        status = 200 if all(checks.values()) else 503
        return json_response({"ready": status == 200, "checks": checks}, status)

    @app.get("/metrics", summary="Prometheus metrics.", response_class=Response, responses={200: openapi.METRICS})
    async def metrics() -> Response:
        return Response(gw.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return app
