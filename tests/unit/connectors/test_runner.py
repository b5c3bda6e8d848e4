"""The sink runner against an in-memory sink and a fake consumer: flush, commit, DLQ, retry."""

from __future__ import annotations

import io
import threading
import time
import struct
from collections.abc import Iterable
from typing import Any

import fastavro
import pytest

from chatstream.avro.serde import ConfluentDecoder
from connectors.runner import FlushPolicy, SinkRunner
from connectors.sink import Batch, BatchingSink, Reject, Route, SinkWriteError, SourceRecord, TopicPartition

SCHEMA = {"type": "record", "name": "E", "fields": [{"name": "event_id", "type": "string"}, {"name": "n", "type": "int"}]}
PARSED = fastavro.parse_schema(SCHEMA)


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
    """Hands out its messages once, then nothing; records commits and seeks."""

    def __init__(self, messages: list[FakeMessage], runner_stop: list[SinkRunner]) -> None:
        self.messages = messages
        self.commits: list[dict[tuple[str, int], int]] = []
        self.assigned: list[Any] = []
        self.stop_after_drained = runner_stop
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
            if self.idle > 20:
                self.stop_after_drained[0].stop()
        return taken

    def incremental_unassign(self, partitions: list[Any]) -> None:
        self.assigned = []

    def commit(self, offsets: list[Any], asynchronous: bool) -> None:
        self.commits.append({(o.topic, o.partition): o.offset for o in offsets})

    def assignment(self) -> list[Any]:
        return []

    def pause(self, partitions: list[Any]) -> None: ...

    def resume(self, partitions: list[Any]) -> None: ...

    def poll(self, timeout: float) -> None:
        return None

    def seek(self, tp: Any) -> None:
        self.seeks.append((tp.topic, tp.partition, tp.offset))

    def close(self) -> None: ...


class MemorySink(BatchingSink):
    name = "memory"

    def __init__(self, fail_times: int = 0, stored: dict[TopicPartition, int] | None = None) -> None:
        super().__init__([Route("t", "table", ("event_id", "n"), lambda r: (r.value["event_id"], r.value["n"]))])
        self.rows: dict[str, int] = {}
        self.fail_times = fail_times
        self.writes: list[str] = []
        self.stored = stored or {}

    def write(self, batch: Batch) -> list[Reject]:
        self.writes.append(batch.dedup_token)
        if self.fail_times:
            self.fail_times -= 1
            raise SinkWriteError("store down")
        self.rows.update(dict(batch.rows))  # type: ignore[arg-type]
        return []

    def stored_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return self.stored


class MemoryDeadLetters:
    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []
        self.flushes = 0

    def send(self, msg: FakeMessage, error: Exception) -> None:
        self.sent.append((msg.offset(), str(error)))

    def flush(self, timeout_s: float = 30.0) -> None:
        self.flushes += 1


def make_runner(sink: MemorySink, messages: list[FakeMessage], max_rows: int = 100) -> tuple[SinkRunner, FakeConsumer, MemoryDeadLetters]:
    holder: list[SinkRunner] = []
    consumer = FakeConsumer(messages, holder)
    dlq = MemoryDeadLetters()
    runner = SinkRunner(sink, consumer, ConfluentDecoder(lambda _id: SCHEMA), dlq,  # type: ignore[arg-type]
                        FlushPolicy(max_rows, 0.01, backoff_initial_s=0.001, backoff_max_s=0.002))  # fmt: skip
    holder.append(runner)
    return runner, consumer, dlq


def messages(count: int, partition: int = 0) -> list[FakeMessage]:
    return [FakeMessage("t", partition, i, encode(i)) for i in range(count)]


def test_rows_are_written_then_offsets_committed() -> None:
    sink = MemorySink()
    runner, consumer, _ = make_runner(sink, messages(250), max_rows=100)
    stats = runner.run()
    assert len(sink.rows) == 250 and stats.rows_written == 250
    assert consumer.commits[-1] == {("t", 0): 250}


def test_a_failed_write_commits_nothing_until_the_retry_succeeds() -> None:
    sink = MemorySink(fail_times=2)
    runner, consumer, _ = make_runner(sink, messages(10))
    runner.run()
    assert sink.writes == ["table:t:0:0-9"] * 3  # the very same batch, retried
    assert len(sink.rows) == 10
    assert consumer.commits == [{("t", 0): 10}]
    assert runner.stats.write_failures == 2


def test_undecodable_records_go_to_the_dead_letters_and_the_sink_goes_on() -> None:
    sink = MemorySink()
    batch = messages(5)
    batch[2] = FakeMessage("t", 0, 2, b'{"not": "avro"}')
    runner, consumer, dlq = make_runner(sink, batch)
    runner.run()
    assert [offset for offset, _ in dlq.sent] == [2]
    assert "magic byte" in dlq.sent[0][1]
    assert sorted(sink.rows) == ["e0", "e1", "e3", "e4"]
    assert consumer.commits[-1] == {("t", 0): 5} and dlq.flushes >= 1


