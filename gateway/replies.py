"""Answers for the requests this gateway worker holds, and only those.

Each worker reads one partition of ``ai.responses.v1``, its reply partition (named in every
request it sends, ``completion.reply_partition``); the dispatch job writes every event of an
answer to that partition. So a worker reads its own replies, not every worker's, and this holds
with any number of workers: ``CHATSTREAM_REPLY_PARTITION_BASE`` + the worker's index, modulo the
topic's partitions (more workers than partitions share a partition, and each keeps only the
answers it is waiting for).

The partition is read without a consumer group (``assign``), from its end at start-up (an
answer to an earlier process's request has no one to go to), with ``read_uncommitted`` so a
chunk reaches the client as soon as it is written. A thread polls Kafka and hands each reply to
the request's queue on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

log = logging.getLogger(__name__)

Decode = Callable[[bytes], dict[str, Any]]


def reply_partition(base: int, worker: int, partitions: int) -> int:
    return (base + worker) % partitions


class ReplyReader:
    def __init__(self, bootstrap: str, topic: str, partition: int, decode: Decode, *, group: str) -> None:
        """Positions at the partition's end before returning, so no reply to a request sent
        after this is missed. ``KafkaException`` if the partition cannot be read."""
        self.topic = topic
        self.partition = partition
        self._decode = decode
        self._consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": group,  # never joins nor commits: librdkafka wants one for assign()
            "enable.auto.commit": False,
            "isolation.level": "read_uncommitted",
            "fetch.wait.max.ms": 100,
            "fetch.min.bytes": 1,
            "enable.partition.eof": False,
        })  # fmt: skip
        _low, high = self._consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        self._consumer.assign([TopicPartition(topic, partition, high)])
        self._waiting: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="replies", daemon=True)
        self._thread.start()

    def register(self, request_id: str) -> asyncio.Queue[dict[str, Any]]:
        """The queue the request's replies arrive on (call before sending the request)."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._waiting[request_id] = queue
        return queue

    def unregister(self, request_id: str) -> None:
        self._waiting.pop(request_id, None)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def _run(self) -> None:
        assert self._loop is not None
        while not self._stop.is_set():
            try:
                # wait for the first record only, then take what else is there: consume(500, 0.1)
                # would hold a lone chunk until 500 arrived or 100 ms passed
                first = self._consumer.poll(0.1)
                messages = [] if first is None else [first, *self._consumer.consume(499, 0)]
            except KafkaException as exc:
                log.warning("reading replies from %s[%d]: %s", self.topic, self.partition, exc)
                continue
            replies = []
            for message in messages:
                if message.error():
                    continue
                try:
                    reply = self._decode(message.value() or b"")
                except Exception as exc:  # noqa: BLE001 - a bad record must not stop the others' replies
                    log.warning("undecodable reply at %s[%d]@%d: %s", self.topic, self.partition,
                                message.offset(), exc)  # fmt: skip
                    continue
                replies.append(reply)
            if replies:
                try:
                    self._loop.call_soon_threadsafe(self._deliver, replies)
                except RuntimeError:  # the loop closed: shutting down
                    return

    def _deliver(self, replies: list[dict[str, Any]]) -> None:
        for reply in replies:
            queue = self._waiting.get(str(reply["request_id"]))
            if queue is not None:
                queue.put_nowait(reply)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._consumer.close()
