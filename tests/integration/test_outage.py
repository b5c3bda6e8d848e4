"""Kafka stopped while requests are in flight: 503s, never a false 202, and recovery without a
gateway restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import orjson
import pytest

from chatstream.ids import uuid7
from chatstream.settings import Settings
from infra.local.kafka import LocalKafka
from tests.integration.platform import Component, bearer, wait_gateway_ready
from tests.integration.test_ingest import consume_tenant


@dataclass
class Traffic:
    answers: list[tuple[float, int, list[str], str | None]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


def post_until_stopped(settings: Settings, tenant: str, traffic: Traffic) -> None:
    headers = bearer(settings, tenant)
    with httpx.Client(base_url=settings.gateway_url, timeout=30) as client:
        while not traffic.stop.is_set():
            now = int(time.time() * 1000)
            events = [{"type": "session_started", "event_id": uuid7(now), "occurred_at": now, "session_id": f"s{i}"}
                      for i in range(10)]  # fmt: skip
            answer = client.post("/v1/events", content=orjson.dumps({"events": events}), headers=headers)
            ids = [e["event_id"] for e in events]
            traffic.answers.append((time.monotonic(), answer.status_code, ids, answer.headers.get("retry-after")))
            time.sleep(0.02)


@pytest.fixture
def gateway(running_stack: Settings) -> Iterator[Component]:
    component = Component(running_stack, "gateway", env={"CHATSTREAM_ACK_TIMEOUT_S": "3"}).start()
    wait_gateway_ready(running_stack, component)
    yield component
    assert component.stop() == 0, component.log_tail()


def test_kafka_outage_gives_503_never_a_false_202_and_recovers(
    running_stack: Settings, gateway: Component, unique: str
) -> None:
    settings = running_stack
    tenant = f"outage-{unique}"
    traffic = Traffic()
    poster = threading.Thread(target=post_until_stopped, args=(settings, tenant, traffic))
    poster.start()
    kafka = LocalKafka(settings)
    try:
        time.sleep(1.5)
        kafka.stop()
        stopped_at = time.monotonic()
        time.sleep(8)
        kafka.start()
        restarted_at = time.monotonic()
        deadline = restarted_at + 90
        while time.monotonic() < deadline:
            if any(t > restarted_at and status == 202 for t, status, _, _ in traffic.answers):
                break
            time.sleep(0.5)
        time.sleep(1)
    finally:
        traffic.stop.set()
        poster.join(timeout=60)
        if not kafka.running():
            kafka.start()

    statuses = [status for _, status, _, _ in traffic.answers]
    assert set(statuses) <= {202, 503}, statuses
    unavailable = [a for a in traffic.answers if a[1] == 503]
    assert unavailable, "no request noticed the outage"
    assert all(retry_after is not None and int(retry_after) >= 1 for *_, retry_after in unavailable)
    assert any(t < stopped_at and status == 202 for t, status, _, _ in traffic.answers)
    assert any(t > restarted_at and status == 202 for t, status, _, _ in traffic.answers), "gateway did not recover"
    assert gateway.running()

    accepted = {event_id for _, status, ids, _ in traffic.answers if status == 202 for event_id in ids}
    in_kafka = {str(r["event_id"]) for r in consume_tenant(settings, tenant, expected=len(accepted))}
    assert accepted <= in_kafka, f"{len(accepted - in_kafka)} events answered 202 are not in Kafka"
