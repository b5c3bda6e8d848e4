"""The one sink contract: the runner buffers raw records, a store prepares and writes them.

The runner buffers Kafka records as they are, Confluent-framed bytes, per (topic, partition)
(``Buffers``). At a flush it hands the batches to the store's ``prepare(batches)``, which decodes
them (``connectors.decoding``: in ClickHouse's engine, or in Python) into what the store writes
plus the records that do not decode; this runs while the previous flush is being written. Then
``write(prepared, dead_letter)`` does the I/O: it lands the rows, narrows a refusal down to the
records at fault, hands every record it will not store to ``dead_letter`` (which returns only
once Kafka acknowledged them), and only then records the offsets that pass them, where the
store keeps offsets. The runner commits the Kafka offsets after ``write`` returned. A failed write
means no commit. Every write is idempotent: the same batches written twice leave the store as if
written once. Errors: ``connectors.errors``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from connectors.mappings import Mapping

TopicPartition = tuple[str, int]
Row = tuple[Any, ...]


@dataclass(frozen=True)
class RawRecord:
    """A record as Kafka holds it: Confluent-framed Avro, not decoded yet."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


@dataclass(frozen=True)
class Reject:
    """A record that will not be stored, and why: the runner parks it as a dead letter."""

    record: RawRecord
    error: Exception


@dataclass(frozen=True)
class Route:
    """A topic drained into a table through a mapping (``connectors.mappings``); ``schema`` is the
    topic's Avro value schema (the contract) the mapping reads."""

    topic: str
    table: str
    mapping: Mapping
    schema: dict[str, Any]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.mapping.columns


@dataclass
class Batch:
    """Records of one (topic, partition), offsets ``first_offset..last_offset`` in Kafka order,
    as parallel lists (no object per record on the hot path)."""

    route: Route
    partition: int
    first_offset: int = -1
    last_offset: int = -1
    offsets: list[int] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)
    values: list[bytes] = field(default_factory=list)

    @property
    def topic(self) -> str:
        return self.route.topic

    @property
    def size(self) -> int:
        return len(self.values)

    @property
    def contiguous(self) -> bool:
        """Offsets without gaps (no transaction markers or compacted records in between)."""
        return self.last_offset - self.first_offset + 1 == self.size

    def record(self, i: int) -> RawRecord:
        return RawRecord(self.topic, self.partition, self.offsets[i], self.keys[i], self.values[i])

    def raw_records(self) -> list[RawRecord]:
        return [self.record(i) for i in range(self.size)]

    def subset(self, indices: Iterable[int]) -> Batch:
        """The same partition's records at ``indices`` (in order): a part of a batch narrowed down."""
        part = Batch(self.route, self.partition)
        for i in indices:
            part.offsets.append(self.offsets[i])
            part.keys.append(self.keys[i])
            part.values.append(self.values[i])
        if part.offsets:
            part.first_offset, part.last_offset = part.offsets[0], part.offsets[-1]
        return part

    @property
    def dedup_token(self) -> str:
        """The same records always make the same token: a replayed batch is recognised."""
        return f"{self.route.table}:{self.topic}:{self.partition}:{self.first_offset}-{self.last_offset}"


class Buffers:
    """Raw records buffered per (topic, partition) until the runner takes them."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = {route.topic: route for route in routes}
        self._batches: dict[TopicPartition, Batch] = {}
        self.pending = 0

    @property
    def topics(self) -> list[str]:
        return list(self.routes)

    def add(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes) -> None:
        batch = self._batches.get((topic, partition))
        if batch is None:
            batch = self._batches[(topic, partition)] = Batch(self.routes[topic], partition, first_offset=offset)
        batch.offsets.append(offset)
        batch.keys.append(key)
        batch.values.append(value)
        batch.last_offset = offset
        self.pending += 1

    def take(self) -> list[Batch]:
        batches = list(self._batches.values())
        self._batches.clear()
        self.pending = 0
        return batches

    def drop(self, partitions: Iterable[TopicPartition]) -> None:
        """Forget buffered records of partitions this consumer no longer reads from there."""
        for key in partitions:
            batch = self._batches.pop(key, None)
            if batch is not None:
                self.pending -= batch.size


DeadLetter = Callable[[list[Reject]], None]


def next_offsets(batches: Iterable[Batch]) -> dict[TopicPartition, int]:
    """The next offset to read of each partition the batches come from."""
    ends: dict[TopicPartition, int] = {}
    for batch in batches:
        key = (batch.topic, batch.partition)
        ends[key] = max(ends.get(key, 0), batch.last_offset + 1)
    return ends


def describe(batches: Iterable[Batch]) -> str:
    """``topic[partition]@first-last, ...``: the records of a write, for logs."""
    return ", ".join(f"{b.topic}[{b.partition}]@{b.first_offset}-{b.last_offset}" for b in batches)


class Sink(Protocol):
    """A store the runner drains topics into (``ClickHouseSink``, ``PostgresSink``)."""

    name: str

    def prepare(self, batches: list[Batch]) -> Any:
        """Decode a flush (no store I/O); the runner runs it while the previous flush is written."""
        ...

    def write(self, prepared: Any, dead_letter: DeadLetter) -> int:
        """Land a prepared flush; dead-letter what will not be stored before recording offsets
        past it. Returns the rows written. Raises TransientWriteError (retried as is)."""
        ...

    def resume_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """Next offsets the store itself recorded (``{}``: none; use Kafka's)."""
        ...

    def stored_offsets_from(self, starts: dict[TopicPartition, int]) -> dict[TopicPartition, set[int]]:
        """Offsets at or after each start that the store already holds (a write cut short by a
        crash): the runner skips them. ``{}`` where writes are atomic with their offsets."""
        ...

    def close(self) -> None: ...
