"""The gateway's HTTP contract with a fake producer: statuses, bodies, limits, metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest

from gateway.app import create_app
from tests.unit.gateway.fakes import FakeProducer, make_gateway, token

MESSAGE = {"type": "message_sent", "conversation_id": "c1", "message_sent": {"message_id": "m1", "text_length": 3}}


def client(producer: FakeProducer, **limits: Any) -> httpx.AsyncClient:
    app = create_app(make_gateway(producer, **limits))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


def auth(tenant: str = "acme", user: str = "alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(tenant, user)}"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def producer() -> Iterator[FakeProducer]:
    yield FakeProducer()


pytestmark = pytest.mark.anyio


async def test_a_batch_is_accepted_once_produced(producer: FakeProducer) -> None:
    async with client(producer) as c:
        answer = await c.post("/v1/events", json={"events": [MESSAGE, MESSAGE]}, headers=auth())
    assert answer.status_code == 202
    body = answer.json()
    assert body["accepted"] == 2 and len(set(body["event_ids"])) == 2
    assert [t for t, _, _ in producer.sent] == ["chat.actions.v1"] * 2


async def test_a_single_event_is_a_batch_of_one(producer: FakeProducer) -> None:
    async with client(producer) as c:
        answer = await c.post("/v1/events", json=MESSAGE, headers=auth())
    assert answer.status_code == 202 and answer.json()["accepted"] == 1


async def chunked(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b"{nope", True, 400, "malformed_request"),
        (b"[1, 2]", True, 400, "malformed_request"),
        (b'{"events": []}', True, 400, "malformed_request"),
        (b'{"events": [], "extra": 1}', True, 400, "malformed_request"),
        (orjson.dumps({"type": "nope"}), True, 422, "invalid_events"),
        (orjson.dumps({**MESSAGE, "tenant_id": "other"}), True, 403, "forbidden"),
        (orjson.dumps(MESSAGE), False, 401, "unauthorized"),
        (orjson.dumps({"events": [MESSAGE] * 11}), True, 413, "payload_too_large"),
        (b'{"type": "' + b"x" * 5000 + b'"}', True, 413, "payload_too_large"),
    ],
)
async def test_bad_requests_get_their_status_and_nothing_is_produced(
    producer: FakeProducer, body: bytes, headers: bool, status: int, code: str
) -> None:
    async with client(producer, max_events=10, max_bytes=4096) as c:
        answer = await c.post("/v1/events", content=body, headers=auth() if headers else {})
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code
    assert producer.sent == []


async def test_a_chunked_body_over_the_limit_is_refused_while_streaming(producer: FakeProducer) -> None:
    parts = [b'{"events": ['] + [orjson.dumps(MESSAGE) + b","] * 200 + [orjson.dumps(MESSAGE) + b"]}"]
    async with client(producer, max_bytes=4096) as c:
        answer = await c.post("/v1/events", content=chunked(parts), headers=auth())
    assert answer.status_code == 413
    assert producer.sent == []


async def test_422_lists_every_bad_event_and_accepts_none(producer: FakeProducer) -> None:
    events = [MESSAGE, {"type": "nope"}, {**MESSAGE, "message_sent": {"message_id": "m", "text_length": "x"}}]
    async with client(producer) as c:
        answer = await c.post("/v1/events", json={"events": events}, headers=auth())
    assert answer.status_code == 422
    details = answer.json()["error"]["details"]
    assert [(d["index"], d["field"]) for d in details] == [(1, "type"), (2, "message_sent.text_length")]
    assert producer.sent == []


async def test_kafka_down_is_503_with_retry_after(producer: FakeProducer) -> None:
    producer.down = True
    async with client(producer) as c:
        answer = await c.post("/v1/events", json=MESSAGE, headers=auth())
        ready = await c.get("/readyz")
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
    assert answer.json()["error"]["code"] == "kafka_unavailable"
    assert ready.status_code == 503 and ready.json()["checks"] == {"kafka": False}


async def test_rate_limit_is_per_tenant_with_retry_after(producer: FakeProducer) -> None:
    async with client(producer, rate=1, burst=3) as c:
        first = await c.post("/v1/events", json={"events": [MESSAGE] * 3}, headers=auth("flood"))
        limited = await c.post("/v1/events", json=MESSAGE, headers=auth("flood"))
        other = await c.post("/v1/events", json=MESSAGE, headers=auth("calm"))
    assert first.status_code == 202
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert other.status_code == 202


async def test_health_openapi_and_metrics(producer: FakeProducer) -> None:
    async with client(producer) as c:
        await c.post("/v1/events", json=MESSAGE, headers=auth())
        await c.post("/v1/events", json={"type": "nope"}, headers=auth())
        health = await c.get("/healthz")
        spec = await c.get("/openapi.json")
        metrics = (await c.get("/metrics")).text
    assert health.json() == {"status": "ok"}
    assert "/v1/events" in spec.json()["paths"]
    assert 'chatstream_gateway_requests_total{route="/v1/events",status="202"} 1.0' in metrics
    assert 'chatstream_gateway_rejections_total{reason="invalid_events"} 1.0' in metrics
    assert 'chatstream_gateway_events_produced_total{topic="chat.actions.v1"} 1.0' in metrics


async def test_a_batch_over_the_burst_is_refused_whole_not_let_through(producer: FakeProducer) -> None:
    """A batch the bucket could never hold is the client's to split: 413 saying why, not a 429
    it could retry forever (nor a pass that bypasses the limiter)."""
    async with client(producer, rate=200, burst=400) as c:
        answer = await c.post("/v1/events", json={"events": [MESSAGE] * 401}, headers=auth())
        fits = await c.post("/v1/events", json={"events": [MESSAGE] * 400}, headers=auth())
    assert answer.status_code == 413
    assert "burst of 400 events" in answer.json()["error"]["message"]
    assert fits.status_code == 202 and len(producer.sent) == 400


async def test_an_event_larger_than_a_kafka_record_is_the_clients_fault(producer: FakeProducer) -> None:
    big = {**MESSAGE, "message_sent": {"message_id": "m" * 5000, "text_length": 3}}
    async with client(producer, max_event_bytes=4096) as c:
        answer = await c.post("/v1/events", json={"events": [MESSAGE, big]}, headers=auth())
    assert answer.status_code == 413 and "Retry-After" not in answer.headers
    error = answer.json()["error"]
    assert [d["index"] for d in error["details"]] == [1] and "at most 4096" in error["details"][0]["message"]
    assert producer.sent == []
