"""Produce one record at once, outside transactions: the chat API's requests and stops.

A chat completion is one record whose answer the client is waiting for, so it does not wait for
a group commit (``gateway.producer``): it is produced straight away by an idempotent producer
(acks=all, no linger) and the request waits for Kafka's acknowledgement. Being outside any
transaction it is never aborted, so the dispatch job may read it with ``read_uncommitted`` and
see it as soon as it is written.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from gateway.errors import KafkaUnavailableError

log = logging.getLogger(__name__)


class DirectProducer:
    def __init__(self, bootstrap: str, *, ack_timeout_s: float, max_message_bytes: int) -> None:
        self.ack_timeout_s = ack_timeout_s
        self._producer = Producer({
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 0,
            "message.max.bytes": max_message_bytes,
            "delivery.timeout.ms": int(ack_timeout_s * 1000),
            "error_cb": lambda err: log.warning("kafka: %s", err),
        })  # fmt: skip
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="direct-producer", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)

    async def send(self, topic: str, key: bytes, value: bytes, *, partition: int | None = None,
                   headers: list[tuple[str, bytes]] | None = None) -> None:  # fmt: skip
        """Return once Kafka has the record; ``KafkaUnavailableError`` (503) if it has not taken
        it within the ack timeout (then it never will: the delivery timeout is the same)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            loop.call_soon_threadsafe(_settle, done, err)

        options: dict[str, Any] = {"headers": headers or [], "on_delivery": delivered}
        if partition is not None:
            options["partition"] = partition
        try:
            self._producer.produce(topic, value, key, **options)
        except BufferError as exc:
            raise KafkaUnavailableError("the gateway's Kafka queue is full", retry_after_s=1) from exc
        except Exception as exc:  # KafkaException: unknown topic or partition, record too large
            raise KafkaUnavailableError(f"Kafka refused the request: {exc}", retry_after_s=1) from exc
        try:
            await asyncio.wait_for(asyncio.shield(done), self.ack_timeout_s + 1)
        except TimeoutError as exc:
            raise KafkaUnavailableError("Kafka did not take the request in time", retry_after_s=1) from exc

    def close(self, timeout_s: float = 5.0) -> None:
        self._producer.flush(timeout_s)
        self._stop.set()
        self._poller.join()


def _settle(done: asyncio.Future[None], err: KafkaError | None) -> None:
    if done.done():
        return
    if err is None:
        done.set_result(None)
    else:
        done.set_exception(KafkaUnavailableError(f"Kafka did not take the request: {err.str()}", retry_after_s=1))
