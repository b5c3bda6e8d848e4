"""Kafka to PostgreSQL: rows and consumed offsets committed in one transaction (exactly once).

The fast path COPYs a batch straight into the table; if any row is already there (a replay),
the transaction is rolled back and the batch goes through a staging table with
``INSERT ... ON CONFLICT DO NOTHING``. Either way the offsets row commits with the rows, and on
assignment the sink resumes from the offsets the database holds.

Given a decoding engine (an in-memory chDB client) and the registry URL, the sink decodes each
batch in that engine (``connectors.native``) into tab-separated text that COPY reads as is, and
falls back to Python decoding for a batch the engine cannot read. Timestamps travel in UTC: the
connection's time zone is UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from psycopg import sql

from connectors.native import decode_each, scratch_file, select_from
from connectors.sink import Batch, BatchingSink, RawRecord, Reject, Route, Row, SinkWriteError, TopicPartition


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
        rows: list[Row] | bytes = batch.rows
        rejects: list[Reject] = []
        if self.native:
            records: list[RawRecord] = [row[0] for row in batch.rows]
            rows = b""
            if batch.route.native_select is not None:
                try:
                    with scratch_file(records) as path:
                        rows = self.engine.raw_query(select_from(batch, records, path, self.registry_url or ""),
                                                     fmt="TabSeparated")  # fmt: skip
                except Exception:  # noqa: BLE001 - any engine-side failure: try record by record
                    rows = b""
            if not rows:
                rows, rejects = decode_each(batch, records, self.decode)  # type: ignore[arg-type]
        try:
            try:
                self._write(batch, rows, staged=False)
            except psycopg.errors.UniqueViolation:
                self._write(batch, rows, staged=True)
        except psycopg.Error as exc:
            self._reset()
            raise SinkWriteError(f"PostgreSQL write into {batch.route.table} failed: {exc}") from exc
        return rejects

    def _write(self, batch: Batch, rows: list[Row] | bytes, *, staged: bool) -> None:
        conn = self._connection()
        table = sql.Identifier(batch.route.table)
        columns = sql.SQL(", ").join(map(sql.Identifier, batch.route.columns))
        with conn.transaction():
            target = table
            if staged:
                target = sql.Identifier(f"stage_{batch.route.table}")
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
            conn.execute(
                "INSERT INTO chatstream_sink_offsets (consumer_group, topic, kafka_partition, next_offset)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (consumer_group, topic, kafka_partition)"
                " DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()"
                " WHERE chatstream_sink_offsets.next_offset < EXCLUDED.next_offset",
                (self.consumer_group, batch.topic, batch.partition, batch.last_offset + 1),
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
