"""Drive a sink: consume, buffer raw records, flush by rows or time, then commit.

At-least-once from Kafka, exactly-once into the store: the sink's writes are idempotent, and on
assignment the runner resumes from the store's own offsets where it keeps them (or Kafka's, if
further), skipping records the store already holds (``Sink.stored_offsets_from``). Rebalances
are incremental (cooperative): only the partitions that move are revoked and assigned.

One thread consumes (this loop, the only caller of ``consume``); flushes are prepared and
written on two more (``connectors.pipeline``), at most ``max_in_flight`` at once, and committed
here, in order, once they landed. When the buffers are full the loop waits for the oldest flush;
a wait longer than ``stay_in_group_after_s`` (the store is down) pauses the partitions and keeps
polling, so the sink stays in its group. The rebalance callbacks never call back into the loop:
a revocation gives up the flushes under way, commits what landed and forgets the partitions.
When to flush is ``connectors.policy``'s pure decision; where each partition stands is
``connectors.offsets``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from chatstream.avro.serde import WireFormatError
from connectors.dlq import DeadLetters
from connectors.errors import SinkWriteError
from connectors.health import Progress, SinkMetrics
from connectors.offsets import OffsetTracker
from connectors.pipeline import InFlight, WritePipeline
from connectors.policy import FlushPolicy, LoopState, must_wait, next_backoff, should_flush
from connectors.sink import Buffers, RawRecord, Reject, Route, Sink

log = logging.getLogger(__name__)

LAG_EVERY_S = 2.0


@dataclass
class RunnerStats:
    rows_written: int = 0
    flushes: int = 0
    dead_letters: int = 0
    skipped: int = 0  # records the store already held after a crash
    commits: int = 0
    first_record_at: float | None = None  # clock() when the first record arrived
    last_commit_at: float | None = None  # clock() after the last successful commit


class SinkRunner:
    def __init__(
        self,
        sink: Sink,
        routes: list[Route],
        consumer: Consumer,
        dead_letters: DeadLetters,
        policy: FlushPolicy,
        stopping: threading.Event,
        *,
        progress: Progress | None = None,
        metrics: SinkMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sink = sink
        self.consumer = consumer
        self.policy = policy
        self.stopping = stopping
        self.clock = clock
        self.progress = progress or Progress(float("inf"), clock)
        self.metrics = metrics or SinkMetrics(sink.name, self.progress)
        self.stats = RunnerStats()
        self.buffers = Buffers(routes)
        self.offsets = OffsetTracker()
        self._early: list[Reject] = []  # rejected before decoding, parked with the next flush
        self._writes = WritePipeline(sink, dead_letters, policy, stopping, self.progress, self.metrics)
        self._paused = False

    # -- partition assignment (rebalance callbacks: no polling, no flushing) -------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = [(p.topic, p.partition) for p in partitions]
        stored = self._retry_store(lambda: self.sink.resume_offsets(keys), "read its offsets") or {}
        committed = {(c.topic, c.partition): c.offset for c in consumer.committed(partitions, timeout=30)}
        # Resume after whichever is further: the store's own offsets (rows stored, the Kafka commit
        # lost in a crash) or Kafka's (also past records that went to the dead letters).
        starts = {k: max(stored[k], committed.get(k, -1)) for k in keys if k in stored}
        from_kafka = {k: committed[k] for k in keys if k not in stored and committed.get(k, -1) >= 0}
        held = self._retry_store(lambda: self.sink.stored_offsets_from({**from_kafka, **starts}), "read what it holds") or {}
        for p in partitions:
            key = (p.topic, p.partition)
            if key in starts:
                p.offset = starts[key]
            self.offsets.assign(key, starts.get(key, from_kafka.get(key)), held.get(key))
            if key in starts or key in held:
                log.info("%s: %s[%d] resumes at offset %d, %d record(s) past it already stored",
                         self.sink.name, p.topic, p.partition, p.offset, len(held.get(key, ())))  # fmt: skip
        consumer.incremental_assign(partitions)
        if self._paused:
            consumer.pause(partitions)

    def _retry_store(self, read: Callable[[], dict], what: str) -> dict | None:  # type: ignore[type-arg]
        delay = self.policy.backoff_initial_s
        while True:
            try:
                return read()
            except SinkWriteError as exc:
                self.progress.failed(f"cannot {what}: {exc}")
                log.warning("%s: cannot %s (%s); retrying in %.1fs", self.sink.name, what, exc, delay)
                if self.stopping.wait(delay):
                    return None
                delay = next_backoff(delay, self.policy)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = [(p.topic, p.partition) for p in partitions]
        self._settle_all(give_up=True)
        self.buffers.drop(keys)
        self.offsets.forget(keys)
        consumer.incremental_unassign(partitions)

    # -- the loop ----------------------------------------------------------------------------
    def run(self, idle_exit_s: float | None = None) -> RunnerStats:
        """Consume until stopped (or, for batch runs, ``idle_exit_s`` without records once
        records have come)."""
        self.consumer.subscribe(self.buffers.topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        last_flush = last_record = last_lag = self.clock()
        draining = False
        try:
            while not self.stopping.is_set():
                self._settle_landed()
                self._wait_if_full()
                messages = self.consumer.consume(num_messages=min(self.policy.max_rows, 5000), timeout=0.05)
                now = self.clock()
                if messages:
                    last_record = now
                    if self.stats.first_record_at is None:
                        self.stats.first_record_at = now
                    self._take(messages)
                state = self._state(now - last_flush, bool(messages), draining)
                if should_flush(state, self.policy):
                    self._submit()
                    last_flush = self.clock()
                    draining = state.buffered >= self.policy.max_rows
                idle = not (self.buffers.pending or len(self._writes) or self.offsets.uncommitted())
                if idle:
                    self.progress.moved()  # nothing to do is not being stuck
                    if not messages and self._past_markers():
                        self._commit(self.offsets.snapshot())
                if now - last_lag >= LAG_EVERY_S:
                    self._report_lag()
                    last_lag = now
                waited = self.clock() - last_record >= (idle_exit_s or 0)
                if idle_exit_s is not None and self.stats.first_record_at is not None and waited and idle:
                    break
            self._submit()
            self._settle_all(give_up=False)
        finally:
            self._writes.give_up.set()
            self.consumer.close()  # its revoke callback settles once more
            self._writes.shutdown()
        return self.stats

    def stop(self) -> None:
        self.stopping.set()

    def _state(self, since_flush_s: float, got_records: bool, draining: bool) -> LoopState:
        return LoopState(self.buffers.pending, self.offsets.uncommitted(), len(self._writes), since_flush_s,
                         got_records, draining)  # fmt: skip

    def _take(self, messages: list[Message]) -> None:
        add = self.buffers.add
        take = self.offsets.take
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("%s: consume error: %s", self.sink.name, err.str())
                continue
            topic, partition, offset = str(msg.topic()), int(msg.partition() or 0), int(msg.offset() or 0)
            if not take((topic, partition), offset):
                self.stats.skipped += 1
                continue
            value = msg.value()
            if value is None or len(value) < 5 or value[0] != 0:  # the decoders read Confluent framing
                error = WireFormatError("not Confluent wire format: no magic byte 0 and schema id")
                self._early.append(Reject(RawRecord(topic, partition, offset, msg.key(), value or b""), error))
                continue
            add(topic, partition, offset, msg.key(), value)

    def _past_markers(self) -> bool:
        """Idle at a partition's end: move past what Kafka does not hand out (transaction markers,
        aborted records), so the committed offset reaches the end and lag reads 0. The consumer's
        position counts only records it returned (all taken) and those it skipped."""
        keys = list(self.offsets.positions)
        try:
            found = self.consumer.position([TopicPartition(t, p) for t, p in keys])
        except Exception:  # noqa: BLE001 - not assigned any more: nothing to move
            return False
        ahead = {(tp.topic, tp.partition): tp.offset for tp in found
                 if tp.offset >= 0 and tp.offset > self.offsets.positions.get((tp.topic, tp.partition), tp.offset)}  # fmt: skip
        for key, offset in ahead.items():
            self.offsets.positions[key] = offset
        return bool(ahead)

    def _submit(self) -> None:
        """Hand the buffered batches to the write pipeline, with the positions they complete."""
        early, self._early = self._early, []
        self._writes.submit(self.buffers.take(), early, self.offsets.snapshot())

    # -- settle: landed flushes are committed, in order ----------------------------------------
    def _settle_landed(self) -> None:
        while (oldest := self._writes.oldest()) is not None and oldest.written.done():
            self._settle(self._writes.pop())

    def _wait_if_full(self) -> None:
        """Backpressure: wait for the oldest flush while the buffers are full; past
        ``stay_in_group_after_s`` pause the partitions (the loop polls on, taking nothing)."""
        oldest = self._writes.oldest()
        if oldest is None or not must_wait(self._state(0.0, False, False), self.policy):
            if self._paused:
                self.consumer.resume(self.consumer.assignment())
                self._paused = False
            return
        waiting_since = self.clock()
        while not oldest.written.done() and not self.stopping.is_set():
            try:
                oldest.written.exception(timeout=0.1)
            except TimeoutError:
                if self.clock() - waiting_since >= self.policy.stay_in_group_after_s:
                    if not self._paused:
                        self.consumer.pause(self.consumer.assignment())
                        self._paused = True
                    return

    def _settle(self, landed: InFlight) -> None:
        """Commit a flush that landed; one that failed for good rewinds its partitions."""
        error = landed.written.exception()
        if error is not None:
            self._abandon([landed, *self._writes.abandon()])
            if not isinstance(error, SinkWriteError):
                raise error  # a bug, not a store: let it be seen
            return
        result = landed.written.result()
        self.stats.rows_written += result.rows
        self.stats.flushes += 1
        if landed.batches:
            self.metrics.labels(self.metrics.flushes).inc()
            self.metrics.labels(self.metrics.rows_written).inc(result.rows)
        for topic, count in result.dead_letters.items():
            self.stats.dead_letters += count
            self.metrics.labels(self.metrics.dead_letters, topic=topic).inc(count)
        self._commit(landed.positions)
        self.progress.moved(flushed=True)

    def _settle_all(self, give_up: bool) -> None:
        """Wait for every flush under way (telling them to give up when asked) and settle each."""
        if give_up:
            self._writes.give_up.set()
        try:
            while (oldest := self._writes.oldest()) is not None:
                oldest.written.exception()  # waits
                self._settle_landed()
        finally:
            self._writes.give_up.clear()

    def _abandon(self, given_up: list[InFlight]) -> None:
        """Flushes that failed for good: read their partitions again from each one's first record
        not committed (what is buffered after it goes too)."""
        first: dict[tuple[str, int], int] = {}
        for inflight in given_up:
            for batch in inflight.batches:
                first.setdefault((batch.topic, batch.partition), batch.first_offset)
        for key, offset in first.items():
            self.buffers.drop([key])
            if self.offsets.rewind(key, offset):
                try:
                    self.consumer.seek(TopicPartition(key[0], key[1], offset))
                except Exception as exc:  # noqa: BLE001 - not fetching it (being revoked): the next owner re-reads
                    log.info("%s: no seek back on %s[%d] (%s)", self.sink.name, key[0], key[1], exc)
        log.warning("%s: gave up %d flush(es); their partitions are read again from %s", self.sink.name,
                    len(given_up), ", ".join(f"{t}[{p}]@{o}" for (t, p), o in first.items()) or "nowhere")  # fmt: skip

    def _commit(self, positions: dict[tuple[str, int], int]) -> None:
        changed = self.offsets.to_commit(positions)
        if not changed:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in changed.items()]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except Exception as exc:  # noqa: BLE001 - the rows are stored; the next commit covers it
            log.warning("%s: offset commit failed (%s); rows are stored", self.sink.name, exc)
            return
        self.offsets.mark_committed(changed)
        self.stats.commits += 1
        self.stats.last_commit_at = self.clock()

    def _report_lag(self) -> None:
        for (topic, partition), position in self.offsets.positions.items():
            try:
                _low, high = self.consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
            except Exception:  # noqa: BLE001 - no statistics yet: try at the next report
                log.debug("%s: no watermark for %s[%d] yet", self.sink.name, topic, partition)
                continue
            if high >= 0:
                self.metrics.lag.labels(sink=self.sink.name, topic=topic, partition=str(partition)).set(max(0, high - position))
