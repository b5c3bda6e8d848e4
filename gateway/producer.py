"""Produce requests' events in Kafka transactions: a request is all of its events or none.

Transactional producers (idempotent, acks=all) per gateway process, driven by one thread that
owns them. Requests queue their encoded records; the thread takes every request waiting,
produces them in one transaction and commits it (group commit: while one transaction commits,
the next requests gather, so throughput holds as load grows). Consumers read with
``isolation.level=read_committed``, so what an aborted transaction wrote is never seen.

What each request is told is true:

- committed: 202, every event is in Kafka;
- the transaction failed before its commit, or Kafka said the commit must be aborted:
  ``KafkaUnavailableError`` (503), none of its events will ever be read;
- the commit was sent but Kafka did not answer before the request's deadline (the broker
  went away mid-commit), or the producer failed fatally during it: ``KafkaOutcomeUnknownError``
  (504); the events may or may not be stored, and a retry with the same event ids is safe
  (the stores keep one copy per event).

A producer that failed or cannot settle its transaction is replaced by a new one with the same
``transactional.id``: Kafka fences the old one and aborts what it left open, so read_committed
consumers are not held back for ``transaction.timeout.ms``.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from gateway.errors import GatewayError, KafkaOutcomeUnknownError, KafkaUnavailableError

log = logging.getLogger(__name__)

MAX_EVENTS_PER_TRANSACTION = 50_000


@dataclass(eq=False)
class _Request:
    topic: str
    records: list[tuple[bytes, bytes]]
    deadline: float  # time.monotonic()
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None] = field(repr=False)

    def settle(self, error: GatewayError | None) -> None:
        try:
            self.loop.call_soon_threadsafe(self._set, error)
        except RuntimeError:  # the loop closed: the client is gone
            pass

    def _set(self, error: GatewayError | None) -> None:
        if self.future.done():
            return
        if error is None:
            self.future.set_result(None)
        else:
            self.future.set_exception(error)


Outcome = Callable[[str, int], None]  # (committed|aborted|unknown, events)


class EventProducer:
    """The gateway process's side: requests queue here and one thread (``_Committer``) commits them."""

    def __init__(self, bootstrap: str, *, transactional_id: str, ack_timeout_s: float,
                 max_message_bytes: int = 1_000_000, config: dict[str, Any] | None = None,
                 on_outcome: Outcome | None = None) -> None:  # fmt: skip
        self.ack_timeout_s = ack_timeout_s
        base = {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 0,  # commit flushes at once anyway
            "compression.type": "lz4",
            "message.max.bytes": max_message_bytes,
            "batch.size": min(1_000_000, max_message_bytes),
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
            "message.timeout.ms": int(ack_timeout_s * 1000),
            # the commit's outcome is the request's: no per-message report to hand to Python
            "delivery.report.only.error": True,
            # a gateway that dies mid-transaction without coming back holds read_committed
            # consumers at most this long (one that comes back aborts it at once)
            "transaction.timeout.ms": int((ack_timeout_s + 5) * 1000),
            **(config or {}),
        }
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._metadata = AdminClient({"bootstrap.servers": bootstrap, "error_cb": _quiet})  # type: ignore[dict-item]
        self._committer = _Committer({**base, "transactional.id": transactional_id}, self._queue, ack_timeout_s,
                                     on_outcome or (lambda _outcome, _events: None))  # fmt: skip

    async def send(self, topic: str, records: list[tuple[bytes, bytes]]) -> None:
        """Produce ``records`` (key, value) in a transaction; return once it committed."""
        if not records:
            return
        loop = asyncio.get_running_loop()
        request = _Request(topic, records, time.monotonic() + self.ack_timeout_s, loop, loop.create_future())
        self._queue.put(request)
        try:
            # the committer settles every request by its deadline; this is only a backstop
            await asyncio.wait_for(asyncio.shield(request.future), timeout=self.ack_timeout_s + 5)
        except TimeoutError as exc:
            raise KafkaOutcomeUnknownError(
                f"Kafka did not answer within {self.ack_timeout_s:g}s; the events may or may not "
                "be stored: retry with the same event ids", retry_after_s=5,
            ) from exc  # fmt: skip

    def reachable(self, timeout_s: float = 2.0) -> bool:
        """A metadata round trip to the cluster, and transactions ready (blocking: call from a thread)."""
        return self._committer.ready and self.topic_exists(None, timeout_s) is True

    def topic_exists(self, topic: str | None, timeout_s: float = 2.0) -> bool | None:
        """Whether ``topic`` exists (None: the cluster did not answer). Blocking."""
        try:
            metadata = self._metadata.list_topics(topic, timeout=timeout_s)
        except KafkaException:
            return None
        if topic is None:
            return True
        found = metadata.topics.get(topic)
        return found is not None and found.error is None

    def close(self, timeout_s: float = 10.0) -> None:
        """Commit what is queued (each request within its deadline), then stop."""
        self._committer.running = False
        self._queue.put(None)
        self._committer.thread.join(timeout=timeout_s + self.ack_timeout_s)


