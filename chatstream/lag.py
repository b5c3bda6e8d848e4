"""How far consumers are behind: topic end offsets against a group's committed offsets."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition


_COORDINATOR_MOVING = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
}


def _consumer(bootstrap: str, group: str | None = None) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group or f"chatstream-lag-{uuid.uuid4()}",
            "enable.auto.commit": False,
        }
    )


def end_offsets(bootstrap: str, topic: str, timeout_s: float = 10.0) -> dict[int, int]:
    """The high watermark of every partition of ``topic``."""
    consumer = _consumer(bootstrap)
    try:
        partitions = consumer.list_topics(topic, timeout=timeout_s).topics[topic].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)[1] for p in partitions}
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: list[int], timeout_s: float = 10.0) -> dict[int, int]:
    """The group's committed offsets (0 where it committed none), without joining the group.

    Retriable broker answers (the group coordinator still loading after a start) are retried
    until ``timeout_s``.
    """
    consumer = _consumer(bootstrap, group)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                found = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=timeout_s)
                return {tp.partition: max(tp.offset, 0) for tp in found}
            except KafkaException as exc:
                error = exc.args[0]
                transient = error.retriable() or error.code() in _COORDINATOR_MOVING
                if not transient or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        consumer.close()


def lag(bootstrap: str, group: str, topic: str) -> int:
    ends = end_offsets(bootstrap, topic)
    done = committed_offsets(bootstrap, group, topic, list(ends))
    return sum(max(0, end - done.get(p, 0)) for p, end in ends.items())


def wait_caught_up(bootstrap: str, groups: list[str], topic: str, timeout_s: float) -> dict[str, int]:
    """Poll until every group's lag on ``topic`` is 0 or the timeout passes; the last lags."""
    deadline = time.monotonic() + timeout_s
    while True:
        lags = {group: lag(bootstrap, group, topic) for group in groups}
        if not any(lags.values()) or time.monotonic() > deadline:
            return lags
        time.sleep(0.5)
