"""Produce requests' events in Kafka transactions: a request is all of its events or none.

Two transactional producers (idempotent, acks=all) per gateway process take turns. A request's
records are produced at once, on the event loop, into the open transaction of one of them; a
committer thread closes that transaction (flush, commit) while the other producer's opens and
takes the next requests. So many requests share a transaction (group commit), the records of
the next are already on their way while one commits, and the producer that commits next has
had its previous transaction's markers written (right after a commit the same producer's next
transaction would be refused, CONCURRENT_TRANSACTIONS, and retried after a 20 ms back-off).
Consumers read with ``isolation.level=read_committed``, so what an aborted transaction wrote is
never seen.

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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from gateway.errors import GatewayError, KafkaOutcomeUnknownError, KafkaUnavailableError

log = logging.getLogger(__name__)

ABORT_TIMEOUT_S = 2.0
# how long a request waits for a registered producer (a worker just started, a producer being
# replaced) before it is refused
SLOT_WAIT_S = 3.0



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


class _Slot:
    """One transactional producer and the transaction it has open (if any)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.producer: Producer | None = None
        self.requests: list[_Request] = []
        self.in_transaction = False
        self.doomed: str | None = None  # why the open transaction can only be aborted

    @property
    def events(self) -> int:
        return sum(len(r.records) for r in self.requests)


