"""Drive a sink: consume, decode, buffer, flush by rows or time, then commit.

Consumers use Kafka's incremental group protocol (KIP-848, ``group.protocol=consumer``): a sink
restarted right after a stop gets its partitions at once instead of waiting out a rebalance.
At-least-once from Kafka, exactly-once into the store: the sink's writes are idempotent and,
where the store records consumed offsets itself, the runner resumes from those on assignment.
A record that cannot be decoded or mapped goes to the dead-letter topic and the sink goes on. A
store that is down: the write is retried with backoff, consumption stops once the buffers are full
(paused, the group kept), nothing is committed, and the sink catches up when the store is back.

Batches are flushed by size or age; the tail of a backlog (flushes by size until the consumer
has caught up) is flushed at once rather than when it is due. Writes overlap consumption
(``connectors.pipeline``): a set of batches is prepared on one thread and written on another
while the loop consumes the next; at most two sets are under way and twice the batch size
buffered. A set's offsets are committed, in order, only once it has landed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from chatstream.avro.serde import ConfluentDecoder, WireFormatError
from connectors.dlq import DeadLetters
from connectors.pipeline import WritePipeline
from connectors.sink import BatchingSink, MappingError, SinkWriteError, SourceRecord

log = logging.getLogger(__name__)


MAX_SETS_IN_FLIGHT = 2  # one being prepared, one being written
STAY_IN_GROUP_AFTER_S = 5.0  # a write that takes longer: pause consumption and poll meanwhile


@dataclass
class RunnerStats:
    rows_written: int = 0
    batches_written: int = 0
    dead_letters: int = 0
    write_failures: int = 0
    commits: int = 0
    last_error: str = ""
    first_record_at: float | None = None  # clock() when the first record arrived
    last_commit_at: float | None = None  # clock() after the last successful commit


@dataclass(frozen=True)
class FlushPolicy:
    max_rows: int
    max_interval_s: float
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 10.0


def _coordinates(msg: Message) -> tuple[str, int, int]:
    """A consumed record's topic, partition and offset (always set on records without error)."""
    return str(msg.topic()), int(msg.partition() or 0), int(msg.offset() or 0)


