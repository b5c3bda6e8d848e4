"""The one decode seam: a flush's raw batches become what a store writes, plus the rejects.

Two decoders, one result (``Decoded``, one per route of the flush):
- ``PythonDecoder``: fastavro, record by record, then the mapping's ``to_row``: Python rows.
- ``EngineDecoder``: ClickHouse's engine (chDB, in-process) reads the batches' framed records in
  one query (``connectors.engine``) and renders the mapping's ``engine_select`` in the format
  the store takes as is (``Native`` for ClickHouse, ``TabSeparated`` for PostgreSQL's COPY). A
  set the engine cannot read (a corrupt record, an unknown schema id, an ``int`` out of range)
  falls back to the Python decoder, which finds the records at fault.

A record that does not decode is a reject (dead letter); a registry that cannot be reached is
not the records' fault: TransientWriteError, and the flush is prepared again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping as MappingOf, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chatstream.avro.serde import WireFormatError
from connectors.engine import by_route, query_size, scratch_file, select_from
from connectors.errors import MappingError, TransientWriteError
from connectors.sink import Batch, RawRecord, Reject, Route, Row

log = logging.getLogger(__name__)


@dataclass
class Decoded:
    """One route's batches of a flush, decoded: engine ``data`` in ``fmt`` (row i is the i-th
    record, in batch order) or Python ``rows`` (row i came from ``origins[i]``: batch, index)."""

    batches: list[Batch]
    rejects: list[Reject] = field(default_factory=list)
    data: bytes | None = None
    fmt: str = ""
    rows: list[Row] | None = None
    origins: list[tuple[int, int]] | None = None
    decoder: EngineDecoder | None = None  # re-decodes a part of ``data`` that cannot be split

    @property
    def route(self) -> Route:
        return self.batches[0].route

    @property
    def size(self) -> int:
        """Rows to write."""
        if self.rows is not None:
            return len(self.rows)
        return sum(b.size for b in self.batches)

    def _origin(self, i: int) -> tuple[int, int]:
        if self.origins is not None:
            return self.origins[i]
        for b, batch in enumerate(self.batches):
            if i < batch.size:
                return b, i
            i -= batch.size
        raise IndexError(i)

    def record(self, i: int) -> RawRecord:
        """The Kafka record row ``i`` was decoded from."""
        b, j = self._origin(i)
        return self.batches[b].record(j)

    def part(self, indices: Sequence[int]) -> Decoded:
        """Rows ``indices`` (in order) alone: what narrowing a refused write down tries."""
        if self.rows is not None:
            return Decoded(self.batches, rows=[self.rows[i] for i in indices],
                           origins=[self._origin(i) for i in indices])  # fmt: skip
        wanted: dict[int, list[int]] = {}
        for i in indices:
            b, j = self._origin(i)
            wanted.setdefault(b, []).append(j)
        batches = [self.batches[b].subset(js) for b, js in sorted(wanted.items())]
        if self.fmt == "TabSeparated":  # one line per row: cut, no decoding again
            lines = self._lines()
            return Decoded(batches, data=b"".join(lines[i] for i in indices), fmt=self.fmt)
        assert self.decoder is not None
        (again,) = self.decoder.decode(batches)
        return again

    def _lines(self) -> list[bytes]:
        assert self.data is not None
        lines = [line + b"\n" for line in self.data.split(b"\n")[:-1]]  # TSV escapes \n inside values
        assert len(lines) == self.size, f"{len(lines)} lines for {self.size} rows"
        return lines


class Decoder(Protocol):
    def decode(self, batches: list[Batch]) -> list[Decoded]:
        """One ``Decoded`` per route of ``batches``, in their order."""
        ...


class PythonDecoder:
    """fastavro and the mapping's ``to_row``, record by record. ``decode_value`` is the registry-
    backed Confluent decoder: WireFormatError for a bad record, anything else when the registry
    cannot be reached."""

    def __init__(self, decode_value: Callable[[bytes], dict[str, Any]]) -> None:
        self.decode_value = decode_value

    def decode(self, batches: list[Batch]) -> list[Decoded]:
        return [self._decode_route(group) for group in by_route(batches)]

    def _decode_route(self, batches: list[Batch]) -> Decoded:
        to_row = batches[0].route.mapping.to_row
        rows: list[Row] = []
        origins: list[tuple[int, int]] = []
        rejects: list[Reject] = []
        for b, batch in enumerate(batches):
            topic, partition, table = batch.topic, batch.partition, batch.route.table
            for j, (offset, value) in enumerate(zip(batch.offsets, batch.values)):
                try:
                    decoded = self.decode_value(value)
                except WireFormatError as exc:
                    rejects.append(Reject(batch.record(j), exc))
                    continue
                except Exception as exc:  # noqa: BLE001 - the registry's client raises many kinds
                    raise TransientWriteError(f"cannot decode {topic}[{partition}]@{offset} yet: {exc}") from exc
                try:
                    rows.append(to_row(decoded, topic, partition, offset))
                except MappingError as exc:  # the mapping's own words
                    rejects.append(Reject(batch.record(j), exc))
                    continue
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    error = MappingError(f"cannot map to {table}: {type(exc).__name__}: {exc}")
                    rejects.append(Reject(batch.record(j), error))
                    continue
                origins.append((b, j))
        return Decoded(batches, rejects, rows=rows, origins=origins)


class EngineDecoder:
    """chDB reads a route's batches in one query and renders them in ``fmt``; a set it cannot
    read goes to ``fallback`` (and ``on_fallback`` hears of it, for logs and metrics).

    ``column_types(table)``, when given, names the store's type of each column: each expression
    is cast to it, so a Native block goes into the table as it is, without a conversion on
    insert (about a fifth less engine time a row). It is asked once per table.
    """

    def __init__(self, engine: Any, registry_url: str, fmt: str, fallback: PythonDecoder,
                 on_fallback: Callable[[list[Batch], Exception], None] = lambda _b, _e: None,
                 column_types: Callable[[str], MappingOf[str, str]] | None = None) -> None:  # fmt: skip
        self.engine = engine
        self.registry_url = registry_url
        self.fmt = fmt
        self.fallback = fallback
        self.on_fallback = on_fallback
        self.column_types = column_types
        self._selects: dict[tuple[str, str], tuple[str, ...]] = {}

    def decode(self, batches: list[Batch]) -> list[Decoded]:
        return [self._decode_route(group) for group in by_route(batches)]

    def _expressions(self, route: Route) -> tuple[str, ...]:
        found = self._selects.get((route.topic, route.table))
        if found is None:
            found = route.mapping.engine_select(route.schema)
            if self.column_types is not None:
                types = self.column_types(route.table)  # the store's answer: its errors are the sink's
                found = tuple(f"CAST({expr} AS {types[column]})" if column in types else expr
                              for expr, column in zip(found, route.columns, strict=True))  # fmt: skip
            self._selects[(route.topic, route.table)] = found
        return found

    def _decode_route(self, batches: list[Batch]) -> Decoded:
        expressions = self._expressions(batches[0].route)
        try:
            with scratch_file(batches) as path:
                select = select_from(batches, path, self.registry_url, expressions)
                data: bytes = self.engine.raw_query(select, fmt=self.fmt, settings=query_size(select))
        except Exception as exc:  # noqa: BLE001 - chDB raises its own kinds: Python finds the culprits
            self.on_fallback(batches, exc)
            (decoded,) = self.fallback.decode(batches)
            return decoded
        return Decoded(batches, data=data, fmt=self.fmt, decoder=self)