class EventProducer:
    def __init__(self, bootstrap: str, *, transactional_id: str, ack_timeout_s: float,
                 max_message_bytes: int = 1_000_000, config: dict[str, Any] | None = None,
                 on_outcome: Outcome | None = None, slots: int = 2) -> None:  # fmt: skip
        self.ack_timeout_s = ack_timeout_s
        base = {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 1,
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
            "error_cb": self._on_error,
            **(config or {}),
        }
        self._slots = [_Slot({**base, "transactional.id": f"{transactional_id}{suffix}"}) for suffix in "abc"[:slots]]
        self._open: _Slot | None = None  # the slot taking requests; None: none is ready
        self._lock = threading.Lock()
        self._work = threading.Event()
        self._on_outcome = on_outcome or (lambda _outcome, _events: None)
        self._metadata = AdminClient({"bootstrap.servers": bootstrap, "error_cb": _quiet})  # type: ignore[dict-item]
        self._running = True
        self._thread = threading.Thread(target=self._run, name="kafka-transactions", daemon=True)
        self._thread.start()

    def _on_error(self, err: KafkaError) -> None:
        log.log(logging.ERROR if err.fatal() else logging.WARNING, "Kafka producer: %s", err.str())

    # -- the requests' side (event loop) -------------------------------------------------
    async def send(self, topic: str, records: list[tuple[bytes, bytes]]) -> None:
        """Produce ``records`` (key, value) in a transaction; return once it committed."""
        if not records:
            return
        loop = asyncio.get_running_loop()
        request = _Request(topic, records, time.monotonic() + self.ack_timeout_s, loop, loop.create_future())
        await self._slot_open(min(SLOT_WAIT_S, self.ack_timeout_s))
        self._join(request)
        self._work.set()
        try:
            # the committer settles every request by its deadline; this is only a backstop
            await asyncio.wait_for(asyncio.shield(request.future), timeout=self.ack_timeout_s + 5)
        except TimeoutError as exc:
            raise KafkaOutcomeUnknownError(
                f"Kafka did not answer within {self.ack_timeout_s:g}s; the events may or may not "
                "be stored: retry with the same event ids", retry_after_s=5,
            ) from exc  # fmt: skip

    async def _slot_open(self, wait_s: float) -> None:
        """Wait up to ``wait_s`` for a producer that takes requests (registration takes a round
        trip to the transaction coordinator; readiness is probed on one worker of several)."""
        give_up = time.monotonic() + wait_s
        while self._open is None and time.monotonic() < give_up:
            await asyncio.sleep(0.02)

    def _join(self, request: _Request) -> None:
        """Produce the request's records into the open transaction (or refuse it: 503)."""
        with self._lock:
            slot = self._open
            if slot is None or slot.producer is None:
                raise _unavailable("Kafka's transaction coordinator is not reachable")
            if slot.doomed is None:
                try:
                    if not slot.in_transaction:
                        slot.producer.begin_transaction()
                        slot.in_transaction = True
                    for key, value in request.records:
                        slot.producer.produce(request.topic, value, key)
                except (KafkaException, BufferError) as exc:
                    # part of this request may be in the transaction: it can only be aborted now
                    slot.doomed = f"Kafka refused the events ({_reason(exc)})"
            slot.requests.append(request)

    # -- the committer (its own thread) ---------------------------------------------------
    @property
    def ready(self) -> bool:
        """Every producer registered with the transaction coordinator."""
        return all(slot.producer is not None for slot in self._slots)

    def _run(self) -> None:
        while self._running or any(slot.requests for slot in self._slots):
            self._register()
            self._work.wait(0.05)
            self._work.clear()
            with self._lock:
                slot = self._open
                if slot is None or not slot.requests:
                    continue
                following = self._slots[(self._slots.index(slot) + 1) % len(self._slots)]
                self._open = following if following.producer is not None else None
            self._commit(slot)
            with self._lock:
                if self._open is None and slot.producer is not None:
                    self._open = slot

    def _register(self) -> None:
        """Create and register (init_transactions) every slot that has no producer."""
        for slot in self._slots:
            if slot.producer is not None:
                slot.producer.poll(0)
                continue
            producer = Producer(slot.config)
            try:
                producer.init_transactions(self.ack_timeout_s)
            except KafkaException as exc:
                log.warning("Kafka transactions not ready: %s", _reason(exc))
                producer.purge()
                time.sleep(0.2)
                continue
            with self._lock:
                slot.producer = producer
                if self._open is None:
                    self._open = slot

    def _commit(self, slot: _Slot) -> None:
        """Close the slot's transaction: commit it, or abort it; settle its requests either way."""
        requests, slot.requests = slot.requests, []
        producer, doomed = slot.producer, slot.doomed
        slot.in_transaction, slot.doomed = False, None
        assert producer is not None
        deadline = min(r.deadline for r in requests)
        if doomed is not None:
            self._abort(slot)
            self._settle(requests, _unavailable(doomed), "aborted")
            return
        # Flush first: until every record is acknowledged Kafka has not been asked to commit, so
        # a failure here is certainly an abort. Only an EndTxn that goes unanswered is unknown.
        if producer.flush(max(0.1, deadline - time.monotonic())) > 0:
            self._abort(slot)
            self._settle(requests, _unavailable("Kafka did not acknowledge the events in time"), "aborted")
            return
        while True:
            try:
                producer.commit_transaction(max(0.1, deadline - time.monotonic()))
            except KafkaException as exc:
                err: KafkaError = exc.args[0]
                if err.txn_requires_abort():
                    self._abort(slot)
                    self._settle(requests, _unavailable(f"Kafka aborted the transaction ({err.str()})"), "aborted")
                    return
                if err.retriable() and time.monotonic() < deadline:
                    continue
                log.warning("transaction outcome unknown (%s); replacing the producer", err.str())
                self._discard(slot)
                self._settle(requests, KafkaOutcomeUnknownError(
                    f"Kafka did not confirm the commit ({err.str()}); the events may or may not be "
                    "stored: retry with the same event ids", retry_after_s=5), "unknown")  # fmt: skip
                return
            self._settle(requests, None, "committed")
            return

    def _abort(self, slot: _Slot) -> None:
        assert slot.producer is not None
        try:
            # briefly: a producer that cannot abort is replaced, and its successor's fencing aborts
            slot.producer.abort_transaction(min(self.ack_timeout_s, ABORT_TIMEOUT_S))
        except KafkaException as exc:
            log.warning("could not abort the transaction (%s); replacing the producer", _reason(exc))
            self._discard(slot)

    def _discard(self, slot: _Slot) -> None:
        """Drop the slot's producer; its next one (same transactional.id) fences it and settles
        the transaction it left."""
        with self._lock:
            producer, slot.producer = slot.producer, None
            if self._open is slot:
                self._open = None
        if producer is not None:
            producer.purge()
            producer.poll(0)

    def _settle(self, requests: list[_Request], error: GatewayError | None, outcome: str) -> None:
        for request in requests:
            request.settle(error)
        self._on_outcome(outcome, sum(len(r.records) for r in requests))

    # -- lifecycle -----------------------------------------------------------------------
    def reachable(self, timeout_s: float = 2.0) -> bool:
        """A metadata round trip to the cluster, and transactions ready (blocking: call from a thread)."""
        return self.ready and self.topic_exists(None, timeout_s) is True

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
        """Commit what is open (each request within its deadline), then stop."""
        self._running = False
        self._work.set()
        self._thread.join(timeout=timeout_s + self.ack_timeout_s)


def _unavailable(why: str) -> KafkaUnavailableError:
    return KafkaUnavailableError(f"{why}; nothing of this request was accepted", retry_after_s=5)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return str(exc.args[0].str())
    return str(exc)


def _quiet(_err: KafkaError) -> None:
    """The readiness probe's client: its connection errors are the probe's answer, not log lines."""
