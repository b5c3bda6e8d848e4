"""The sink runner against an in-memory sink, fake consumer and dead letters: flush, narrow,
dead-letter before offsets, commit, retry, resume, give up."""

from __future__ import annotations

import io
import struct
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import fastavro

from chatstream.avro.serde import ConfluentDecoder
from connectors.decoding import Decoded, PythonDecoder
from connectors.errors import RefusedWriteError, TransientWriteError
from connectors.mappings import Mapping
from connectors.narrowing import narrow
from connectors.policy import FlushPolicy
from connectors.runner import SinkRunner
from connectors.sink import Batch, DeadLetter, Reject, Route, TopicPartition

SCHEMA = {"type": "record", "name": "E", "fields": [{"name": "event_id", "type": "string"}, {"name": "n", "type": "int"}]}
PARSED = fastavro.parse_schema(SCHEMA)
MAPPING = Mapping("table", ("event_id", "n"), lambda v, t, p, o: (v["event_id"], v["n"]), lambda s: ("event_id", "n"),
                  key=("event_id",), version="n")
ROUTE = Route("t", "table", MAPPING, SCHEMA)


def encode(n: int) -> bytes:
    out = io.BytesIO()
    out.write(struct.pack(">bI", 0, 1))
    fastavro.schemaless_writer(out, PARSED, {"event_id": f"e{n}", "n": n})
    return out.getvalue()


class FakeMessage:
    def __init__(self, topic: str, partition: int, offset: int, value: bytes) -> None:
        self._t, self._p, self._o, self._v = topic, partition, offset, value

    def topic(self) -> str:
        return self._t

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def value(self) -> bytes:
        return self._v

    def key(self) -> bytes:
        return b"k"

    def error(self) -> None:
        return None


class FakeConsumer:
    """Hands out its messages once, then nothing (stopping the runner after a while); records
    commits, seeks and pauses."""

    def __init__(self, messages: list[FakeMessage], stopping: threading.Event, events: list[str]) -> None:
        self.messages = messages
        self.stopping = stopping
        self.events = events
        self.commits: list[dict[tuple[str, int], int]] = []
        self.assigned: list[Any] = []
        self.idle = 0
        self.kafka_committed: dict[tuple[str, int], int] = {}
        self.seeks: list[tuple[str, int, int]] = []

    def subscribe(self, topics: list[str], on_assign: Any, on_revoke: Any) -> None:
        from confluent_kafka import TopicPartition as KafkaTP

        on_assign(self, [KafkaTP("t", 0), KafkaTP("t", 1)])

    def committed(self, partitions: list[Any], timeout: float) -> list[Any]:
        from confluent_kafka import TopicPartition as KafkaTP

        return [KafkaTP(p.topic, p.partition, self.kafka_committed.get((p.topic, p.partition), -1001)) for p in partitions]

    def incremental_assign(self, partitions: list[Any]) -> None:
        self.assigned = [(p.topic, p.partition, p.offset) for p in partitions]

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        taken, self.messages = self.messages[:num_messages], self.messages[num_messages:]
        if not taken:
            time.sleep(0.005)  # the fake's poll timeout, so flush intervals pass
            self.idle += 1
            if self.idle > 40:
                self.stopping.set()
        return taken

    def incremental_unassign(self, partitions: list[Any]) -> None:
        gone = {(p.topic, p.partition) for p in partitions}
        self.assigned = [a for a in self.assigned if (a[0], a[1]) not in gone]

    def commit(self, offsets: list[Any], asynchronous: bool) -> None:
        self.events.append("commit")
        self.commits.append({(o.topic, o.partition): o.offset for o in offsets})

    def assignment(self) -> list[Any]:
        return []

    def pause(self, partitions: list[Any]) -> None: ...

    def resume(self, partitions: list[Any]) -> None: ...

    def get_watermark_offsets(self, tp: Any, cached: bool) -> tuple[int, int]:
        return 0, 0

    def seek(self, tp: Any) -> None:
        self.seeks.append((tp.topic, tp.partition, tp.offset))

    def close(self) -> None: ...


