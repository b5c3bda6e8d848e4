"""Produce a request's events and wait, without blocking the event loop, for Kafka's acks.

One idempotent producer (acks=all) per gateway process. A thread serves librdkafka's delivery
callbacks; each request counts its own acknowledgements and is woken once, when the last one
arrives. A request whose events are not all acknowledged within ``ack_timeout_s``, or any of
whose events failed, is a ``KafkaUnavailableError``: the client is never told "accepted" for an
event Kafka did not acknowledge. A fatal producer error (possible with idempotence) replaces
the producer, so the gateway recovers from a broker outage without a restart.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from gateway.errors import KafkaUnavailableError

log = logging.getLogger(__name__)


class _Pending:
    """One request's outstanding acknowledgements (touched by the poll thread only)."""

    __slots__ = ("remaining", "errors", "future", "loop")

    def __init__(self, count: int, future: asyncio.Future[None], loop: asyncio.AbstractEventLoop) -> None:
        self.remaining = count
        self.errors: list[str] = []
        self.future = future
        self.loop = loop

    def on_delivery(self, err: KafkaError | None, _msg: Any) -> None:
        if err is not None:
            self.errors.append(err.str())
        self.remaining -= 1
        if self.remaining == 0:
            self.loop.call_soon_threadsafe(self._finish)

    def _finish(self) -> None:
        if not self.future.done():
            self.future.set_result(None)


class EventProducer:
    def __init__(self, bootstrap: str, *, ack_timeout_s: float, config: dict[str, Any] | None = None) -> None:
        self.ack_timeout_s = ack_timeout_s
        self._config = {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 1,  # a request waits for its acks: keep batching delay small
            "compression.type": "lz4",
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
            # fail deliveries about when the request gives up waiting for them
            "message.timeout.ms": int(ack_timeout_s * 1000),
            "error_cb": self._on_error,
            **(config or {}),
        }
        self._producer = Producer(self._config)
        self._fatal = False
        self._running = True
        self._poller = threading.Thread(target=self._poll, name="kafka-delivery", daemon=True)
        self._poller.start()

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            log.error("fatal Kafka producer error, replacing the producer: %s", err.str())
            self._fatal = True
        else:
            log.warning("Kafka producer: %s", err.str())

    def _poll(self) -> None:
        while self._running:
            self._producer.poll(0.05)

    def _replace_if_fatal(self) -> None:
        if self._fatal:
            old = self._producer
            self._producer = Producer(self._config)
            self._fatal = False
            old.purge()
            old.poll(0)

    async def send(self, topic: str, records: list[tuple[bytes, bytes]]) -> None:
        """Produce ``records`` (key, value); return once Kafka acknowledged every one."""
        if not records:
            return
        self._replace_if_fatal()
        loop = asyncio.get_running_loop()
        pending = _Pending(len(records), loop.create_future(), loop)
        produced = 0
        try:
            for key, value in records:
                self._producer.produce(topic, value, key, on_delivery=pending.on_delivery)
                produced += 1
        except (BufferError, KafkaException) as exc:
            # what was queued may still be delivered: the client retries with the same event ids
            raise KafkaUnavailableError(
                f"Kafka is not keeping up ({exc}); nothing of this request was accepted",
                retry_after_s=1,
            ) from exc
        try:
            await asyncio.wait_for(asyncio.shield(pending.future), timeout=self.ack_timeout_s + 1)
        except TimeoutError as exc:
            raise KafkaUnavailableError(
                f"Kafka did not acknowledge within {self.ack_timeout_s:g}s; nothing of this "
                "request was accepted", retry_after_s=5,
            ) from exc  # fmt: skip
        if pending.errors:
            raise KafkaUnavailableError(
                f"Kafka refused {len(pending.errors)} of {produced} events ({pending.errors[0]}); "
                "nothing of this request was accepted", retry_after_s=5,
            )  # fmt: skip

    def reachable(self, timeout_s: float = 2.0) -> bool:
        """A metadata round trip to the cluster (blocking: call from a thread)."""
        try:
            self._producer.list_topics(timeout=timeout_s)
        except KafkaException:
            return False
        return True

    def close(self, flush_timeout_s: float = 10.0) -> int:
        """Deliver what is queued (up to the timeout), stop polling; returns what is left."""
        left = int(self._producer.flush(flush_timeout_s))
        self._running = False
        self._poller.join(timeout=2)
        return left
