"""Dead letters: records a sink will not store, parked in ``dlq.<source topic>``.

The original key and value bytes are kept; the reason and the source coordinates travel in
headers (``error``: the decoder's or the store's own message, ``error.class``, ``source.topic``,
``source.partition``, ``source.offset``, and ``sink``: every sink that reads the topic parks its
own copy). ``park`` returns only once Kafka acknowledged every record, so the offsets that pass
them are stored after them, never before; a crash in between parks them again (at least once).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from confluent_kafka import KafkaError, Message, Producer

from connectors.errors import TransientWriteError
from connectors.sink import Reject

log = logging.getLogger(__name__)


class DeadLetters:
    def __init__(self, bootstrap: str, sink: str, topic_of: Callable[[str], str]) -> None:
        """``topic_of(source topic)`` names the dead-letter topic (``pipelines/topics.py``)."""
        self.sink = sink
        self.topic_of = topic_of
        self._producer = Producer(
            {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5,
             "message.timeout.ms": 30_000,
             # a dead letter is as large as its source record (topics hold up to their
             # max.message.bytes); the dead-letter topic's own limit is the one that counts
             "message.max.bytes": 64 * 1024 * 1024}  # fmt: skip
        )
        self._failed: list[str] = []

    def park(self, rejects: Iterable[Reject], timeout_s: float = 30.0) -> int:
        """Produce every reject and wait for Kafka's acknowledgement; TransientWriteError if any
        was not acknowledged (then nothing past them may be committed)."""
        count = 0
        for reject in rejects:
            r = reject.record
            log.warning("%s: dead letter %s[%d]@%d: %s", self.sink, r.topic, r.partition, r.offset, reject.error)
            headers: list[tuple[str, str | bytes | None]] = [
                ("error", str(reject.error)[:2000].encode()),
                ("error.class", type(reject.error).__name__.encode()),
                ("source.topic", r.topic.encode()),
                ("source.partition", str(r.partition).encode()),
                ("source.offset", str(r.offset).encode()),
                ("sink", self.sink.encode()),
            ]
            self._producer.produce(self.topic_of(r.topic), r.value, r.key, headers=headers, on_delivery=self._delivered)
            self._producer.poll(0)
            count += 1
        left = self._producer.flush(timeout_s)
        failed, self._failed = self._failed, []
        if left or failed:
            raise TransientWriteError(f"dead-letter topic did not take {left + len(failed)} records: {failed[:1]}")
        return count

    def _delivered(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._failed.append(err.str())