class MemorySink:
    """Rows in a dict; refuses rows whose ``n`` is in ``refuse`` (narrowing them down), fails
    transiently ``fail_times`` times; logs the order of its steps in ``events``."""

    name = "memory"

    def __init__(self, events: list[str], *, fail_times: int = 0, refuse: Iterable[int] = (),
                 stored: dict[TopicPartition, int] | None = None, held: dict[TopicPartition, set[int]] | None = None) -> None:  # fmt: skip
        self.events = events
        self.rows: dict[str, int] = {}
        self.fail_times = fail_times
        self.refuse = set(refuse)
        self.writes: list[str] = []
        self.stored = stored or {}
        self.held = held or {}
        self.decoder = PythonDecoder(ConfluentDecoder(lambda _id: SCHEMA).decode)
        self.threads: set[str] = set()

    def prepare(self, batches: list[Batch]) -> list[Decoded]:
        self.threads.add(threading.current_thread().name)
        return self.decoder.decode(batches)

    def _store(self, part: Decoded) -> None:
        bad = [row for row in part.rows or [] if row[1] in self.refuse]
        if bad:
            raise RefusedWriteError(f"value {bad[0][1]} out of range")
        self.rows.update(dict(part.rows or []))

    def write(self, prepared: list[Decoded], dead_letter: DeadLetter) -> int:
        self.threads.add(threading.current_thread().name)
        self.writes += [",".join(b.dedup_token for b in part.batches) for part in prepared]
        if self.fail_times:
            self.fail_times -= 1
            raise TransientWriteError("store down")
        rejects = [r for part in prepared for r in part.rejects]
        written = 0
        for part in prepared:
            try:
                self._store(part)
                written += part.size
            except RefusedWriteError as exc:
                refused = narrow(range(part.size), lambda idx: self._store(part.part(idx)), exc)
                rejects += [Reject(part.record(i), e) for i, e in refused]
                written += part.size - len(refused)
        if rejects:
            dead_letter(rejects)
        self.events.append("offsets")
        return written

    def resume_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return self.stored

    def stored_offsets_from(self, starts: dict[TopicPartition, int]) -> dict[TopicPartition, set[int]]:
        return self.held

    def close(self) -> None: ...


class MemoryDeadLetters:
    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.sent: list[tuple[int, str, str]] = []

    def park(self, rejects: Sequence[Reject], timeout_s: float = 30.0) -> int:
        self.events.append("dead letters acknowledged")
        self.sent += [(r.record.offset, type(r.error).__name__, str(r.error)) for r in rejects]
        return len(rejects)


def make_runner(messages: list[FakeMessage], max_rows: int = 100, **sink_options: Any) -> tuple[SinkRunner, MemorySink, FakeConsumer, MemoryDeadLetters]:
    events: list[str] = []
    stopping = threading.Event()
    consumer = FakeConsumer(messages, stopping, events)
    sink = MemorySink(events, **sink_options)
    dlq = MemoryDeadLetters(events)
    runner = SinkRunner(sink, [ROUTE], consumer, dlq, FlushPolicy(max_rows, 0.01, backoff_initial_s=0.001, backoff_max_s=0.002),  # type: ignore[arg-type]
                        stopping)  # fmt: skip
    return runner, sink, consumer, dlq


def messages(count: int, partition: int = 0) -> list[FakeMessage]:
    return [FakeMessage("t", partition, i, encode(i)) for i in range(count)]


def test_rows_are_written_then_offsets_committed() -> None:
    runner, sink, consumer, _ = make_runner(messages(250), max_rows=100)
    stats = runner.run()
    assert len(sink.rows) == 250 and stats.rows_written == 250
    assert consumer.commits[-1] == {("t", 0): 250}


def test_a_transient_failure_commits_nothing_until_the_retry_succeeds() -> None:
    runner, sink, consumer, _ = make_runner(messages(10), fail_times=2)
    runner.run()
    assert sink.writes == ["table:t:0:0-9"] * 3  # the very same batch, retried
    assert len(sink.rows) == 10 and consumer.commits == [{("t", 0): 10}]


def test_refused_records_are_narrowed_down_dead_lettered_and_the_rest_lands() -> None:
    runner, sink, consumer, dlq = make_runner(messages(40), refuse={7, 31})
    runner.run()
    assert [(offset, kind) for offset, kind, _ in dlq.sent] == [(7, "RefusedWriteError"), (31, "RefusedWriteError")]
    assert "out of range" in dlq.sent[0][2]
    assert sorted(sink.rows.values()) == [n for n in range(40) if n not in (7, 31)]
    assert consumer.commits[-1] == {("t", 0): 40}


