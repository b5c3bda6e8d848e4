"""The one sink contract: ``add`` buffers, ``write`` does the I/O, the runner commits.

``add(record)`` maps a decoded Kafka record to a row and buffers it per (topic, partition); a
sink that decodes natively (``native = True``) takes ``add_raw(topic, partition, offset, key,
value)`` with the framed bytes instead, and its writes hand back the records it could not decode
as rejects. ``take_batches()`` hands the buffers to the runner, which calls ``prepare(batches)``
(optional decoding, overlapping the previous write) and ``write_many(batches, prepared)`` (by
default ``write(batch)`` for each; a sink may write a whole set at once), and only then commits
offsets. A failed write means no commit. Every write is idempotent: the same batches written
twice leave the store as if written once.

    SinkError
    ├── MappingError      a record decodes but cannot become a row: it goes to the DLQ
    └── SinkWriteError    the store failed: retry the same batch later, commit nothing
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from chatstream.errors import ChatstreamError

TopicPartition = tuple[str, int]
Row = tuple[Any, ...]


class SinkError(ChatstreamError):
    """Base of the sinks' errors."""


class MappingError(SinkError):
    """A record that cannot be mapped to the table's row."""


class SinkWriteError(SinkError):
    """The store did not take the batch; nothing of it may be committed."""


@dataclass(frozen=True)
class SourceRecord:
    topic: str
    partition: int
    offset: int
    value: Mapping[str, Any]


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
    """A record a native sink could not decode or map: the runner parks it as a dead letter."""

    record: RawRecord
    error: Exception


@dataclass(frozen=True)
class Route:
    """Which table a topic drains into, and how a record becomes that table's row.

    ``native_select`` (optional) gives the same mapping as ClickHouse SELECT expressions over
    the record's Avro fields, one per column, for sinks that decode in the engine; ``{kafka_topic}``,
    ``{kafka_partition}`` and ``{kafka_offset}`` stand for the record's coordinates.
    """

    topic: str
    table: str
    columns: tuple[str, ...]
    to_row: Callable[[SourceRecord], Row]
    native_select: Callable[[], tuple[str, ...]] | None = None


@dataclass
class Batch:
    """Records of one (topic, partition), offsets ``first_offset..last_offset`` in Kafka order:
    mapped ``rows``, or, for native sinks, the framed records themselves (parallel ``offsets``,
    ``keys`` and ``values``: no object per record)."""

    route: Route
    partition: int
    rows: list[Row] = field(default_factory=list)
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
        return len(self.rows) + len(self.values)

    @property
    def contiguous(self) -> bool:
        """Offsets without gaps (no transaction markers or compacted records in between)."""
        return self.last_offset - self.first_offset + 1 == self.size

    def raw_records(self) -> list[RawRecord]:
        return [RawRecord(self.topic, self.partition, o, k, v) for o, k, v in zip(self.offsets, self.keys, self.values)]

    @property
    def dedup_token(self) -> str:
        """The same records always make the same token: a replayed batch is recognised."""
        return f"{self.route.table}:{self.topic}:{self.partition}:{self.first_offset}-{self.last_offset}"


class Sink(Protocol):
    name: str
    native: bool

    def add(self, record: SourceRecord) -> None: ...

    def add_raw(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes) -> None: ...

    def pending(self) -> int: ...

    def take_batches(self) -> list[Batch]: ...

    def write(self, batch: Batch) -> list[Reject]: ...

    def prepare(self, batches: list[Batch]) -> Any: ...

    def write_many(self, batches: list[Batch], prepared: Any = None) -> list[Reject]: ...

    def stored_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """Next offsets the store itself recorded (exactly-once sinks); {} = use Kafka's."""
        ...


class BatchingSink:
    """Buffers rows per (topic, partition); stores implement ``write`` (and ``stored_offsets``)."""

    name = "sink"
    native = False

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = {route.topic: route for route in routes}
        self._buffers: dict[TopicPartition, Batch] = {}
        self._pending = 0

    @property
    def topics(self) -> list[str]:
        return list(self.routes)

    def add(self, record: SourceRecord) -> None:
        route = self.routes[record.topic]
        try:
            row = route.to_row(record)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MappingError(f"cannot map to {route.table}: {type(exc).__name__}: {exc}") from exc
        self._buffer(route, record.topic, record.partition, record.offset, row)

    def add_raw(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes) -> None:
        """Buffer the framed bytes themselves (native sinks decode a whole batch at write)."""
        batch = self._buffers.get((topic, partition))
        if batch is None:
            batch = self._buffers[(topic, partition)] = Batch(self.routes[topic], partition, first_offset=offset)
        batch.offsets.append(offset)
        batch.keys.append(key)
        batch.values.append(value)
        batch.last_offset = offset
        self._pending += 1

    def _buffer(self, route: Route, topic: str, partition: int, offset: int, row: Row) -> None:
        key = (topic, partition)
        batch = self._buffers.get(key)
        if batch is None:
            batch = self._buffers[key] = Batch(route, partition, first_offset=offset)
        batch.rows.append(row)
        batch.last_offset = offset
        self._pending += 1

    def pending(self) -> int:
        return self._pending

    def take_batches(self) -> list[Batch]:
        batches = list(self._buffers.values())
        self._buffers.clear()
        self._pending = 0
        return batches

    def drop(self, partitions: Iterable[TopicPartition]) -> None:
        """Forget buffered rows of partitions this consumer no longer owns."""
        for key in partitions:
            batch = self._buffers.pop(key, None)
            if batch is not None:
                self._pending -= batch.size

    def write(self, batch: Batch) -> list[Reject]:
        raise NotImplementedError

    def prepare(self, batches: list[Batch]) -> Any:
        """Optional work on a set before its write that does not touch the store (decoding); the
        runner runs it while the previous set is being written and hands the result to
        ``write_many``. None: nothing to prepare."""
        return None

    def write_many(self, batches: list[Batch], prepared: Any = None) -> list[Reject]:
        """Write a set of batches (the runner's unit of retry); the rejects of all of them."""
        return [reject for batch in batches for reject in self.write(batch)]

    def stored_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return {}
