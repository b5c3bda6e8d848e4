"""Chat actions through the real gateway into Kafka, ClickHouse and PostgreSQL, once each."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import orjson
import psycopg
import pytest
from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from chatstream.ids import uuid7
from chatstream.lag import end_offsets, wait_caught_up
from chatstream.settings import Settings
from gateway.auth import local_secret
from pipelines.sinks import CONSUMER_GROUPS
from tests.integration.platform import Component, bearer, wait_gateway_ready

TOPIC = "chat.actions.v1"


@pytest.fixture(scope="module")
def gateway(running_stack: Settings) -> Iterator[Component]:
    component = Component(running_stack, "gateway", env={"CHATSTREAM_ACK_TIMEOUT_S": "5"}).start()
    wait_gateway_ready(running_stack, component)
    yield component
    assert component.stop() == 0, component.log_tail()


def chat_events(tenant: str, count: int, start_ms: int) -> list[dict[str, Any]]:
    kinds = ["message_sent", "feedback_given", "regenerate_requested", "conversation_created"]
    events = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        detail: dict[str, Any] = {
            "message_sent": {"message_id": f"m{i}", "text_length": 10 + i % 50},
            "feedback_given": {"message_id": f"m{i - 1}", "rating": "UP" if i % 3 else "DOWN"},
            "regenerate_requested": {"message_id": f"m{i - 2}"},
            "conversation_created": {"model": "gpt-4o"},
        }[kind]
        at = start_ms + i
        events.append({"type": kind, "event_id": uuid7(at), "occurred_at": at,
                       "conversation_id": f"{tenant}-c{i % 37}", kind: detail})  # fmt: skip
    return events


def consume_tenant(settings: Settings, tenant: str, expected: int, topic: str = TOPIC) -> list[dict[str, Any]]:
    """Every record of ``tenant`` in ``topic`` (chat.actions.v1), decoded by confluent-kafka's own deserializer."""
    found: list[dict[str, Any]] = []
    with SchemaRegistryClient({"url": settings.schema_registry_url}) as registry:
        deserialize = AvroDeserializer(registry)
        consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": f"test-{uuid.uuid4()}",
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})  # fmt: skip
        consumer.subscribe([topic])
        ctx = SerializationContext(topic, MessageField.VALUE)
        idle = 0
        give_up = time.monotonic() + 300  # bounded: a test waiting for records that never come fails
        try:
            while idle < 10 and time.monotonic() < give_up:
                batch = consumer.consume(1000, timeout=1.0)
                idle = idle + 1 if not batch and len(found) >= expected else 0 if batch else idle
                for msg in batch:
                    if msg.error() is None and msg.value()[:1] == b"\x00":
                        try:
                            record = deserialize(msg.value(), ctx)
                        except (EOFError, ValueError, TypeError, IndexError, OverflowError, SchemaRegistryError):
                            continue  # other tests' deliberately corrupt records (bodies, unknown schema ids)
                        if record["tenant_id"] == tenant:
                            found.append(record)
        finally:
            consumer.close()
    return found


def stop_and_count(settings: Settings, clickhouse: Callable[..., Any], tenant: str) -> tuple[int, int, int, int]:
    with psycopg.connect(settings.postgres_url()) as conn:
        pg_rows, pg_ids = conn.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM chat_events WHERE tenant_id = %s", (tenant,)
        ).fetchone()  # type: ignore[misc]
    clickhouse(("command", "OPTIMIZE TABLE chat_events FINAL", None))
    ((ch_rows, ch_ids),) = clickhouse(
        ("query", f"SELECT count(), uniqExact(event_id) FROM chat_events WHERE tenant_id = '{tenant}'", None)
    )
    return pg_rows, pg_ids, ch_rows, ch_ids