def test_dead_letters_are_acknowledged_before_the_offsets_that_pass_them() -> None:
    batch = messages(5)
    batch[2] = FakeMessage("t", 0, 2, b'{"not": "avro"}')  # not framed: rejected before decoding
    batch[3] = FakeMessage("t", 0, 3, b"\x00\x00\x00\x00\x01\xff\xff")  # framed, body corrupt
    runner, sink, consumer, dlq = make_runner(batch, refuse={4})
    runner.run()
    assert sorted(offset for offset, _, _ in dlq.sent) == [2, 3, 4]
    assert sink.events.index("dead letters acknowledged") < sink.events.index("offsets") < sink.events.index("commit")
    assert sorted(sink.rows) == ["e0", "e1"] and consumer.commits[-1] == {("t", 0): 5}


def test_stored_offsets_decide_where_partitions_resume_and_kafka_wins_when_further() -> None:
    runner, _, consumer, _ = make_runner([], stored={("t", 0): 10, ("t", 1): 50})
    consumer.kafka_committed = {("t", 0): 13, ("t", 1): 40}  # 10..12 were dead letters
    runner.run()
    assert ("t", 0, 13) in consumer.assigned and ("t", 1, 50) in consumer.assigned


def test_records_the_store_already_holds_past_its_resume_point_are_skipped() -> None:
    runner, sink, consumer, _ = make_runner(messages(10), stored={("t", 0): 0}, held={("t", 0): {3, 4, 8}})
    stats = runner.run()
    assert sorted(sink.rows.values()) == [0, 1, 2, 5, 6, 7, 9] and stats.skipped == 3
    assert consumer.commits[-1] == {("t", 0): 10}


def test_batches_are_per_partition_with_deterministic_tokens() -> None:
    runner, sink, _, _ = make_runner(messages(3, partition=0) + messages(2, partition=1))
    runner.run()
    assert sink.writes == ["table:t:0:0-2,table:t:1:0-1"]


def test_stopping_during_an_outage_gives_up_without_committing() -> None:
    runner, sink, consumer, _ = make_runner(messages(3), fail_times=10_000)
    timer = threading.Timer(0.3, runner.stop)  # Ctrl-C while the store is down
    timer.start()
    runner.run()
    timer.join()
    assert consumer.commits == []
    assert len(sink.writes) > 3  # it kept retrying until told to stop


def test_prepare_and_write_run_off_the_consuming_thread() -> None:
    runner, sink, _, _ = make_runner(messages(30))
    runner.run()
    assert len(sink.rows) == 30
    assert threading.current_thread().name not in sink.threads and len(sink.threads) == 2


class GatedSink(MemorySink):
    """Its first write waits until the test opens the gate."""

    def __init__(self, events: list[str]) -> None:
        super().__init__(events)
        self.gate = threading.Event()
        self.first_write_started = threading.Event()

    def write(self, prepared: list[Decoded], dead_letter: DeadLetter) -> int:
        self.first_write_started.set()
        assert self.gate.wait(10)
        return super().write(prepared, dead_letter)


def test_consumption_goes_on_while_a_write_is_under_way_and_commits_wait_for_it() -> None:
    events: list[str] = []
    stopping = threading.Event()
    consumer = FakeConsumer(messages(250), stopping, events)
    sink = GatedSink(events)
    runner = SinkRunner(sink, [ROUTE], consumer, MemoryDeadLetters(events), FlushPolicy(100, 0.01), stopping)  # type: ignore[arg-type]
    worker = threading.Thread(target=runner.run)
    worker.start()
    assert sink.first_write_started.wait(5)
    deadline = time.monotonic() + 5
    while consumer.messages and time.monotonic() < deadline:  # the loop keeps consuming meanwhile
        time.sleep(0.01)
    assert consumer.messages == [] and consumer.commits == [] and sink.rows == {}
    sink.gate.set()
    worker.join(10)
    assert len(sink.rows) == 250 and consumer.commits[-1] == {("t", 0): 250}
    committed = [c[("t", 0)] for c in consumer.commits]
    assert committed == sorted(committed)  # flushes land and commit in the order they were taken


def test_a_flush_given_up_on_revoke_is_read_again_from_its_first_record() -> None:
    runner, sink, consumer, _ = make_runner([], fail_times=10_000)
    consumer.subscribe(["t"], on_assign=runner._on_assign, on_revoke=None)  # t[0] and t[1]
    runner._take(messages(5))  # type: ignore[arg-type]
    runner._submit()
    from confluent_kafka import TopicPartition as KafkaTP

    runner._on_revoke(consumer, [KafkaTP("t", 1)])  # t[0] stays: its flush was given up
    assert consumer.commits == [] and consumer.seeks == [("t", 0, 0)]
    assert runner.offsets.positions[("t", 0)] == 0 and runner.buffers.pending == 0
