"""Valid Avro that a store refuses never stalls a sink: the records at fault are dead-lettered
with the store's error, everything else lands (another tenant's canaries included), and a
restart does not stall again. Sent straight to Kafka (the topic is the contract: any producer);
the gateway, holding events to the contract, refuses the same triggers with 422."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from chatstream.avro.catalog import load_catalog
from chatstream.avro.serde import ConfluentEncoder
from chatstream.lag import end_offsets
from chatstream.settings import Settings
from pipelines.sinks import CONSUMER_GROUPS
from tests.integration.platform import Component, bearer, wait_gateway_ready
from tests.integration.test_dead_letters import DLQ, TOPIC, dead_letters_since, run_sink_until_caught_up

MONTH_MS = 31 * 24 * 3600 * 1000


def action(tenant: str, conversation: str, at: int, **detail: Any) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "occurred_at": at, "tenant_id": tenant, "user_id": "u", "trace_id": "t" * 32,
            "conversation_id": conversation, "action": "MESSAGE_SENT",
            "message_sent": ("io.chatstream.events.MessageSent", {"message_id": "m", "text_length": 5, **detail})}  # fmt: skip


def test_records_a_store_refuses_are_dead_lettered_and_the_sinks_go_on(
    running_stack: Settings, clickhouse: Callable[..., Any], unique: str
) -> None:
    settings = running_stack
    for kind in CONSUMER_GROUPS:
        run_sink_until_caught_up(settings, kind)
    start = end_offsets(settings.kafka_bootstrap_servers, DLQ)
    now = int(time.time() * 1000)
    bad_tenant, canary_tenant = f"bad-{unique}", f"canary-{unique}"

    # straight to Kafka, valid Avro of the registered schema
    contract = load_catalog()[TOPIC]
    with SchemaRegistryClient({"url": settings.schema_registry_url}) as registry:
        encoder = ConfluentEncoder(contract.schema, registry.get_latest_version(contract.subject).schema_id)
    not_utf8 = encoder.encode(action(bad_tenant, f"{unique}-utf8", now, content="xxINVALIDxx"))
    direct = {
        f"{unique}-int": encoder.encode(action(bad_tenant, f"{unique}-int", now, text_length=2**31)),
        f"{unique}-nul": encoder.encode(action(bad_tenant, f"{unique}-nul", now, content="a\x00b")),
        f"{unique}-uuid": encoder.encode({**action(bad_tenant, f"{unique}-uuid", now), "event_id": "not-a-uuid"}),
        f"{unique}-utf8": not_utf8.replace(b"INVALID", b"\xff\xfe\xfd\xfc\xfb\xfa\xf9"),
        # a time no store renders as a date: the year 146,140,482
        f"{unique}-time": encoder.encode({**action(bad_tenant, f"{unique}-time", now), "occurred_at": 2**62}),
        # a tenant id too long for a PostgreSQL B-tree entry (about 2.7 kB); ClickHouse keeps it
        f"{unique}-big": encoder.encode({**action(bad_tenant, f"{unique}-big", now), "tenant_id": secrets.token_hex(4000)}),
    }
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers})
    for key, value in direct.items():
        producer.produce(TOPIC, value, key.encode())
    months = [action(bad_tenant, f"{unique}-months", now - i * MONTH_MS) for i in range(200)]
    for record in months:  # one flush touching 200 monthly partitions
        producer.produce(TOPIC, encoder.encode(record), f"{unique}-months".encode())
    assert producer.flush(30) == 0

    # the same triggers through the gateway: it holds them to the contract now and refuses them
    gateway = Component(settings, "gateway").start()
    try:
        wait_gateway_ready(settings, gateway)
        auth = bearer(settings, bad_tenant, "u")
        refused = {
            "message_sent.text_length": {"type": "message_sent", "message_sent": {"message_id": "m", "text_length": 2**31}},
            "message_sent.content": {"type": "message_sent", "message_sent": {"message_id": "m", "text_length": 3, "content": "a\x00b"}},
            "occurred_at": {"events": [{"type": "message_sent", "occurred_at": now - i * MONTH_MS,
                                        "message_sent": {"message_id": f"m{i}", "text_length": i}} for i in range(200)]},
        }  # fmt: skip
        for field, body in refused.items():
            answer = httpx.post(f"{settings.gateway_url}/v1/events", json=body, headers=auth, timeout=30)
            assert answer.status_code == 422 and field in {d["field"] for d in answer.json()["error"]["details"]}, answer.text
        canaries = [{"type": "message_sent", "conversation_id": f"{unique}-canary", "message_sent": {"message_id": f"m{i}", "text_length": i}}
                    for i in range(20)]  # fmt: skip
        answer = httpx.post(f"{settings.gateway_url}/v1/events", json={"events": canaries},
                            headers=bearer(settings, canary_tenant, "u"), timeout=30)  # fmt: skip
        assert answer.status_code == 202, answer.text
    finally:
        gateway.stop()

    for kind in CONSUMER_GROUPS:
        run_sink_until_caught_up(settings, kind)

    with psycopg.connect(settings.postgres_url()) as conn:
        (pg_canaries,) = conn.execute("SELECT count(*) FROM chat_events WHERE tenant_id = %s", (canary_tenant,)).fetchone()  # type: ignore[misc]
        (pg_months,) = conn.execute("SELECT count(*) FROM chat_events WHERE conversation_id = %s", (f"{unique}-months",)).fetchone()  # type: ignore[misc]
    ((ch_canaries,),) = clickhouse(("query", f"SELECT count() FROM chat_events WHERE tenant_id = '{canary_tenant}'", None))
    ((ch_months,),) = clickhouse(("query", f"SELECT count() FROM chat_events WHERE conversation_id = '{unique}-months'", None))
    assert (pg_canaries, ch_canaries) == (20, 20)
    assert (pg_months, ch_months) == (200, 200)  # nothing at fault: the halves landed
    ((big,),) = clickhouse(("query", f"SELECT count() FROM chat_events WHERE conversation_id = '{unique}-big'", None))
    assert big == 1  # ClickHouse holds what PostgreSQL's index cannot

    letters = dead_letters_since(settings, start)
    parked = {(h["sink"].decode(), h["key"].decode()) for h in letters}
    assert parked == {
        ("postgres", f"{unique}-int"), ("postgres", f"{unique}-nul"), ("postgres", f"{unique}-uuid"), ("postgres", f"{unique}-utf8"),
        ("postgres", f"{unique}-time"), ("postgres", f"{unique}-big"),
        ("clickhouse", f"{unique}-int"), ("clickhouse", f"{unique}-uuid"),
        ("clickhouse", f"{unique}-utf8"), ("clickhouse", f"{unique}-time"),
    }, sorted(parked)  # fmt: skip
    errors = {(h["sink"].decode(), h["key"].decode()): h["error"].decode() for h in letters}
    assert "out of range" in errors[("postgres", f"{unique}-int")]
    assert "uuid" in errors[("postgres", f"{unique}-uuid")].lower()
    assert "index row size" in errors[("postgres", f"{unique}-big")]
    for kind in CONSUMER_GROUPS:  # an Avro string must be UTF-8: not a record either decoder reads
        assert "utf-8" in errors[(kind, f"{unique}-utf8")]
        assert "outside the years 1-9999" in errors[(kind, f"{unique}-time")]  # neither store gets it

    # a restart reads nothing again and parks nothing again
    for kind in CONSUMER_GROUPS:
        run_sink_until_caught_up(settings, kind)
    assert len(dead_letters_since(settings, start)) == len(letters)
