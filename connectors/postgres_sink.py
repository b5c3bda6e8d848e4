"""Kafka to PostgreSQL: rows and consumed offsets committed in one transaction (exactly once).

The fast path COPYs a batch straight into the table; if any row is already there (a replay),
the transaction is rolled back and the batch goes through a staging table with
``INSERT ... ON CONFLICT DO NOTHING``. Either way the offsets row commits with the rows, and on
assignment the sink resumes from the offsets the database holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from psycopg import sql

from connectors.sink import Batch, BatchingSink, Reject, Route, SinkWriteError, TopicPartition


class PostgresSink(BatchingSink):
    name = "postgres"

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], routes: Iterable[Route],
                 consumer_group: str) -> None:  # fmt: skip
        super().__init__(routes)
        self._connect = connect
        self._conn: psycopg.Connection[Any] | None = None
        self.consumer_group = consumer_group

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = self._connect()
        return self._conn

    def _reset(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def write(self, batch: Batch) -> list[Reject]:
        try:
            try:
                self._write(batch, staged=False)
            except psycopg.errors.UniqueViolation:
                self._write(batch, staged=True)
        except psycopg.Error as exc:
            self._reset()
            raise SinkWriteError(f"PostgreSQL write into {batch.route.table} failed: {exc}") from exc
        return []

    def _write(self, batch: Batch, *, staged: bool) -> None:
        conn = self._connection()
        table = sql.Identifier(batch.route.table)
        columns = sql.SQL(", ").join(map(sql.Identifier, batch.route.columns))
        with conn.transaction():
            target = table
            if staged:
                target = sql.Identifier(f"stage_{batch.route.table}")
                conn.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS").format(target, table))
            with conn.cursor().copy(sql.SQL("COPY {} ({}) FROM STDIN").format(target, columns)) as copy:
                for row in batch.rows:
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