def test_stored_offsets_decide_where_partitions_resume() -> None:
    sink = MemorySink(stored={("t", 1): 42})
    runner, consumer, _ = make_runner(sink, [])
    runner.run()
    assert ("t", 1, 42) in consumer.assigned


def test_kafka_offsets_win_when_dead_letters_moved_them_past_the_store() -> None:
    sink = MemorySink(stored={("t", 0): 10, ("t", 1): 50})
    runner, consumer, _ = make_runner(sink, [])
    consumer.kafka_committed = {("t", 0): 13, ("t", 1): 40}  # 10..12 were dead letters
    runner.run()
    assert ("t", 0, 13) in consumer.assigned and ("t", 1, 50) in consumer.assigned


def test_batches_are_per_partition_with_deterministic_tokens() -> None:
    sink = MemorySink()
    runner, _, _ = make_runner(sink, messages(3, partition=0) + messages(2, partition=1))
    runner.run()
    assert sorted(sink.writes) == ["table:t:0:0-2", "table:t:1:0-1"]


def test_unmappable_records_are_dead_letters_too() -> None:
    sink = MemorySink()
    sink.routes["t"] = Route("t", "table", ("x",), lambda r: (r.value["missing"],))
    runner, _, dlq = make_runner(sink, messages(2))
    runner.run()
    assert len(dlq.sent) == 2 and "cannot map" in dlq.sent[0][1]


def test_stopping_during_an_outage_gives_up_without_committing() -> None:
    sink = MemorySink(fail_times=10_000)
    runner, consumer, _ = make_runner(sink, messages(3))
    timer = threading.Timer(0.3, runner.stop)  # Ctrl-C while the store is down
    timer.start()
    with pytest.raises(SinkWriteError):
        runner.run()
    timer.join()
    assert consumer.commits == []
    assert len(sink.writes) > 3  # it kept retrying until told to stop


def test_a_source_record_is_immutable() -> None:
    record = SourceRecord("t", 0, 1, {"a": 1})
    with pytest.raises(AttributeError):
        record.offset = 2  # type: ignore[misc]


class GatedSink(MemorySink):
    """Its first write waits until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.first_write_started = threading.Event()

    def write(self, batch: Batch) -> list[Reject]:
        self.first_write_started.set()
        assert self.gate.wait(10)
        return super().write(batch)


def test_consumption_goes_on_while_a_write_is_under_way_and_commits_wait_for_it() -> None:
    sink = GatedSink()
    runner, consumer, _ = make_runner(sink, messages(250), max_rows=100)
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
    assert committed == sorted(committed)  # sets land and commit in the order they were taken


def test_a_set_given_up_is_read_again_from_its_first_record() -> None:
    sink = MemorySink(fail_times=10_000)
    runner, consumer, _ = make_runner(sink, [])
    consumer.subscribe(["t"], on_assign=runner._on_assign, on_revoke=None)  # t[0] and t[1]
    runner._take(messages(5))  # type: ignore[arg-type]
    with pytest.raises(SinkWriteError):
        runner.flush(retry=False)
    assert consumer.commits == [] and consumer.seeks == [("t", 0, 0)]
    assert runner._positions[("t", 0)] == 0 and sink.pending() == 0


class PreparingSink(MemorySink):
    """Decodes in ``prepare`` (off the consuming thread); ``write_many`` gets what it made."""

    def __init__(self, prepare_fails: bool = False) -> None:
        super().__init__()
        self.prepare_fails = prepare_fails
        self.received: list[Any] = []
        self.threads: set[str] = set()

    def prepare(self, batches: list[Batch]) -> Any:
        self.threads.add(threading.current_thread().name)
        if self.prepare_fails:
            raise SinkWriteError("registry unreachable")
        return [len(b.rows) for b in batches]

    def write_many(self, batches: list[Batch], prepared: Any = None) -> list[Reject]:
        self.threads.add(threading.current_thread().name)
        self.received.append(prepared)
        return super().write_many(batches, prepared)


def test_a_set_is_prepared_and_written_off_the_consuming_thread() -> None:
    sink = PreparingSink()
    runner, _, _ = make_runner(sink, messages(30))
    runner.run()
    assert sink.received == [[30]] and len(sink.rows) == 30
    assert threading.current_thread().name not in sink.threads and len(sink.threads) == 2


def test_a_failed_prepare_leaves_the_work_to_the_write() -> None:
    sink = PreparingSink(prepare_fails=True)
    runner, consumer, _ = make_runner(sink, messages(30))
    runner.run()
    assert sink.received == [None] and len(sink.rows) == 30 and consumer.commits[-1] == {("t", 0): 30}