class _Committer:
    """One thread and the transactional producers it alone drives. Two producers take turns:
    right after a commit Kafka is still writing that transaction's markers, and the same
    producer's next transaction would be refused (CONCURRENT_TRANSACTIONS) and retried after a
    20 ms back-off; the other producer's last transaction is one commit older and settled."""

    def __init__(self, config: dict[str, Any], requests: queue.SimpleQueue[_Request | None],
                 ack_timeout_s: float, on_outcome: Outcome, slots: int = 2) -> None:  # fmt: skip
        self._configs = [{**config, "transactional.id": f"{config['transactional.id']}{chr(ord('a') + n)}",
                          "error_cb": self._on_error} for n in range(slots)]  # fmt: skip
        self._producers: list[Producer | None] = [None] * slots
        self._slot = 0
        self._queue = requests
        self.ack_timeout_s = ack_timeout_s
        self._on_outcome = on_outcome
        self.running = True
        self.thread = threading.Thread(target=self._run, name=f"kafka-{config['transactional.id']}", daemon=True)
        self.thread.start()

    def _on_error(self, err: KafkaError) -> None:
        log.log(logging.ERROR if err.fatal() else logging.WARNING, "Kafka producer: %s", err.str())

    @property
    def ready(self) -> bool:
        """Every producer registered with the transaction coordinator."""
        return all(p is not None for p in self._producers)

    def _run(self) -> None:
        for self._slot in range(len(self._producers)):  # register at start, not on a client's time
            self._ready_producer(time.monotonic() + self.ack_timeout_s)
        self._slot = 0
        while self.running or not self._queue.empty():
            group = self._take(0.05)
            if not group:
                continue
            live = self._expire(group)
            if live:
                self._transact(live)

    def _take(self, wait_s: float) -> list[_Request]:
        """Every request waiting (up to the transaction's size), after waiting ``wait_s`` for one."""
        try:
            first = self._queue.get(timeout=wait_s)
        except queue.Empty:
            for producer in self._producers:
                if producer is not None:
                    producer.poll(0)
            return []
        if first is None:
            return []
        group = [first]
        events = sum(len(r.records) for r in group)
        while events < MAX_EVENTS_PER_TRANSACTION:
            try:
                request = self._queue.get_nowait()
            except queue.Empty:
                break
            if request is None:
                break
            group.append(request)
            events += len(request.records)
        return group

    def _expire(self, group: list[_Request]) -> list[_Request]:
        """Settle requests whose deadline passed before their transaction began (never produced)."""
        now = time.monotonic()
        live = [r for r in group if r.deadline > now]
        for request in group:
            if request.deadline <= now:
                request.settle(self._unavailable("Kafka was not reachable in time"))
        return live

    def _unavailable(self, why: str) -> KafkaUnavailableError:
        return KafkaUnavailableError(f"{why}; nothing of this request was accepted", retry_after_s=5)

    def _ready_producer(self, deadline: float) -> Producer | None:
        """The producer, created and registered with the coordinator if needed (None: not in time)."""
        while self._producers[self._slot] is None:
            producer = Producer(self._configs[self._slot])
            try:
                producer.init_transactions(max(0.5, deadline - time.monotonic()))
            except KafkaException as exc:
                log.warning("Kafka transactions not ready: %s", exc.args[0].str())
                producer.purge()
                if time.monotonic() >= deadline:
                    return None
                time.sleep(0.2)
                continue
            self._producers[self._slot] = producer
        return self._producers[self._slot]

    def _discard(self) -> None:
        """Drop the producer; the next one (same transactional.id) fences it and settles its transaction."""
        producer = self._producers[self._slot]
        if producer is not None:
            producer.purge()
            producer.poll(0)
            self._producers[self._slot] = None

    def _transact(self, group: list[_Request]) -> None:
        try:
            self._transact_in_slot(group)
        finally:
            self._slot = (self._slot + 1) % len(self._producers)

    def _transact_in_slot(self, group: list[_Request]) -> None:
        deadline = min(r.deadline for r in group)
        producer = self._ready_producer(deadline)
        if producer is None:
            self._settle(group, self._unavailable("Kafka's transaction coordinator was not reachable"), "aborted")
            return
        try:
            producer.begin_transaction()
            for request in group:
                for key, value in request.records:
                    self._produce(producer, request.topic, key, value)
        except (KafkaException, BufferError) as exc:
            self._abort(producer)
            self._settle(group, self._unavailable(f"Kafka refused the events ({_reason(exc)})"), "aborted")
            return
        # Flush first: until every record is acknowledged Kafka has not been asked to commit, so
        # a failure here is certainly an abort. Only an EndTxn that goes unanswered is unknown.
        if producer.flush(max(0.1, deadline - time.monotonic())) > 0:
            self._abort(producer)
            self._settle(group, self._unavailable("Kafka did not acknowledge the events in time"), "aborted")
            return
        while True:
            try:
                producer.commit_transaction(max(0.1, deadline - time.monotonic()))
            except KafkaException as exc:
                err: KafkaError = exc.args[0]
                if err.txn_requires_abort():
                    self._abort(producer)
                    self._settle(group, self._unavailable(f"Kafka aborted the transaction ({err.str()})"), "aborted")
                    return
                if err.retriable() and time.monotonic() < deadline:
                    continue
                log.warning("transaction outcome unknown (%s); replacing the producer", err.str())
                self._discard()
                self._settle(group, KafkaOutcomeUnknownError(
                    f"Kafka did not confirm the commit ({err.str()}); the events may or may not be "
                    "stored: retry with the same event ids", retry_after_s=5), "unknown")  # fmt: skip
                return
            self._settle(group, None, "committed")
            return

    def _produce(self, producer: Producer, topic: str, key: bytes, value: bytes) -> None:
        while True:
            try:
                producer.produce(topic, value, key)
                return
            except BufferError:
                producer.poll(0.01)  # the local queue is full: let deliveries drain it

    def _abort(self, producer: Producer) -> None:
        try:
            producer.abort_transaction(self.ack_timeout_s)
        except KafkaException as exc:
            log.warning("could not abort the transaction (%s); replacing the producer", exc.args[0].str())
            self._discard()

    def _settle(self, group: list[_Request], error: GatewayError | None, outcome: str) -> None:
        for request in group:
            request.settle(error)
        self._on_outcome(outcome, sum(len(r.records) for r in group))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return str(exc.args[0].str())
    return str(exc)


def _quiet(_err: KafkaError) -> None:
    """The readiness probe's client: its connection errors are the probe's answer, not log lines."""