def test_10000_events_with_retries_land_once_in_kafka_clickhouse_and_postgres(
    running_stack: Settings, gateway: Component, clickhouse: Callable[..., Any], unique: str
) -> None:
    settings = running_stack
    tenant = f"t-{unique}"
    events = chat_events(tenant, 10_000, start_ms=1_795_000_000_000)
    headers = bearer(settings, tenant)
    retried = 0
    with httpx.Client(base_url=settings.gateway_url, timeout=30) as client:
        for start in range(0, len(events), 100):
            batch = {"events": events[start : start + 100]}
            for attempt in range(2 if start % 700 == 0 else 1):  # some batches sent twice
                answer = client.post("/v1/events", content=orjson.dumps(batch), headers=headers)
                assert answer.status_code == 202, answer.text
                assert answer.json()["event_ids"] == [e["event_id"] for e in batch["events"]]
                retried += attempt
    assert retried > 10

    records = consume_tenant(settings, tenant, expected=10_000 + retried * 100)
    assert len(records) == 10_000 + retried * 100  # Kafka has the retries; the stores must not
    assert {str(r["event_id"]) for r in records} == {e["event_id"] for e in events}

    sinks = [Component(settings, "sink", kind).start() for kind in ("clickhouse", "postgres")]
    try:
        for sink in sinks:
            sink.wait_for_output("draining")
        lags = wait_caught_up(settings.kafka_bootstrap_servers, list(CONSUMER_GROUPS.values()), TOPIC, timeout_s=120)
        assert not any(lags.values()), lags
    finally:
        codes = [s.stop() for s in sinks]
    assert codes == [0, 0], [s.log_tail() for s in sinks]
    assert stop_and_count(settings, clickhouse, tenant) == (10_000, 10_000, 10_000, 10_000)


BAD_INPUTS = [
    ("malformed JSON", b'{"type": "message_sent",', "json", 400, "malformed_request"),
    ("unknown type", orjson.dumps({"type": "message_liked"}), "json", 422, "invalid_events"),
    ("schema violation", orjson.dumps({"type": "message_sent", "message_sent": {"message_id": 5, "text_length": 1}}), "json", 422, "invalid_events"),
    ("batch too long", orjson.dumps({"events": [{"type": "session_started"}] * 1001}), "json", 413, "payload_too_large"),
    ("body too big", b'{"type": "' + b"x" * (1024 * 1024 + 10) + b'"}', "json", 413, "payload_too_large"),
    ("chunked body too big", b'{"type": "' + b"x" * (1024 * 1024 + 10) + b'"}', "chunked", 413, "payload_too_large"),
    ("no token", orjson.dumps({"type": "session_started"}), "no-token", 401, "unauthorized"),
    ("other tenant", orjson.dumps({"type": "session_started", "tenant_id": "someone-else"}), "json", 403, "forbidden"),
    ("other user", orjson.dumps({"type": "session_started", "user_id": "someone-else"}), "json", 403, "forbidden"),
]


@pytest.mark.parametrize(("label", "body", "how", "status", "code"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_refused_and_nothing_reaches_kafka(
    running_stack: Settings, gateway: Component, label: str, body: bytes, how: str, status: int, code: str
) -> None:
    before = end_offsets(running_stack.kafka_bootstrap_servers, TOPIC)
    headers = {} if how == "no-token" else bearer(running_stack, "acme")
    content: Any = body
    if how == "chunked":
        content = iter([body[i : i + 65536] for i in range(0, len(body), 65536)])
    answer = httpx.post(f"{running_stack.gateway_url}/v1/events", content=content, headers=headers, timeout=30)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and error["message"]
    if status == 422:
        assert error["details"][0]["index"] == 0 and error["details"][0]["field"]
    assert end_offsets(running_stack.kafka_bootstrap_servers, TOPIC) == before


def test_forged_tokens_are_refused(running_stack: Settings, gateway: Component) -> None:
    now = int(time.time())
    real = local_secret(running_stack.state_dir)
    claims = {"sub": "u", "tenant_id": "acme", "aud": running_stack.jwt_audience,
              "iss": running_stack.jwt_issuer, "exp": now + 60}  # fmt: skip
    forged = {
        "alg none": jwt.encode(claims, None, algorithm="none"),
        "wrong key": jwt.encode(claims, "a-different-key-a-different-key-0123456789", algorithm="HS256"),
        "expired": jwt.encode({**claims, "exp": now - 10}, real, algorithm="HS256"),
        "wrong audience": jwt.encode({**claims, "aud": "someone-else"}, real, algorithm="HS256"),
    }
    for label, token in forged.items():
        answer = httpx.post(f"{running_stack.gateway_url}/v1/events", json={"type": "session_started"},
                            headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert answer.status_code == 401, label
        assert answer.json()["error"]["code"] == "unauthorized"
    genuine = jwt.encode(claims, real, algorithm="HS256")
    answer = httpx.post(f"{running_stack.gateway_url}/v1/events", json={"type": "session_started"},
                        headers={"Authorization": f"Bearer {genuine}"})  # fmt: skip
    assert answer.status_code == 202
