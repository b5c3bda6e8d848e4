"""Kafka to PostgreSQL: rows and consumed offsets committed in one transaction (exactly once).

The fast path COPYs the batches of a flush (every partition taken) straight into the table; if
any row is already there (a replay), the transaction is rolled back and they go through a staging
table with ``INSERT ... ON CONFLICT DO NOTHING``. Either way each partition's offsets row commits
with the rows, and on assignment the sink resumes from the offsets the database holds.

Given a decoding engine (an in-memory chDB client) and the registry URL, the sink decodes the
batches of a flush together (one query per table, in ``prepare``, while the runner writes the
previous flush) in that engine (``connectors.native``) into tab-separated text that COPY reads as
is, and falls back to Python decoding for a batch the engine cannot read. Timestamps travel in UTC: the
connection's time zone is UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from psycopg import sql

from connectors.native import by_route, decode_each, scratch_file, select_from
from connectors.sink import Batch, BatchingSink, Reject, Route, Row, SinkWriteError, TopicPartition


class PostgresSink(BatchingSink):
    name = "postgres"

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], routes: Iterable[Route],
                 consumer_group: str, *, engine: Any = None, registry_url: str | None = None,
                 decode: Callable[[bytes], dict[str, Any]] | None = None) -> None:  # fmt: skip
        super().__init__(routes)
        self._connect = connect
        self._conn: psycopg.Connection[Any] | None = None
        self.consumer_group = consumer_group
        self.engine = engine
        self.registry_url = registry_url
        self.decode = decode
        self.native = engine is not None and registry_url is not None and decode is not None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = self._connect()
        return self._conn

    def _reset(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def write(self, batch: Batch) -> list[Reject]:
        return self.write_many([batch])

    def prepare(self, batches: list[Batch]) -> list[tuple[list[Batch], list[Row] | bytes, list[Reject]]] | None:
        """Decode a set (per route: COPY text from the engine, or Python rows and rejects); the
        runner calls it while the previous set is being written."""
        if not self.native:
            return None
        prepared: list[tuple[list[Batch], list[Row] | bytes, list[Reject]]] = []
        for group in by_route(batches):
            text = b""
            if group[0].route.native_select is not None:
                try:
                    with scratch_file(group) as path:
                        text = self.engine.raw_query(select_from(group, path, self.registry_url or ""), fmt="TabSeparated")
                except Exception:  # noqa: BLE001 - any engine-side failure: try record by record
                    text = b""
            if text:
                prepared.append((group, text, []))
                continue
            for batch in group:
                rows, failed = decode_each(batch, self.decode)  # type: ignore[arg-type]
                prepared.append(([batch], rows, failed))
        return prepared

    def write_many(self, batches: list[Batch], prepared: Any = None) -> list[Reject]:
        if not self.native:
            for batch in batches:
                self._store([batch], batch.rows)
            return []
        rejects: list[Reject] = []
        for group, rows, failed in prepared if prepared is not None else self.prepare(batches) or []:
            self._store(group, rows)
            rejects += failed
        return rejects

    def _store(self, group: list[Batch], rows: list[Row] | bytes) -> None:
        """The rows of batches of one route, and their offsets, in one transaction."""
        try:
            try:
                self._transaction(group, rows, staged=False)
            except psycopg.errors.UniqueViolation:
                self._transaction(group, rows, staged=True)
        except psycopg.Error as exc:
            self._reset()
            raise SinkWriteError(f"PostgreSQL write into {group[0].route.table} failed: {exc}") from exc

    def _transaction(self, group: list[Batch], rows: list[Row] | bytes, *, staged: bool) -> None:
        conn = self._connection()
        route = group[0].route
        table = sql.Identifier(route.table)
        columns = sql.SQL(", ").join(map(sql.Identifier, route.columns))
        with conn.transaction():
            target = table
            if staged:
                target = sql.Identifier(f"stage_{route.table}")
                conn.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS").format(target, table))
            with conn.cursor().copy(sql.SQL("COPY {} ({}) FROM STDIN").format(target, columns)) as copy:
                if isinstance(rows, bytes):
                    copy.write(rows)  # the engine's tab-separated text is COPY's own text format
                else:
                    for row in rows:
                        copy.write_row(row)
            if staged:
                conn.execute(
                    sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT DO NOTHING").format(table, columns, columns, target)
                )
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO chatstream_sink_offsets (consumer_group, topic, kafka_partition, next_offset)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (consumer_group, topic, kafka_partition)"
                    " DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()"
                    " WHERE chatstream_sink_offsets.next_offset < EXCLUDED.next_offset",
                    [(self.consumer_group, b.topic, b.partition, b.last_offset + 1) for b in group],
                )

    def stored_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        wanted = set(partitions)
        try:
            conn = self._connection()
            with conn.transaction():
                rows = conn.execute(
                    "SELECT topic, kafka_partition, next_offset FROM chatstream_sink_offsets"
                    " WHERE consumer_group = %s",
                    (self.consumer_group,),
                ).fetchall()
        except psycopg.Error as exc:
            self._reset()
            raise SinkWriteError(f"PostgreSQL offsets unreadable: {exc}") from exc
        return {(t, int(p)): int(o) for t, p, o in rows if (t, int(p)) in wanted}

    def close(self) -> None:
        self._reset()
