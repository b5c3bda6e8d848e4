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


def data_end_offsets(bootstrap: str, topic: str, timeout_s: float = 10.0) -> dict[int, int]:
    """Per partition, one past the last record a consumer can read: below the end offset when
    the partition ends with a transaction's commit marker (a transactional producer, e.g. Flink's
    exactly-once sink), which takes an offset but is never delivered. A consumer that committed
    "the last record read + 1", as Faust does, has caught up when it reaches these."""
    ends = end_offsets(bootstrap, topic, timeout_s)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"chatstream-lag-{uuid.uuid4()}",
                         "enable.auto.commit": False, "isolation.level": "read_committed"})  # fmt: skip
    found: dict[int, int] = {}
    try:
        for partition, end in ends.items():
            low, _ = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s)
            found[partition] = low
            if end <= low:
                continue
            consumer.assign([TopicPartition(topic, partition, max(low, end - 50))])  # markers are few at the end
            deadline = time.monotonic() + timeout_s
            while found[partition] < end and time.monotonic() < deadline:
                batch = consumer.consume(100, timeout=1.0)
                if not batch:
                    break  # read to the end: what is left is markers
                for message in batch:
                    offset = message.offset()
                    if message.error() is None and offset is not None:
                        found[partition] = max(found[partition], offset + 1)
    finally:
        consumer.close()
    return found


def wait_committed(bootstrap: str, group: str, topic: str, targets: dict[int, int], timeout_s: float) -> bool:
    """Poll until ``group`` has committed ``topic`` through ``targets`` (a partition -> offset
    snapshot: records written later do not move the goal) or the timeout passes; whether it did."""
    deadline = time.monotonic() + timeout_s
    while True:
        done = committed_offsets(bootstrap, group, topic, list(targets))
        if all(done.get(p, 0) >= offset for p, offset in targets.items()):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
