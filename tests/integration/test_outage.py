"""The broker SIGKILLed while requests are in flight: every answer is true, and the gateway
recovers without a restart.

Exact accounting by client-supplied event id, in Kafka (read_committed) and in both stores:
every event of a 202 is stored exactly once, no event of a 503 is stored anywhere, and a 504
(the commit's outcome unknown) is retried with the same ids afterwards, as clients are told to,
and then stored exactly once too.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from chatstream.ids import uuid7
from chatstream.settings import Settings
from infra.local.kafka import LocalKafka
from infra.local.process import read_pid
from pipelines.sinks import CONSUMER_GROUPS
from tests.integration.platform import Component, bearer, wait_gateway_ready
from tests.integration.test_dead_letters import run_sink_until_caught_up
from tests.integration.test_ingest import consume_tenant

POSTERS = 3


@dataclass
class Traffic:
    answers: list[tuple[float, int, list[dict[str, Any]], str | None]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


def post_until_stopped(settings: Settings, tenant: str, traffic: Traffic, poster: int) -> None:
    headers = bearer(settings, tenant)
    with httpx.Client(base_url=settings.gateway_url, timeout=30) as client:
        while not traffic.stop.is_set():
            now = int(time.time() * 1000)
            events = [{"type": "session_started", "event_id": uuid7(now), "occurred_at": now,
                       "session_id": f"s{poster}-{i}"} for i in range(10)]  # fmt: skip
            answer = client.post("/v1/events", content=orjson.dumps({"events": events}), headers=headers)
            traffic.answers.append((time.monotonic(), answer.status_code, events, answer.headers.get("retry-after")))
            time.sleep(0.01)


def ids_of(answers: list[tuple[float, int, list[dict[str, Any]], str | None]], status: int) -> set[str]:
    return {e["event_id"] for _, code, events, _ in answers if code == status for e in events}


@pytest.fixture
def gateway(running_stack: Settings) -> Iterator[Component]:
    component = Component(running_stack, "gateway", env={"CHATSTREAM_ACK_TIMEOUT_S": "3"}).start()
    wait_gateway_ready(running_stack, component)
    yield component
    assert component.stop() == 0, component.log_tail()


def test_a_broker_killed_under_load_gets_only_true_answers_and_exact_accounting(
    running_stack: Settings, gateway: Component, clickhouse: Callable[..., Any], unique: str
) -> None:
    settings = running_stack
    tenant = f"outage-{unique}"
    traffic = Traffic()
    posters = [threading.Thread(target=post_until_stopped, args=(settings, tenant, traffic, n)) for n in range(POSTERS)]
    for poster in posters:
        poster.start()
    kafka = LocalKafka(settings)
    try:
        time.sleep(2)
        pid = read_pid(kafka.pid_file)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        time.sleep(5)
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
        for poster in posters:
            poster.join(timeout=60)
        if not kafka.running():
            kafka.start()

    statuses = Counter(status for _, status, _, _ in traffic.answers)
    assert set(statuses) <= {202, 503, 504}, statuses
    assert statuses[503] + statuses[504], f"no request noticed the broker's death: {statuses}"
    assert all(retry_after is not None and int(retry_after) >= 1 for _, s, _, retry_after in traffic.answers if s != 202)
    assert any(t < killed_at and status == 202 for t, status, _, _ in traffic.answers)
    assert any(t > restarted_at and status == 202 for t, status, _, _ in traffic.answers), "gateway did not recover"
    assert gateway.running()

    # what clients are told to do with a 504: send the same events again
    unknown = [events for _, status, events, _ in traffic.answers if status == 504]
    with httpx.Client(base_url=settings.gateway_url, timeout=30, headers=bearer(settings, tenant)) as client:
        for events in unknown:
            assert client.post("/v1/events", content=orjson.dumps({"events": events})).status_code == 202

    accepted = ids_of(traffic.answers, 202) | ids_of(traffic.answers, 504)
    refused = ids_of(traffic.answers, 503)
    in_kafka = Counter(str(r["event_id"]) for r in consume_tenant(settings, tenant, expected=len(accepted)))
    assert accepted <= set(in_kafka), f"{len(accepted - set(in_kafka))} events answered 202 are not in Kafka"
    assert not refused & set(in_kafka), f"{len(refused & set(in_kafka))} events answered 503 are in Kafka"
    once = {i for i in accepted if i not in ids_of(traffic.answers, 504)}
    assert all(in_kafka[i] == 1 for i in once), "an event answered 202 once is in Kafka twice"

    for kind in CONSUMER_GROUPS:
        run_sink_until_caught_up(settings, kind)
    with psycopg.connect(settings.postgres_url()) as conn:
        pg = Counter(str(r[0]) for r in conn.execute("SELECT event_id FROM chat_events WHERE tenant_id = %s", (tenant,)))
    ch = Counter(str(r[0]) for r in clickhouse(
        ("query", f"SELECT event_id FROM chat_events FINAL WHERE tenant_id = '{tenant}'", None)))  # fmt: skip
    for store, rows in (("postgres", pg), ("clickhouse", ch)):
        assert set(rows) == accepted, f"{store}: {len(accepted - set(rows))} accepted missing, {len(set(rows) - accepted)} others"
        assert max(rows.values()) == 1, f"{store}: duplicates"
