"""The engagement job on a local MiniCluster against the real Kafka and registry.

A fixed event set for a fresh tenant, with out-of-order and late events, goes through the job
(``chatstream job engagement``); every window and session read back (read_committed) equals the
plain-Python reference of ``engagement_reference``, and the late events are on the late topic
only. Event times sit ten minutes in the past; the watermark is driven by the events alone.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from chatstream.avro.catalog import load_catalog
from chatstream.avro.registry import ContractRegistry, registry_fetcher
from chatstream.avro.serde import ConfluentDecoder, ConfluentEncoder
from chatstream.settings import Settings
from tests.integration.engagement_reference import Event, expected_sessions, expected_windows
from tests.integration.platform import Component

OUT_OF_ORDERNESS_S, ALLOWED_LATENESS_S = 2.0, 3.0
SESSION_GAP_S = 90.0
M = 1000  # ms per second


def job_env(run: str, started_ms: int) -> dict[str, str]:
    return {
        "CHATSTREAM_ENGAGEMENT_OUT_OF_ORDERNESS_S": str(OUT_OF_ORDERNESS_S),
        "CHATSTREAM_ENGAGEMENT_ALLOWED_LATENESS_S": str(ALLOWED_LATENESS_S),
        # Every phase of the tests moves all partitions (``Wire.advance``): no partition is ever
        # idle while the watermark matters, whatever order the job fetches them in.
        "CHATSTREAM_ENGAGEMENT_IDLE_TIMEOUT_S": "120",
        "CHATSTREAM_ENGAGEMENT_SESSION_GAP_S": str(SESSION_GAP_S),
        "CHATSTREAM_ENGAGEMENT_CHECKPOINT_INTERVAL_S": "2",
        "CHATSTREAM_ENGAGEMENT_GROUP_ID": f"test-engagement-{run}",
        "CHATSTREAM_ENGAGEMENT_STARTUP_MODE": "timestamp",
        "CHATSTREAM_ENGAGEMENT_STARTUP_TIMESTAMP_MS": str(started_ms),
    }


def the_events(base: int) -> tuple[list[Event], list[Event], list[Event]]:
    """(on time in send order, sent once windows closed, late), ``base`` a minute's start."""

    def at(s: float) -> int:
        return base + round(s * M)

    def answer(s: float, user: str, conv: str, model: str, kind: str = "COMPLETED", **kw: Any) -> Event:
        return Event(at(s), user, conv, kind=kind, model=model, **kw)

    on_time = [
        Event(at(2), "u1", None, action="SESSION_STARTED"),
        Event(at(3), "u1", "c1", action="CONVERSATION_CREATED", model="m-alpha"),
        Event(at(5), "u1", "c1", action="MESSAGE_SENT", model="m-alpha"),
        answer(8, "u1", "c1", "m-alpha", prompt_tokens=10, completion_tokens=20, cost_usd=0.25,
               latency_ms=2500, ttft_ms=300),
        Event(at(12), "u1", "c1", action="FEEDBACK_GIVEN", rating="UP"),
        Event(at(30), "u2", "c2", action="MESSAGE_SENT", model="m-beta"),
        answer(31, "u2", "c2", "m-beta", prompt_tokens=3, completion_tokens=4, cost_usd=0.125, latency_ms=7, ttft_ms=5),
        answer(44, "u1", "c1", "m-alpha", kind="FAILED"),
        Event(at(40), "u1", "c1", action="MESSAGE_SENT"),  # 4 s out of order
        answer(59.5, "u2", "c2", "m-beta", prompt_tokens=100, completion_tokens=200, cost_usd=0.5,
               latency_ms=120000, ttft_ms=150000),
        Event(at(58), "u2", "c2", action="REGENERATE_REQUESTED", model="m-beta"),  # 1.5 s out of order
        Event(at(61), "u1", "c1", action="MESSAGE_SENT", model="m-alpha"),
        answer(62.5, "u1", "c1", "m-alpha", prompt_tokens=1, completion_tokens=2, cost_usd=0.0625,
               latency_ms=1000, ttft_ms=None),
        Event(at(70), "u1", "c1", action="FEEDBACK_GIVEN", rating="DOWN"),
        Event(at(75), "u1", "c1", action="GENERATION_STOPPED"),
        Event(at(90), "u3", None, action="SESSION_STARTED"),
        Event(at(91), "u3", "c3", action="CONVERSATION_CREATED"),
        Event(at(92), "u3", "c3", action="MESSAGE_SENT"),
        Event(at(95), "u3", "c3", action="MODEL_SWITCHED", to_model="m-gamma"),
        answer(120.0, "u2", "c2", "m-beta", latency_ms=5, ttft_ms=5, prompt_tokens=1, completion_tokens=1),
        Event(at(119.999), "u2", "c2", action="MESSAGE_SENT", model="m-beta"),  # across a window edge
        Event(at(150), "u3", "c4", action="MESSAGE_SENT", model="m-alpha"),
        answer(151, "u3", "c4", "m-alpha", prompt_tokens=7, completion_tokens=8, cost_usd=0.25, latency_ms=150, ttft_ms=20),
        Event(at(200), "u1", "c5", action="MESSAGE_SENT", model="m-beta"),  # u1's second session
        answer(201, "u1", "c5", "m-beta", prompt_tokens=2, completion_tokens=2, cost_usd=0.5, latency_ms=60001, ttft_ms=75),
        Event(at(215), "u2", "c2", action="MESSAGE_SENT"),  # moves the watermark past minute 2
        answer(215.5, "u2", "c2", "m-beta", kind="FAILED"),
    ]  # fmt: skip
    late = [
        Event(at(65), "u2", "c2", action="MESSAGE_SENT", model="m-beta"),
        answer(66, "u3", "c3", "m-alpha", prompt_tokens=5, completion_tokens=5, cost_usd=1.0, latency_ms=10, ttft_ms=1),
        Event(at(10), "u1", "c1", action="FEEDBACK_GIVEN", rating="UP"),
    ]  # fmt: skip
    return on_time, [], late


