"""Dashboards read ClickHouse while the ClickHouse sink writes at full speed.

The local ClickHouse is chDB's engine in a process that owns the data folder and serves ClickHouse's
HTTP interface; the sink writes to it and the gateway's analytics API reads from it at the same
time. Here 200,000 chat actions are produced straight to Kafka as fast as one producer goes while
the sink drains them, and the dashboard's conversation funnel (``windowFunnel`` over
``chat_events``) is asked again and again through the API, with ``chatstream query`` in between:
every answer is 200, the figures only grow while rows land (a conversation's events share a
partition, so its steps land in order), some answers come in mid-write, and once the sink has
caught up the funnel equals the events exactly.
"""

from __future__ import annotations

import io
import json
import struct
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import fastavro
import httpx
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from chatstream.avro.catalog import load_catalog
from chatstream.lag import lag
from chatstream.settings import Settings
from pipelines.topics import CHAT_ACTIONS
from tests.integration.conftest import chatstream
from tests.integration.platform import Component, bearer, wait_gateway_ready
from tests.integration.test_clickhouse_server import start_group_at_end

CONVERSATIONS = 20_000
FILLER = 150_000  # edits: rows the sink writes that the funnel does not count
TOPIC = CHAT_ACTIONS.name


def events(tenant: str, start_ms: int) -> list[dict[str, Any]]:
    """Conversation i: created, then i % 4 messages, then its share of the filler, 1 ms apart: the
    conversations are spread over the whole write, so a query during it sees some of them."""
    out: list[dict[str, Any]] = []
    at = start_ms

    def event(conversation: str, action: str, field: str, detail: dict[str, Any], record: str) -> None:
        nonlocal at
        at += 1
        out.append({"event_id": str(uuid.uuid4()), "occurred_at": at, "tenant_id": tenant, "user_id": f"u{len(out) % 97}",
                    "trace_id": "t" * 32, "conversation_id": conversation, "action": action,
                    field: (f"io.chatstream.events.{record}", detail)})  # fmt: skip

    for i in range(CONVERSATIONS):
        conversation = f"{tenant}-c{i}"
        event(conversation, "CONVERSATION_CREATED", "conversation_created", {"model": "m"}, "ConversationCreated")
        for k in range(i % 4):
            event(conversation, "MESSAGE_SENT", "message_sent", {"message_id": f"m{k}", "text_length": 5}, "MessageSent")
        for _ in range(FILLER * (i + 1) // CONVERSATIONS - FILLER * i // CONVERSATIONS):
            event(conversation, "MESSAGE_EDITED", "message_edited", {"message_id": "m0", "text_length": 6}, "MessageEdited")
    return out


def expected_funnel() -> list[int]:
    reached = [sum(1 for i in range(CONVERSATIONS) if i % 4 >= k) for k in range(4)]
    return [CONVERSATIONS, *reached[1:], 0]  # created, 1st, 2nd, 3rd message, feedback


def produce(settings: Settings, records: list[dict[str, Any]]) -> None:
    contract = load_catalog()[TOPIC]
    with SchemaRegistryClient({"url": settings.schema_registry_url}) as registry:
        schema_id = registry.get_latest_version(contract.subject).schema_id
    parsed = fastavro.parse_schema(contract.schema)
    header = struct.pack(">bI", 0, schema_id)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "linger.ms": 5,
                         "queue.buffering.max.messages": 1_000_000})  # fmt: skip
    for record in records:
        buffer = io.BytesIO(header)
        buffer.seek(len(header))
        fastavro.schemaless_writer(buffer, parsed, record)
        producer.produce(TOPIC, buffer.getvalue(), record["conversation_id"].encode())
        producer.poll(0)
    assert producer.flush(60) == 0


def test_dashboard_queries_answer_while_the_clickhouse_sink_writes(running_stack: Settings, unique: str) -> None:
    settings = running_stack
    tenant = f"live-{unique}"
    group = f"test-live-{unique}"
    start_group_at_end(settings.kafka_bootstrap_servers, group)
    start_ms = int(time.time() * 1000) - 600_000
    records = events(tenant, start_ms)
    window = {"from": datetime.fromtimestamp(start_ms / 1000 - 60, UTC).isoformat(),
              "to": datetime.fromtimestamp(time.time() + 60, UTC).isoformat()}  # fmt: skip
    headers = bearer(settings, tenant, "analyst")
    gateway = Component(settings, "gateway").start()
    sink = Component(settings, "sink", "clickhouse", "--group", group).start()
    try:
        wait_gateway_ready(settings, gateway)
        sink.wait_for_output("draining")
        producer = threading.Thread(target=produce, args=(settings, records))
        producer.start()
        answers: list[list[int]] = []
        with httpx.Client(base_url=settings.gateway_url, timeout=30, headers=headers) as client:
            caught_up = False
            while not caught_up:
                assert sink.running(), sink.log_tail()
                caught_up = not producer.is_alive() and not lag(settings.kafka_bootstrap_servers, group, TOPIC)
                answer = client.get("/v1/analytics/funnel", params=window)
                assert answer.status_code == 200, answer.text
                answers.append([step["conversations"] for step in answer.json()["steps"]])
                if len(answers) % 10 == 0:  # the CLI too, as an analyst would
                    done = chatstream(settings, "query", "clickhouse", "--json",
                                      f"SELECT count() AS n FROM chat_events WHERE tenant_id = '{tenant}'")  # fmt: skip
                    assert json.loads(done.stdout)[0]["n"] <= len(records)
        producer.join()
        final = client_funnel(settings, headers, window)
    finally:
        assert sink.stop() == 0, sink.log_tail()
        assert gateway.stop() == 0, gateway.log_tail()

    assert final == expected_funnel(), final
    mid_write = [a for a in answers if 0 < a[0] < CONVERSATIONS]
    assert mid_write, f"no answer came while the sink wrote ({len(answers)} answers)"
    print(f"{len(answers)} funnel answers, {len(mid_write)} of them while the sink wrote")
    for before, after in zip(answers, answers[1:], strict=False):
        assert all(b <= a for b, a in zip(before, after, strict=True)), (before, after)


def client_funnel(settings: Settings, headers: dict[str, str], window: dict[str, str]) -> list[int]:
    answer = httpx.get(f"{settings.gateway_url}/v1/analytics/funnel", params=window, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    return [step["conversations"] for step in answer.json()["steps"]]
