"""Where lateness starts when the job resumes from a checkpoint: the restore floor.

Flink checkpoints no source watermark. A restored job's filter would start from none, while its
restored window operators remember how far they got. An event that was late before a crash and
is read again after it would then pass the filter: the tumbling windows drop it unreported (their
progress is restored) and the session windows count it as a new session.

What the job has committed downstream bounds that lost watermark from below: a window was emitted
once the watermark passed its end, a session once it passed its last event plus the gap. So the
restored job treats as late every event before the newest such point among its committed outputs
(read_committed tails of its windows and sessions topics, its own rows only: ``client`` names the
job by its consumer group). An event late before the crash for an emitted window or session is
late again; windows the checkpoint left open keep every event they would have taken.

Two cases this cannot see, both narrow: events late for a minute that had no traffic at all between
the newest emitted window and the checkpoint's watermark, and a job killed in the milliseconds
between a checkpoint completing and its Kafka transaction being committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

log = logging.getLogger(__name__)

TAIL = 5_000
"""Records read back from the end of each partition (a job emits in watermark order)."""


def floor_ms(window_ends: Iterable[int], session_ends: Iterable[int], session_gap_ms: int) -> int | None:
    """The newest point the watermark had surely passed: a window's end, a session's last event
    plus the gap (epoch ms); None when nothing was committed."""
    points = [*window_ends, *(end + session_gap_ms for end in session_ends)]
    return max(points) if points else None


def committed_tail(bootstrap: str, topic: str, decode: Callable[[bytes | None], dict[str, Any]],
                   *, tail: int = TAIL, timeout_s: float = 30.0) -> list[dict[str, Any]]:  # fmt: skip
    """The last ``tail`` committed records of every partition of ``topic``, decoded."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": "chatstream-engagement-resume", "enable.auto.commit": False,
        "isolation.level": "read_committed", "enable.partition.eof": True,
    })  # fmt: skip
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return []
        assignment = []
        for partition in metadata.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s)
            if high > low:
                assignment.append(TopicPartition(topic, partition, max(low, high - tail)))
        if not assignment:
            return []
        consumer.assign(assignment)
        records, open_partitions = [], {tp.partition for tp in assignment}
        while open_partitions:
            msg = consumer.poll(timeout_s)
            if msg is None:
                raise TimeoutError(f"{topic} did not deliver its last records within {timeout_s:.0f} s")
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    open_partitions.discard(msg.partition())
                continue
            records.append(decode(msg.value()))
        return records
    finally:
        consumer.close()


def restore_floor(bootstrap: str, windows_topic: str, sessions_topic: str, job_name: str, session_gap_ms: int,
                  decode: Callable[[bytes | None], dict[str, Any]]) -> int | None:  # fmt: skip
    """``floor_ms`` over the committed outputs of the job named ``job_name``."""

    def mine(topic: str, column: str) -> list[int]:
        return [_epoch_ms(r[column]) for r in committed_tail(bootstrap, topic, decode) if r.get("client") == job_name]

    floor = floor_ms(mine(windows_topic, "window_end"), mine(sessions_topic, "session_end"), session_gap_ms)
    log.info("restore floor: events before %s are late", floor)
    return floor


def _epoch_ms(value: Any) -> int:
    """fastavro reads timestamp-millis as an aware datetime."""
    return round(value.timestamp() * 1000) if hasattr(value, "timestamp") else int(value)
