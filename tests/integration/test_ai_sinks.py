"""AI requests land in both stores as the dispatch job writes them: ai.responses.v1 as one
ai_requests row per request (its latest event: the terminal one once it ended, a replayed
COMPLETED counted once), ai.requests.v1 as one ai_attempts row per attempt event. Produced
straight to Kafka with the real registry's schema ids; drained by the real sink processes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from chatstream.avro.catalog import load_catalog
from chatstream.avro.serde import ConfluentEncoder
from chatstream.lag import end_offsets, wait_caught_up
from chatstream.settings import Settings
from pipelines.sinks import CONSUMER_GROUPS
from tests.ai_events import attempt, chunk, completed, failed
from tests.integration.platform import Component
from tests.integration.test_dead_letters import dead_letters_since

REQUESTS, RESPONSES = "ai.requests.v1", "ai.responses.v1"


def test_each_request_is_one_row_with_its_terminal_state_and_its_cost_once_in_both_stores(
    running_stack: Settings, clickhouse: Callable[..., Any], unique: str
) -> None:
    settings = running_stack
    catalog = load_catalog()
    with SchemaRegistryClient({"url": settings.schema_registry_url}) as registry:
        encoders = {topic: ConfluentEncoder(catalog[topic].schema, registry.get_latest_version(catalog[topic].subject).schema_id)
                    for topic in (REQUESTS, RESPONSES)}  # fmt: skip
    tenant = f"t-{unique}"
    now = int(time.time() * 1000)
    a, b, c = (str(uuid.uuid4()) for _ in range(3))
    at_a, at_b = now - 5_000, now - 4_000

    def event(topic: str, record: dict[str, Any], request: str) -> tuple[str, bytes, bytes]:
        # the dispatch job's key: one request's events in one partition, in order
        return topic, encoders[topic].encode({**record, "tenant_id": tenant}), request.encode()

    def produce(*events: tuple[str, bytes, bytes]) -> None:
        producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "enable.idempotence": True})
        for topic, value, key in events:
            producer.produce(topic, value, key)
        assert producer.flush(30) == 0

    def drained() -> None:
        for topic in (REQUESTS, RESPONSES):
            lags = wait_caught_up(settings.kafka_bootstrap_servers, list(CONSUMER_GROUPS.values()), topic, timeout_s=60)
            assert not any(lags.values()), (topic, lags, [s.log_tail() for s in sinks])

    first_try = event(REQUESTS, attempt(a, at_a, at_a + 10, deployment="sim-primary", reason="weighted pick",
                                        messages=[{"role": "USER", "content": "hi"}]), a)  # fmt: skip
    done = event(RESPONSES, completed(a, at_a, at_a + 900, "Hello there", sequence=3, cost_usd=0.25), a)
    dead_letters_from = end_offsets(settings.kafka_bootstrap_servers, f"dlq.{RESPONSES}")
    sinks = [Component(settings, "sink", kind).start() for kind in CONSUMER_GROUPS]
    try:
        for sink in sinks:
            sink.wait_for_output("draining")
        produce(
            first_try,
            first_try,  # the same attempt event again (a producer's retry): one row
            event(RESPONSES, chunk(a, at_a, at_a + 100, 0, "Hel"), a),
            event(REQUESTS, attempt(b, at_b, at_b + 10, deployment="sim-primary", reason="weighted pick"), b),
            event(RESPONSES, chunk(a, at_a, at_a + 200, 1, "lo "), a),
            event(RESPONSES, chunk(b, at_b, at_b + 300, 0, "Wor"), b),
            event(REQUESTS, attempt(b, at_b, at_b + 400, attempt=2, deployment="sim-fallback", reason="fallback from sim-primary"), b),
            event(RESPONSES, chunk(a, at_a, at_a + 500, 2, "there"), a),
            done,
            event(RESPONSES, failed(b, at_b, at_b + 30_000, "timeout", sequence=1, cost_usd=0.125), b),
        )
        drained()  # decoded in the engine
        produce(
            done,  # the COMPLETED replayed, in a later flush: still one row, one cost
            event(RESPONSES, chunk(c, None, now, 0, "no requested_at"), c),  # cannot be keyed: a dead letter
        )
        drained()  # the engine gives this set up (requested_at missing): decoded in Python
    finally:
        codes = [s.stop() for s in sinks]
    assert codes == [0, 0], [s.log_tail() for s in sinks]

    columns = "status, chunks, cost_usd, content_length, error_code"
    with psycopg.connect(settings.postgres_url()) as conn:
        pg = conn.execute(f"SELECT request_id::text, {columns}, kafka_offset FROM ai_requests WHERE tenant_id = %s"
                          " ORDER BY requested_at", (tenant,)).fetchall()  # fmt: skip
        pg_attempts = conn.execute("SELECT request_id::text, attempt, deployment, prompt_messages FROM ai_attempts"
                                   " WHERE tenant_id = %s ORDER BY occurred_at", (tenant,)).fetchall()  # fmt: skip
        pg_cost = conn.execute("SELECT sum(cost_usd) FROM ai_requests WHERE tenant_id = %s", (tenant,)).fetchone()
    ch = clickhouse(
        ("query", f"SELECT toString(request_id), {columns}, kafka_offset FROM ai_requests FINAL"
                  f" WHERE tenant_id = '{tenant}' ORDER BY requested_at", None))  # fmt: skip
    ch_attempts = clickhouse(
        ("query", "SELECT toString(request_id), attempt, deployment, prompt_messages FROM ai_attempts FINAL"
                  f" WHERE tenant_id = '{tenant}' ORDER BY occurred_at", None))  # fmt: skip
    ch_cost = clickhouse(("query", f"SELECT sum(cost_usd) FROM ai_requests FINAL WHERE tenant_id = '{tenant}'", None))

    expected = [(a, "completed", 3, 0.25, len("Hello there"), None), (b, "failed", 1, 0.125, None, "timeout")]
    assert [tuple(r[:6]) for r in pg] == expected
    assert [tuple(r[:6]) for r in ch] == expected
    assert [list(r) for r in pg] == [[*r[:6], int(r[6])] for r in ch]  # the same event (offset) won in both
    assert pg_cost == (0.375,) and ch_cost == [[0.375]]
    attempts = [(a, 1, "sim-primary", 1), (b, 1, "sim-primary", 0), (b, 2, "sim-fallback", 0)]
    assert [tuple(r) for r in pg_attempts] == attempts
    assert [tuple(r) for r in ch_attempts] == attempts

    letters = dead_letters_since(settings, dead_letters_from, f"dlq.{RESPONSES}")
    assert sorted(h["sink"] for h in letters) == sorted(k.encode() for k in CONSUMER_GROUPS)
    for headers in letters:
        assert headers["error.class"] == b"MappingError" and b"requested_at is null" in headers["error"]