class Wire:
    """Produces the test's events and reads the job's outputs, through the registry."""

    def __init__(self, settings: Settings, tenant: str) -> None:
        self.settings = settings
        self.tenant = tenant
        catalog = load_catalog()
        self.contracts = {name: catalog[name] for name in ("chat.actions.v1", "ai.responses.v1")}
        with ContractRegistry(settings.schema_registry_url) as registry:
            self.encoders = {name: ConfluentEncoder(c.schema, registry.register(c).schema_id)
                             for name, c in self.contracts.items()}  # fmt: skip
        self.registry = SchemaRegistryClient({"url": settings.schema_registry_url})
        self.decoder = ConfluentDecoder(registry_fetcher(self.registry))
        self.producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "acks": "all",
                                  "enable.idempotence": True, "linger.ms": 0})  # fmt: skip

    def send(self, events: list[Event], tenant: str | None = None) -> None:
        for e in events:
            self._produce(e, tenant or self.tenant)
            self.producer.flush(30)  # one by one: the send order is the test's

    def send_corrupt(self) -> None:
        """Records no Confluent Avro reader can read, as a misconfigured producer writes them: JSON,
        a schema id the registry does not have, a registered id over a body that does not decode."""
        known = self.encoders["chat.actions.v1"].schema_id
        for value in (b'{"not": "avro"}', b"\x00" + (2**31 - 7).to_bytes(4, "big") + b"\x02ab",
                      b"\x00" + known.to_bytes(4, "big") + b"\xff\xff\xff"):  # fmt: skip
            self.producer.produce("chat.actions.v1", key=b"corrupt", value=value)
        self.producer.flush(30)

    def _produce(self, e: Event, tenant: str, partition: int | None = None,
                 on_delivery: Callable[[Any, Any], None] | None = None) -> None:
        common = {"event_id": e.event_id, "occurred_at": e.ts_ms, "tenant_id": tenant,
                  "user_id": e.user, "conversation_id": e.conversation, "trace_id": uuid.uuid4().hex}  # fmt: skip
        if e.is_action:
            details: tuple[str, Any] = {
                "CONVERSATION_CREATED": ("conversation_created", {"model": e.model}),
                "MESSAGE_SENT": ("message_sent", {"message_id": "m", "model": e.model, "text_length": 3}),
                "REGENERATE_REQUESTED": ("regenerate_requested", {"message_id": "m", "model": e.model}),
                "FEEDBACK_GIVEN": ("feedback_given", {"message_id": "m", "rating": e.rating}),
                "MODEL_SWITCHED": ("model_switched", {"to_model": e.to_model}),
                "GENERATION_STOPPED": ("generation_stopped", {}),
                "SESSION_STARTED": ("session_started", {}),
            }[e.action or ""]
            record = {**common, "action": e.action, details[0]: details[1]}
            topic = "chat.actions.v1"
        else:
            record = {**common, "request_id": str(uuid.uuid4()), "kind": e.kind, "provider": "sim",
                      "model": e.model, "sequence": 1, "tokens_estimated": False, "fallback_used": False,
                      "attempts": 1, "prompt_tokens": e.prompt_tokens or None,
                      "completion_tokens": e.completion_tokens or None, "cost_usd": e.cost_usd or None,
                      "latency_ms": e.latency_ms, "time_to_first_token_ms": e.ttft_ms}  # fmt: skip
            topic = "ai.responses.v1"
        key = (e.conversation or e.user).encode()
        extra: dict[str, Any] = {} if partition is None else {"partition": partition}
        if on_delivery is not None:
            extra["on_delivery"] = on_delivery
        self.producer.produce(topic, key=key, value=self.encoders[topic].encode(record), **extra)

    def close(self) -> None:
        self.producer.flush(30)
        self.registry.close()

    def advance(self, ts_ms: int) -> list[Any]:
        """An event at ``ts_ms`` (of the tenant's clock twin) in every partition of both sources:
        the watermark, the least of the partitions', moves to ``ts_ms`` less the job's delay."""
        from confluent_kafka import TopicPartition

        marks: list[TopicPartition] = []
        for topic in self.contracts:
            for partition in range(6):
                e = Event(ts_ms, "clock", None, action="SESSION_STARTED") if topic == "chat.actions.v1" \
                    else Event(ts_ms, "clock", None, kind="FAILED", model="clock")
                delivered: list[int] = []
                self._produce(e, f"{self.tenant}-clock", partition,
                              lambda err, m: delivered.append(m.offset()))  # noqa: B023
                self.producer.flush(30)
                marks.append(TopicPartition(topic, partition, delivered[0] + 1))
        return marks

    def warm_up(self, group: str, ts_ms: int) -> None:
        """``advance`` to an old time, then wait until the job's group has committed past it:
        every partition is being read before the test's events go out."""
        marks = self.advance(ts_ms)
        consumer = Consumer({"bootstrap.servers": self.settings.kafka_bootstrap_servers, "group.id": group})
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    committed = consumer.committed(marks, timeout=10)
                except KafkaException:  # the group's coordinator is still loading
                    time.sleep(1)
                    continue
                if all(c.offset >= m.offset for c, m in zip(committed, marks, strict=True)):
                    return
                time.sleep(1)
        finally:
            consumer.close()
        raise AssertionError(f"the job's group {group} did not read every partition within 120 s")

    def read(self, topic: str) -> list[dict[str, Any]]:
        """Every committed record of ``topic`` for the tenant, from the start."""
        consumer = Consumer({"bootstrap.servers": self.settings.kafka_bootstrap_servers,
                             "group.id": f"test-read-{uuid.uuid4().hex}", "auto.offset.reset": "earliest",
                             "isolation.level": "read_committed", "enable.auto.commit": False})  # fmt: skip
        consumer.subscribe([topic])
        out, idle_since = [], time.monotonic()
        try:
            while time.monotonic() - idle_since < 3:
                msg = consumer.poll(0.5)
                if msg is None or msg.error() is not None:
                    continue
                idle_since = time.monotonic()
                record = self.decoder.decode(msg.value())
                if record["tenant_id"] == self.tenant:
                    out.append(record)
        finally:
            consumer.close()
        return out

    def wait_for(self, topic: str, done: Callable[[list[dict[str, Any]]], bool], timeout_s: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while True:
            records = self.read(topic)
            if done(records) or time.monotonic() > deadline:
                return records
            time.sleep(1)


def ms(value: datetime | int) -> int:
    return value if isinstance(value, int) else round(value.timestamp() * 1000)


@pytest.fixture
def engagement_job(running_stack: Settings) -> Iterator[tuple[Component, str]]:
    run = uuid.uuid4().hex[:8]
    job = Component(running_stack, "job", "engagement", env={
        **job_env(run, int(time.time() * 1000)),
        "CHATSTREAM_ENGAGEMENT_CHECKPOINT_DIR": (running_stack.state_dir / "flink" / f"test-{run}").as_uri(),
    }).start()  # fmt: skip
    try:
        job.wait_for_output("submitted", timeout_s=180)
        yield job, f"test-engagement-{run}"
    finally:
        assert job.stop(timeout_s=60) == 0, job.log_tail()


def window_row(record: dict[str, Any]) -> dict[str, Any]:
    row = {key: record[key] for key in (
        "dimension", "tenant_id", "model", "user_id", "active_users", "active_conversations", "sessions_started",
        "conversations_created", "messages_sent", "regenerations", "generations_stopped", "feedback_up",
        "feedback_down", "ai_requests", "ai_completed", "ai_failed", "prompt_tokens", "completion_tokens",
        "cost_usd", "latency_count", "latency_sum_ms", "latency_max_ms", "latency_hist", "ttft_count",
        "ttft_sum_ms", "ttft_max_ms", "ttft_hist", "engagement_score")}  # fmt: skip
    row.update(window_start=ms(record["window_start"]), window_end=ms(record["window_end"]))
    assert ms(record["occurred_at"]) == row["window_end"]
    return row


def test_every_window_and_session_equals_the_reference_and_late_events_are_reported(
    running_stack: Settings, engagement_job: tuple[Component, str], request: pytest.FixtureRequest,
    clickhouse: Callable[..., Any],
) -> None:
    job, group = engagement_job
    check_against_the_reference(running_stack, job, group, request, clickhouse=clickhouse)


def check_against_the_reference(running_stack: Settings, job: Component, group: str,
                                request: pytest.FixtureRequest, clickhouse: Callable[..., Any] | None = None) -> None:  # fmt: skip
    """The fixed event set through the running ``job`` (consumer group ``group``); every output
    checked against the reference, and with ``clickhouse``, landed by the real ClickHouse sink."""
    tenant = f"engagement-{uuid.uuid4().hex[:8]}"
    wire = Wire(running_stack, tenant)
    request.addfinalizer(wire.close)
    now_ms = int(time.time() * 1000)
    base = now_ms - now_ms % 60_000 - 10 * 60_000
    wire.warm_up(group, base - 5 * 60 * M)
    on_time, _, late = the_events(base)
    windows = expected_windows(tenant, on_time)
    sessions = expected_sessions(tenant, on_time, round(SESSION_GAP_S * M))
    half = len(on_time) // 2
    wire.send(on_time[:half])
    wire.send_corrupt()  # skipped by the job's lenient format: no restart, no window changes
    wire.send(on_time[half:])
    wire.advance(base + 216 * M)  # past every on-time event: the watermark reaches base + 211 s
    # Minute 2's windows out means the watermark is past base + 180 s: the late events are late.
    first = {i for i, w in windows.items() if w["window_end"] <= base + 180 * M}
    seen = wire.wait_for("analytics.engagement.v1", lambda rs: first <= {str(r["event_id"]) for r in rs}, 150)
    assert first <= {str(r["event_id"]) for r in seen}, job.log_tail()
    wire.send(late)
    wire.advance(base + 330 * M)  # past every window and session of the tenant
    got = wire.wait_for("analytics.engagement.v1", lambda rs: len(rs) >= len(windows), 90)
    got_sessions = wire.wait_for("analytics.sessions.v1", lambda rs: len(rs) >= len(sessions), 60)
    got_late = wire.wait_for("analytics.late_events.v1", lambda rs: len(rs) >= len(late), 30)

    ids = [str(r["event_id"]) for r in got]
    assert len(ids) == len(set(ids)), "a window was emitted twice"
    assert {str(r["event_id"]): window_row(r) for r in got} == windows

    session_rows = {str(r["event_id"]): {
        "user_id": r["user_id"], "session_start": ms(r["session_start"]), "session_end": ms(r["session_end"]),
        "duration_ms": r["duration_ms"], "turns": r["turns"], "events": r["events"],
        "conversations": r["conversations"], "models": sorted(r["models"])} for r in got_sessions}  # fmt: skip
    assert len(session_rows) == len(got_sessions)
    assert session_rows == sessions

    assert sorted(str(r["event_id"]) for r in got_late) == sorted(e.event_id for e in late)
    for record in got_late:
        assert record["lateness_ms"] == ms(record["watermark_at"]) - ms(record["occurred_at"]) > 0

    # The job's sinks registered their schemas as they started: the very texts of the contracts,
    # so the registry still holds one version of each (no drift for `chatstream schemas check`).
    catalog = load_catalog()
    with SchemaRegistryClient({"url": running_stack.schema_registry_url}) as client:
        for topic in ("analytics.engagement.v1", "analytics.sessions.v1", "analytics.late_events.v1"):
            assert client.get_versions(f"{topic}-value") == [1], topic
            assert client.get_latest_version(f"{topic}-value").schema.schema_str == catalog[topic].canonical

    if clickhouse is not None:
        landed_in_clickhouse(running_stack, clickhouse, tenant, windows, len(sessions), len(late))


def landed_in_clickhouse(settings: Settings, clickhouse: Callable[..., Any], tenant: str,
                         windows: dict[str, dict[str, Any]], sessions: int, late: int) -> None:  # fmt: skip
    """The generic ClickHouse sink lands the three topics in their tables, one row per id."""
    counts = ("query", f"SELECT (SELECT count() FROM engagement_windows FINAL WHERE tenant_id = '{tenant}'), "
              f"(SELECT count() FROM engagement_sessions FINAL WHERE tenant_id = '{tenant}'), "
              f"(SELECT count() FROM late_events FINAL WHERE tenant_id = '{tenant}')", None)  # fmt: skip
    sink = Component(settings, "sink", "clickhouse", "--group", f"test-engagement-ch-{uuid.uuid4().hex[:6]}").start()
    try:
        sink.wait_for_output("draining", timeout_s=120)
        deadline = time.monotonic() + 90
        while clickhouse(counts) != [[len(windows), sessions, late]] and time.monotonic() < deadline:
            time.sleep(2)
    finally:
        assert sink.stop(timeout_s=60) == 0, sink.log_tail()
    assert clickhouse(counts) == [[len(windows), sessions, late]]
    rows = clickhouse(("query", "SELECT toString(event_id), dimension, model, user_id, messages_sent, ai_requests, "
                       "prompt_tokens, cost_usd, latency_hist, ttft_hist, engagement_score "
                       f"FROM engagement_windows FINAL WHERE tenant_id = '{tenant}'", None))  # fmt: skip
    assert {r[0]: r[1:] for r in rows} == {
        i: [w["dimension"], w["model"], w["user_id"] if w["dimension"] == "user" else "", w["messages_sent"],
            w["ai_requests"], w["prompt_tokens"], w["cost_usd"], w["latency_hist"], w["ttft_hist"], w["engagement_score"]]
        for i, w in windows.items()
    }  # fmt: skip


def test_a_stop_while_the_job_starts_is_a_clean_stop(running_stack: Settings) -> None:
    """SIGTERM (``chatstream run`` stopping, an orchestrator) while the JVM starts and the job is
    planned: the job is cancelled once Flink has it, and the process exits 0."""
    run = uuid.uuid4().hex[:8]
    job = Component(running_stack, "job", "engagement", "--no-restore", env={
        **job_env(run, int(time.time() * 1000)),
        "CHATSTREAM_ENGAGEMENT_CHECKPOINT_DIR": (running_stack.state_dir / "flink" / f"test-{run}").as_uri(),
    }).start()  # fmt: skip
    job.wait_for_output("starting the engagement job", timeout_s=60)
    assert job.stop(timeout_s=120) == 0, job.log_tail()
    assert "submitted" not in job.log_tail() or "cancelling" in job.log_tail()
