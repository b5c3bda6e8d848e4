"""Kafka to PostgreSQL: rows, dead letters and consumed offsets of a flush in one transaction.

A flush is decoded in ``prepare`` (``connectors.decoding``: ClickHouse's engine renders the
tab-separated text COPY reads as is, or Python rows for a set the engine cannot read) and written
here in one transaction: each route's rows are COPYed in a savepoint; if an event is already
there (the same event reached Kafka twice: the same identity, the mapping's ``key``, which is the
table's primary key) they go through a staging table instead (``merge_staged``: of the copies of
an event the one with the highest Kafka offset is kept, as ClickHouse's ReplacingMergeTree keeps
it); rows the store refuses (``out of range for type integer``, a NUL or a byte that is not UTF-8, a
malformed UUID) are narrowed down in savepoints (``connectors.narrowing``). Then the records it
will not store are dead-lettered and acknowledged, and only then the partitions' offsets rows are
written and the transaction commits. A crash anywhere before the commit leaves nothing: the flush
is read again, and its dead letters are produced again (at least once). On assignment the sink
resumes from the offsets the database holds (exactly once). Timestamps travel in UTC.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psycopg
from psycopg import sql

from connectors.decoding import Decoded, Decoder
from connectors.errors import RefusedWriteError, SinkWriteError, TransientWriteError
from connectors.narrowing import narrow
from connectors.sink import Batch, DeadLetter, Reject, Route, TopicPartition, describe, next_offsets

log = logging.getLogger(__name__)

# SQLSTATEs that say "the store is not set up (yet)": retried like an outage, never dead-lettered
_NOT_SET_UP = frozenset({"42P01", "42703", "42501", "3D000", "3F000", "28000", "28P01"})


def classify(exc: BaseException) -> type[SinkWriteError]:
    """What a failed PostgreSQL write means: transient (retry as is) or a refusal (narrow).

    Transient: no connection or a lost one (class 08), an operator or crash shutdown (57), too
    few resources (53), a serialization failure or deadlock (40), lock not available (55), a
    system error (58), and a store without its tables or rights. Everything else, the data
    exceptions of class 22, the integrity violations of class 23 and the program limits of
    class 54 first, is a refusal."""
    state = getattr(exc, "sqlstate", None) or ""
    if not state:  # no answer from the server: the connection failed or was lost
        return TransientWriteError if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)) else RefusedWriteError
    # by the server's SQLSTATE, not psycopg's class: OperationalError also covers class 54
    # (program limit exceeded: a value too large for an index entry), which no retry cures
    if state[:2] in ("08", "40", "53", "55", "57", "58") or state in _NOT_SET_UP:
        return TransientWriteError
    return RefusedWriteError


def merge_staged(route: Route, stage: sql.Identifier) -> sql.Composed:
    """The statement that moves rows staged in ``stage`` into the route's table, one per identity.

    Copies of one event (same ``key`` of the mapping) collapse to the one with the highest
    ``version``: in the batch first (one INSERT cannot touch a row twice), then against the
    table, where a stored row is replaced only by a newer copy (a replayed flush changes nothing)."""
    mapping = route.mapping
    table = sql.Identifier(route.table)
    columns = sql.SQL(", ").join(map(sql.Identifier, mapping.columns))
    key = sql.SQL(", ").join(map(sql.Identifier, mapping.key))
    version = sql.Identifier(mapping.version)
    updates = sql.SQL(", ").join(
        sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in mapping.columns if c not in mapping.key
    )
    return sql.SQL(
        "INSERT INTO {table} ({columns}) SELECT DISTINCT ON ({key}) {columns} FROM {stage} ORDER BY {key}, {version} DESC"
        " ON CONFLICT ({key}) DO UPDATE SET {updates} WHERE {table}.{version} < EXCLUDED.{version}"
    ).format(table=table, columns=columns, key=key, stage=stage, version=version, updates=updates)


class PostgresSink:
    name = "postgres"

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], decoder: Decoder, consumer_group: str) -> None:
        """``connect`` opens an autocommit connection in UTC; ``decoder`` is an ``EngineDecoder``
        rendering ``TabSeparated`` or a ``PythonDecoder``."""
        self._connect = connect
        self._conn: psycopg.Connection[Any] | None = None
        self.decoder = decoder
        self.consumer_group = consumer_group

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = self._connect()
        return self._conn

    def _reset(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def prepare(self, batches: list[Batch]) -> list[Decoded]:
        return self.decoder.decode(batches)

    def write(self, prepared: list[Decoded], dead_letter: DeadLetter) -> int:
        try:
            conn = self._connection()
            with conn.transaction():
                rejects = [reject for part in prepared for reject in part.rejects]
                written = 0
                for part in prepared:
                    if part.size:
                        refused = self._copy_narrowing(conn, part)
                        rejects += refused
                        written += part.size - len(refused)
                if rejects:
                    dead_letter(rejects)  # acknowledged before the offsets that pass them commit
                self._store_offsets(conn, [b for part in prepared for b in part.batches])
            return written
        except psycopg.Error as exc:
            self._reset()
            raise classify(exc)(f"PostgreSQL write failed: {exc}") from exc
        except SinkWriteError:
            self._reset()  # rolled back; a fresh connection for the retry
            raise

    def _copy_narrowing(self, conn: psycopg.Connection[Any], part: Decoded) -> list[Reject]:
        try:
            self._copy(conn, part)
            return []
        except RefusedWriteError as exc:
            log.warning("PostgreSQL refused a COPY into %s of %s (%s); narrowing it down",
                        part.route.table, describe(part.batches), exc)  # fmt: skip
            refused = narrow(range(part.size), lambda indices: self._copy(conn, part.part(indices)), exc)
        return [Reject(part.record(i), error) for i, error in refused]

    def _copy(self, conn: psycopg.Connection[Any], part: Decoded) -> None:
        """COPY a part in a savepoint (staged on a conflict); raises the classified error."""
        try:
            try:
                with conn.transaction():
                    self._copy_into(conn, part, staged=False)
            except psycopg.errors.UniqueViolation:
                with conn.transaction():
                    self._copy_into(conn, part, staged=True)
        except psycopg.Error as exc:
            raise classify(exc)(f"PostgreSQL refused rows for {part.route.table}: {exc}") from exc

    def _copy_into(self, conn: psycopg.Connection[Any], part: Decoded, *, staged: bool) -> None:
        route = part.route
        table = sql.Identifier(route.table)
        columns = sql.SQL(", ").join(map(sql.Identifier, route.columns))
        target = table
        if staged:
            target = sql.Identifier(f"stage_{route.table}")
            conn.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS").format(target, table))
        with conn.cursor().copy(sql.SQL("COPY {} ({}) FROM STDIN").format(target, columns)) as copy:
            if part.data is not None:
                copy.write(part.data)  # the engine's tab-separated text is COPY's own text format
            else:
                for row in part.rows or ():
                    copy.write_row(row)
        if staged:
            conn.execute(merge_staged(route, target))
            conn.execute(sql.SQL("TRUNCATE {}").format(target))

    def _store_offsets(self, conn: psycopg.Connection[Any], batches: Sequence[Batch]) -> None:
        ends = next_offsets(batches)
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO chatstream_sink_offsets (consumer_group, topic, kafka_partition, next_offset)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (consumer_group, topic, kafka_partition)"
                " DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()"
                " WHERE chatstream_sink_offsets.next_offset < EXCLUDED.next_offset",
                [(self.consumer_group, topic, partition, end) for (topic, partition), end in ends.items()],
            )

    def resume_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        wanted = set(partitions)
        try:
            conn = self._connection()
            with conn.transaction():
                rows = conn.execute(
                    "SELECT topic, kafka_partition, next_offset FROM chatstream_sink_offsets WHERE consumer_group = %s",
                    (self.consumer_group,),
                ).fetchall()
        except psycopg.Error as exc:
            self._reset()
            raise TransientWriteError(f"PostgreSQL offsets unreadable: {exc}") from exc
        return {(t, int(p)): int(o) for t, p, o in rows if (t, int(p)) in wanted}

    def stored_offsets_from(self, starts: dict[TopicPartition, int]) -> dict[TopicPartition, set[int]]:
        return {}  # rows and offsets commit together: nothing past the stored offsets is there

    def close(self) -> None:
        self._reset()
