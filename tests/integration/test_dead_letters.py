"""Records a sink cannot decode go to dlq.<topic> with the reason in headers, once per sink."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition

from chatstream.lag import end_offsets, lag
from chatstream.settings import Settings
from pipelines.sinks import CONSUMER_GROUPS
from tests.integration.platform import Component

TOPIC, DLQ = "chat.actions.v1", "dlq.chat.actions.v1"


def run_sink_until_caught_up(settings: Settings, kind: str, group: str | None = None) -> Component:
    """Run ``chatstream sink <kind>`` until its group has no lag, stop it; returns it (its log)."""
    sink = Component(settings, "sink", kind, *(("--group", group) if group else ())).start()
    try:
        sink.wait_for_output("draining")
        deadline = time.monotonic() + 120
        while (behind := lag(settings.kafka_bootstrap_servers, group or CONSUMER_GROUPS[kind], TOPIC)) and time.monotonic() < deadline:
            assert sink.running(), sink.log_tail()
            time.sleep(0.3)
        assert not behind, f"{kind} sink still {behind} behind:\n{sink.log_tail()}"
    finally:
        code = sink.stop()
    assert code == 0, sink.log_tail()
    return sink


def dead_letters_since(settings: Settings, start: dict[int, int], topic: str = DLQ) -> list[dict[str, bytes]]:
    """The dead letters of ``topic`` from ``start`` (offsets by partition): headers, value and key."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": f"test-{uuid.uuid4()}",
                         "enable.auto.commit": False})  # fmt: skip
    consumer.assign([TopicPartition(topic, p, o) for p, o in start.items()])
    found, idle = [], 0
    while idle < 3:
        msg = consumer.poll(1.0)
        if msg is None:
            idle += 1
        elif msg.error() is None:
            found.append({**dict(msg.headers() or []), "value": msg.value() or b"", "key": msg.key() or b""})
    consumer.close()
    return found


def test_undecodable_records_are_dead_lettered_once_per_sink_and_the_sinks_go_on(
    running_stack: Settings, unique: str
) -> None:
    settings = running_stack
    for kind in CONSUMER_GROUPS:
        run_sink_until_caught_up(settings, kind)
    start = end_offsets(settings.kafka_bootstrap_servers, DLQ)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers})
    rogue = [f"not avro {unique} 0".encode(),
             # framed (magic byte 0, schema id 1) but the body is not that schema's record
             b"\x00\x00\x00\x00\x01" + f"corrupt {unique}".encode()]  # fmt: skip
    for value in rogue:
        producer.produce(TOPIC, key=unique.encode(), value=value)
    assert producer.flush(30) == 0

    for _ in range(2):  # a second run must not dead-letter them again
        for kind in CONSUMER_GROUPS:
            run_sink_until_caught_up(settings, kind)

    letters = dead_letters_since(settings, start)
    assert sorted((h["sink"], h["value"]) for h in letters) == sorted(
        (kind.encode(), value) for kind in CONSUMER_GROUPS for value in rogue
    )
    for headers in letters:
        assert headers["source.topic"] == TOPIC.encode()
        assert headers["error.class"] == b"WireFormatError" and headers["error"]
        assert int(headers["source.offset"]) >= 0 and int(headers["source.partition"]) >= 0