class SinkRunner:
    def __init__(
        self,
        sink: BatchingSink,
        consumer: Consumer,
        decoder: ConfluentDecoder,
        dead_letters: DeadLetters,
        policy: FlushPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sink = sink
        self.consumer = consumer
        self.decoder = decoder
        self.dead_letters = dead_letters
        self.policy = policy
        self.clock = clock
        self.stopping = threading.Event()
        self.stats = RunnerStats()
        self._positions: dict[tuple[str, int], int] = {}
        self._committed: dict[tuple[str, int], int] = {}
        self._writes = WritePipeline(sink, (policy.backoff_initial_s, policy.backoff_max_s), self.stopping, self._write_failed)

    # -- partition assignment --------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._await_writes()  # the writer and stored_offsets may share a connection
        keys = [(p.topic, p.partition) for p in partitions]
        delay = self.policy.backoff_initial_s
        while True:
            try:
                stored = self.sink.stored_offsets(keys)
                break
            except SinkWriteError as exc:
                log.warning("%s: cannot read stored offsets (%s); retrying in %.1fs", self.sink.name, exc, delay)
                if self.stopping.wait(delay):
                    stored = {}
                    break
                delay = min(delay * 2, self.policy.backoff_max_s)
        # Resume after whichever is further: the store's own offsets (rows committed, Kafka commit
        # maybe lost in a crash) or Kafka's (also past records that went to the dead letters).
        committed = {(c.topic, c.partition): c.offset for c in consumer.committed(partitions, timeout=30)}
        for p in partitions:
            key = (p.topic, p.partition)
            if key in stored:
                p.offset = max(stored[key], committed.get(key, -1))
                log.info("%s: %s[%d] resumes at offset %d", self.sink.name, p.topic, p.partition, p.offset)
        consumer.incremental_assign(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = [(p.topic, p.partition) for p in partitions]
        try:
            self.flush(retry=False)
        except SinkWriteError as exc:
            log.warning("%s: flush on revoke failed (%s); the next owner re-reads", self.sink.name, exc)
        self.sink.drop(keys)
        for key in keys:
            self._positions.pop(key, None)
        consumer.incremental_unassign(partitions)

    # -- the loop ----------------------------------------------------------------------------
    def run(self, idle_exit_s: float | None = None) -> RunnerStats:
        """Consume until ``stop()`` (or, for batch runs, ``idle_exit_s`` without records once
        records have come)."""
        self.consumer.subscribe(self.sink.topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        last_flush = last_record = self.clock()
        draining = False  # flushing by size (a backlog) rather than by time (a trickle)
        try:
            while not self.stopping.is_set():
                oldest = self._writes.oldest()
                if oldest is not None and (oldest.written.done() or self.sink.pending() >= 2 * self.policy.max_rows):
                    self._settle(retry=True)  # landed, or the buffers are full: wait for it
                messages = self.consumer.consume(num_messages=min(self.policy.max_rows, 5000), timeout=0.05)
                if messages:
                    last_record = self.clock()
                    if self.stats.first_record_at is None:
                        self.stats.first_record_at = last_record
                    self._take(messages)
                pending = self.sink.pending() or self._uncommitted()
                full = self.sink.pending() >= self.policy.max_rows
                due = self.clock() - last_flush >= self.policy.max_interval_s
                tail = not messages and draining  # the end of a backlog: nothing more to wait for
                if len(self._writes) < MAX_SETS_IN_FLIGHT and (full or (pending and (due or tail))):
                    self._submit(retry=True)
                    last_flush = self.clock()
                    draining = full
                idle = self.clock() - last_record >= (idle_exit_s or 0)
                busy = pending or len(self._writes)
                if idle_exit_s is not None and self.stats.first_record_at is not None and idle and not busy:
                    break
            self.flush(retry=False)
        finally:
            self._writes.give_up.set()
            self.consumer.close()  # its revoke callback flushes once more
            self._writes.shutdown()
        return self.stats

    def stop(self) -> None:
        self.stopping.set()

    def _take(self, messages: list[Message]) -> None:
        native = self.sink.native
        add_raw = self.sink.add_raw
        positions = self._positions
        for i, msg in enumerate(messages):
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("%s: consume error: %s", self.sink.name, err.str())
                continue
            topic, partition, offset = _coordinates(msg)
            try:
                if native:  # the sink decodes whole batches itself: check framing only
                    payload = msg.value()
                    if payload is None or len(payload) < 5 or payload[0] != 0:
                        raise WireFormatError("not Confluent wire format: no magic byte 0 and schema id")
                    add_raw(topic, partition, offset, msg.key(), payload)
                else:
                    value = self.decoder.decode(msg.value())
                    self.sink.add(SourceRecord(topic, partition, offset, value))
            except (WireFormatError, MappingError) as exc:
                self.dead_letters.send(msg, exc)
                self.stats.dead_letters += 1
            except Exception as exc:  # noqa: BLE001 - registry unreachable: the record is fine
                log.warning("%s: cannot decode %s[%d]@%d yet (%s)", self.sink.name, topic, partition, offset, exc)
                self._rewind(messages[i:])
                self.stopping.wait(self.policy.backoff_initial_s * 5)
                return
            positions[(topic, partition)] = offset + 1

    def _rewind(self, unprocessed: list[Message]) -> None:
        """Seek each partition back to its first record not taken yet."""
        first: dict[tuple[str, int], int] = {}
        for msg in unprocessed:
            if msg.error() is None:
                topic, partition, offset = _coordinates(msg)
                first.setdefault((topic, partition), offset)
        for (topic, partition), offset in first.items():
            self.consumer.seek(TopicPartition(topic, partition, offset))

    def _uncommitted(self) -> bool:
        return any(self._committed.get(k) != v for k, v in self._positions.items())

    # -- write, flush and commit -------------------------------------------------------------
    def _submit(self, retry: bool) -> None:
        """Hand the buffered batches to the write pipeline, with the positions they complete."""
        self._writes.submit(self.sink.take_batches(), dict(self._positions), retry)

    def _write_failed(self, error: str) -> None:
        self.stats.write_failures += 1
        self.stats.last_error = error

    def _settle(self, retry: bool) -> None:
        """Wait for the oldest set in flight, park its rejects, then commit its positions.

        ``retry=True`` (the loop): a write that takes long (the store is down, the writer backing
        off) pauses consumption and keeps polling, so the sink stays in its group (not sooner:
        pausing drops what the consumer has fetched ahead). ``retry=False`` (stopping, or inside
        a rebalance callback, where polling is not allowed): the writes are told to give up. A
        set given up raises SinkWriteError here, after every set under way has been given up and
        its partitions rewound, so nothing past it is ever committed."""
        current = self._writes.oldest()
        if current is None:
            return
        if not retry and not current.written.done():
            self._writes.give_up.set()
        paused = False
        waiting_since = self.clock()
        try:
            while not current.written.done():
                if self.stopping.is_set():
                    self._writes.give_up.set()
                try:
                    current.written.exception(timeout=0.1)
                except TimeoutError:
                    if retry and self.clock() - waiting_since >= STAY_IN_GROUP_AFTER_S:
                        if not paused:
                            self.consumer.pause(self.consumer.assignment())
                            paused = True
                        stray = self.consumer.poll(0)  # may run a rebalance callback that settles this set
                        if stray is not None and stray.error() is None:
                            self._rewind([stray])  # fetched before the pause: read it again later
                        if self._writes.oldest() is not current:
                            return
        finally:
            if paused:
                self.consumer.resume(self.consumer.assignment())
        if current.written.exception() is not None:
            self._abandon()
            current.written.result()  # raises its SinkWriteError
        self._writes.pop()
        self._writes.give_up.clear()
        for batch, rejects in current.written.result():
            for reject in rejects:
                r = reject.record
                self.dead_letters.send_raw(r.topic, r.partition, r.offset, r.key, r.value, reject.error)
            self.stats.dead_letters += len(rejects)
            self.stats.rows_written += batch.size - len(rejects)
            self.stats.batches_written += 1
        self.dead_letters.flush()
        self._commit(current.positions)

    def _abandon(self) -> None:
        """A set failed for good: give up every set under way and read their partitions again
        from each one's first record not committed (what is buffered after goes too)."""
        first: dict[tuple[str, int], int] = {}
        for inflight in self._writes.abandon():
            for batch in inflight.batches:
                first.setdefault((batch.topic, batch.partition), batch.first_offset)
        for key, offset in first.items():
            self.sink.drop([key])
            if key in self._positions:
                self._positions[key] = offset
                try:
                    self.consumer.seek(TopicPartition(key[0], key[1], offset))
                except Exception as exc:  # noqa: BLE001 - not fetching it (being revoked): the next owner re-reads
                    log.info("%s: no seek back on %s[%d] (%s)", self.sink.name, key[0], key[1], exc)

    def _await_writes(self) -> None:
        """Wait until nothing is under way, without polling (rebalance callbacks)."""
        while (oldest := self._writes.oldest()) is not None:
            if oldest.written.done():
                self._settle(retry=True)  # done: no waiting, no polling
            elif self.stopping.wait(0.05):
                self._writes.give_up.set()

    def _commit(self, positions: dict[tuple[str, int], int]) -> None:
        changed = {k: v for k, v in positions.items() if self._committed.get(k) != v}
        if not changed:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in changed.items()]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except Exception as exc:  # noqa: BLE001 - the rows are stored; the next commit covers it
            log.warning("%s: offset commit failed (%s); rows are stored", self.sink.name, exc)
            return
        self._committed.update(changed)
        self.stats.commits += 1
        self.stats.last_commit_at = self.clock()

    def flush(self, retry: bool = True) -> None:
        """Land the sets in flight and every buffered batch, then the dead letters, then commit
        the positions."""
        while self._writes.oldest() is not None:
            self._settle(retry)
        self._submit(retry)
        self._settle(retry)
