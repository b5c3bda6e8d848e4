"""The broker SIGKILLed while requests are in flight: every answer is true, and the gateway
recovers without a restart.

Exact accounting by client-supplied event id, in Kafka (read_committed) and in both stores
(``tests.integration.accounting``).
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chatstream.settings import Settings
from infra.local.kafka import LocalKafka
from infra.local.process import read_pid
from tests.integration.accounting import Traffic, assert_exactly_once_in_both_stores, retry_unknown
from tests.integration.platform import Component, wait_gateway_ready
from tests.integration.test_ingest import consume_tenant

POSTERS = 3


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
    traffic = Traffic(settings, f"outage-{unique}").start(POSTERS)
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
        while time.monotonic() < deadline and not traffic.accepted_after(restarted_at):
            time.sleep(0.5)
        time.sleep(1)
    finally:
        traffic.finish()
        if not kafka.running():
            kafka.start()

    statuses = traffic.statuses()
    assert set(statuses) <= {202, 503, 504}, statuses
    assert statuses[503] + statuses[504], f"no request noticed the broker's death: {statuses}"
    assert all(retry_after is not None and int(retry_after) >= 1 for _, s, _, retry_after in traffic.answers if s != 202)
    assert any(t < killed_at and status == 202 for t, status, _, _ in traffic.answers)
    assert traffic.accepted_after(restarted_at), "gateway did not recover"
    assert gateway.running()

    retry_unknown(traffic)
    accepted, refused = traffic.ids(202) | traffic.ids(504), traffic.ids(503)
    in_kafka = Counter(str(r["event_id"]) for r in consume_tenant(settings, traffic.tenant, expected=len(accepted)))
    assert accepted <= set(in_kafka), f"{len(accepted - set(in_kafka))} events answered 202 are not in Kafka"
    assert not refused & set(in_kafka), f"{len(refused & set(in_kafka))} events answered 503 are in Kafka"
    assert all(in_kafka[i] == 1 for i in traffic.ids(202) - traffic.ids(504)), "an event answered 202 is in Kafka twice"
    assert_exactly_once_in_both_stores(traffic, clickhouse)
