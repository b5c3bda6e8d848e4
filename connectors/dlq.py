"""Dead letters: records a sink cannot decode or map, parked in ``dlq.<source topic>``.

The original key and value bytes are kept; the reason and the source coordinates travel in
headers (``error``, ``error.class``, ``source.topic``, ``source.partition``, ``source.offset``,
and ``sink``: every sink that reads the topic parks its own copy).
``flush`` must succeed before the runner commits past a dead letter, so none is lost.
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, Message, Producer

from connectors.sink import SinkWriteError

log = logging.getLogger(__name__)


def dead_letter_topic(topic: str) -> str:
    return f"dlq.{topic}"


class DeadLetters:
    def __init__(self, bootstrap: str, sink: str) -> None:
        self.sink = sink
        self._producer = Producer(
            {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 20}
        )
        self._failed: list[str] = []
        self.count = 0

    def send(self, msg: Message, error: Exception) -> None:
        self.send_raw(msg.topic() or "", msg.partition() or 0, msg.offset() or 0, msg.key(), msg.value(), error)

    def send_raw(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
                 error: Exception) -> None:  # fmt: skip
        log.warning("dead letter %s[%d]@%d: %s", topic, partition, offset, error)
        headers: list[tuple[str, str | bytes | None]] = [
            ("error", str(error)[:1000].encode()),
            ("error.class", type(error).__name__.encode()),
            ("source.topic", topic.encode()),
            ("source.partition", str(partition).encode()),
            ("source.offset", str(offset).encode()),
            ("sink", self.sink.encode()),
        ]
        self._producer.produce(
            dead_letter_topic(topic), value, key, headers=headers, on_delivery=self._delivered
        )
        self.count += 1
        self._producer.poll(0)

    def _delivered(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._failed.append(err.str())

    def flush(self, timeout_s: float = 30.0) -> None:
        """Every dead letter so far acknowledged, or SinkWriteError (then nothing is committed)."""
        left = self._producer.flush(timeout_s)
        failed, self._failed = self._failed, []
        if left or failed:
            raise SinkWriteError(f"dead-letter topic did not take {left + len(failed)} records: {failed[:1]}")
