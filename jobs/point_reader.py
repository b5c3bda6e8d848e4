"""Stage 1 of the minute-series jobs: source records to series points, read in batches.

``PointReader`` runs on a thread of its own with confluent-kafka, in the consumer group
``<app>-points``: it takes up to ``batch`` records at a time, decodes them, turns them into
series points (the job's ``Extract`` per topic), folds them (``combine``), sends one message per
series-topic partition with that partition's points, in order, waits until Kafka has them all,
and only then commits the batch's offsets: at least once, a crash re-reads at most one batch.
Faust's stream would spend a task and a wait per record (``bench ops-jobs``: about 9,000
records/s a worker); this reads, decodes and forwards several times that.

A record that does not decode (not Confluent Avro, an unknown schema) is skipped and counted. A
series-topic send that fails stops the reader before it commits (``failed`` says why), and the
job's ``/readyz`` reports it.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer

from jobs.anomaly.series import Observation, combine

log = logging.getLogger(__name__)

Extract = Callable[[Mapping[str, Any]], list[Observation]]
Decode = Callable[[bytes], Mapping[str, Any]]
Encode = Callable[[list[Observation]], bytes]


class PointReader:
    def __init__(self, *, bootstrap: str, group: str, sources: Mapping[str, Extract], decode: Decode, series_topic: str,
                 partition: Callable[[str], int], encode: Encode, on_records: Callable[[str, int], None],
                 on_undecodable: Callable[[str], None], batch: int = 5000) -> None:  # fmt: skip
        self.sources = dict(sources)
        self.decode = decode
        self.series_topic = series_topic
        self.partition = partition
        self.encode = encode
        self.on_records = on_records
        self.on_undecodable = on_undecodable
        self.batch = batch
        self.consumer_config = {
            "bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "isolation.level": "read_committed", "fetch.max.bytes": 52_428_800, "session.timeout.ms": 10_000,
            "error_cb": self._kafka_error,
        }  # fmt: skip
        self.producer_config = {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5,
                                "error_cb": self._kafka_error}  # fmt: skip
        self.consumer: Consumer | None = None  # made by ``start``
        self.producer: Producer | None = None
        self.skipped: collections.Counter[str] = collections.Counter()
        self.failed: str | None = None
        self.batches = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"points-{group}", daemon=True)

    @property
    def started(self) -> bool:
        return self.consumer is not None

    def start(self) -> None:
        self.consumer = Consumer(self.consumer_config)
        self.producer = Producer(self.producer_config)
        self.consumer.subscribe(list(self.sources))
        self._thread.start()

    def stop(self, timeout_s: float = 30) -> None:
        """Finish the batch in hand (sent and committed), leave the group."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout_s)
        if self.consumer is not None:
            self.consumer.close()

    @property
    def healthy(self) -> bool:
        return self.failed is None and (self._thread.is_alive() or self._stop.is_set())

    def points(self, messages: list[Message]) -> list[Observation]:
        """The batch's points, folded; undecodable records skipped and counted."""
        found: list[Observation] = []
        read: collections.Counter[str] = collections.Counter()
        for message in messages:
            topic, value = message.topic() or "", message.value()
            if message.error() is not None or value is None or topic not in self.sources:
                continue
            read[topic] += 1
            try:
                found += self.sources[topic](self.decode(value))
            except Exception as exc:  # noqa: BLE001 - a record we cannot read is skipped, counted
                self.on_undecodable(topic)
                self.skipped[topic] += 1
                if self.skipped[topic] in (1, 10, 100) or self.skipped[topic] % 1000 == 0:
                    log.warning("%d records of %s skipped so far; the last: %s", self.skipped[topic], topic, exc)
        for topic, count in read.items():
            self.on_records(topic, count)
        return combine(found)

    def forward(self, points: list[Observation]) -> None:
        """One message per series-topic partition, in order; returns once Kafka has them all."""
        assert self.producer is not None, "start() first"
        by_partition: dict[int, list[Observation]] = collections.defaultdict(list)
        for point in points:
            by_partition[self.partition(point.series)].append(point)
        errors: list[KafkaError] = []

        def delivered(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                errors.append(error)

        for partition, found in sorted(by_partition.items()):
            self.producer.produce(self.series_topic, self.encode(found), b"_points", partition=partition, on_delivery=delivered)
        if self.producer.flush(60) or errors:
            raise KafkaException(errors[0] if errors else KafkaError(KafkaError._MSG_TIMED_OUT))

    def _run(self) -> None:
        assert self.consumer is not None
        try:
            while not self._stop.is_set():
                messages = self.consumer.consume(self.batch, timeout=0.5)
                if not messages:
                    continue
                self.forward(self.points(messages))
                try:
                    self.consumer.commit(asynchronous=False)
                except KafkaException as exc:
                    if exc.args[0].code() != KafkaError._NO_OFFSET:  # a batch of errors only: nothing to commit
                        raise
                self.batches += 1
        except Exception as exc:  # noqa: BLE001 - reported by readiness and the log; nothing is committed past it
            self.failed = f"{type(exc).__name__}: {exc}"
            log.exception("the point reader stopped: %s", self.failed)

    @staticmethod
    def _kafka_error(error: KafkaError) -> None:
        log.warning("point reader: Kafka: %s", error)
