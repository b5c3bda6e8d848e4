"""Where the dispatch group reads from when it starts: never before the oldest request that can
still be answered.

A group with nothing committed would start at the end of ``chat.actions.v1`` (missing the
requests sent while it formed) or at its beginning (reading days of chat actions before
answering anyone); a group that was down for hours would read all it missed first. Before a
worker starts, each partition's committed offset is moved up to ``now - lookback_s`` (the
requests' longest deadline) when it is older: nothing before that can be answered, nothing after
it is skipped. Kafka takes such a commit only while the group has no members; with workers
running, they are reading already and their offsets stay as they are.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition

log = logging.getLogger(__name__)


def skip_unanswerable(bootstrap: str, group: str, topic: str, partitions: int, lookback_s: float) -> list[int]:
    """Move ``group``'s offsets on ``topic`` up to ``now - lookback_s``; the partitions moved."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        committed = {tp.partition: tp.offset for tp in
                     consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)}  # fmt: skip
        since_ms = int((time.time() - lookback_s) * 1000)
        moved = []
        for tp in consumer.offsets_for_times([TopicPartition(topic, p, since_ms) for p in range(partitions)], timeout=10):
            oldest_useful = tp.offset
            if oldest_useful < 0:  # nothing that recent: the end
                oldest_useful = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)[1]
            if committed[tp.partition] < oldest_useful:
                moved.append(TopicPartition(topic, tp.partition, oldest_useful))
        if moved:
            consumer.commit(offsets=moved, asynchronous=False)
            log.info("group %s starts %s at %s", group, topic, [(tp.partition, tp.offset) for tp in moved])
        return [tp.partition for tp in moved]
    except KafkaException as exc:  # the group has members: they are reading already
        log.info("group %s keeps its offsets on %s: %s", group, topic, exc)
        return []
    finally:
        consumer.close()
