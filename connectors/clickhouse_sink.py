"""Kafka to ClickHouse (chDB in-process, or a server): idempotent batch inserts.

Each write is one insert carrying an insert deduplication token made from table, topic, partition
and offset range (of every batch it holds), so a retried write is dropped by ClickHouse itself.
Rows carry their Kafka coordinates; on assignment the sink resumes after the highest offset the
table holds, so a crash between insert and commit neither loses nor doubles a batch. Tables are
ReplacingMergeTree keyed by ``event_id`` (and its sort key), collapsing replays that reach
Kafka twice.

With embedded chDB and a route that has ``native_select``, the sink decodes in the engine: the
batches of one route (all its partitions taken at a flush) go to a scratch file read with
ClickHouse's ``AvroConfluent`` format in one INSERT ... SELECT (writer schemas from the registry),
mapped by the route's SELECT expressions, each row given its own Kafka partition and offset. A set
the engine cannot read (a corrupt record, an unknown schema id) falls back to decoding record by
record in Python, batch by batch; the records that fail there too come back as rejects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from connectors.native import by_route, decode_each, quote, scratch_file, select_from, set_token
from connectors.sink import (
    Batch,
    BatchingSink,
    Reject,
    Route,
    Row,
    SinkWriteError,
    TopicPartition,
)

class ClickHouseSink(BatchingSink):
    name = "clickhouse"

    def __init__(
        self,
        client: Any,
        routes: Iterable[Route],
        *,
        registry_url: str | None = None,
        decode: Callable[[bytes], dict[str, Any]] | None = None,
    ) -> None:
        """``registry_url`` and ``decode`` switch on native decoding (embedded chDB only):
        the engine reads writer schemas from the registry; ``decode`` is the Python fallback."""
        super().__init__(routes)
        self.client = client
        self.registry_url = registry_url
        self.decode = decode
        self.native = registry_url is not None and decode is not None

    def write(self, batch: Batch) -> list[Reject]:
        return self.write_many([batch])

    def write_many(self, batches: list[Batch], prepared: Any = None) -> list[Reject]:
        if not self.native:
            for batch in batches:
                self._insert_rows(batch, batch.rows)
            return []
        rejects: list[Reject] = []
        for group in by_route(batches):
            if group[0].route.native_select is not None:
                try:
                    self._insert_native(group)
                    continue
                except Exception:  # noqa: BLE001 - any engine-side failure: try record by record
                    pass
            for batch in group:
                rows, failed = decode_each(batch, self.decode)  # type: ignore[arg-type]
                if rows:
                    self._insert_rows(batch, rows)
                rejects += failed
        return rejects

    def _insert_rows(self, batch: Batch, rows: list[Row]) -> None:
        try:
            self.client.insert(
                batch.route.table,
                rows,
                column_names=list(batch.route.columns),
                settings={"insert_deduplication_token": batch.dedup_token},
            )
        except Exception as exc:  # noqa: BLE001 - clickhouse-connect and chDB raise many kinds
            raise SinkWriteError(f"ClickHouse insert into {batch.route.table} failed: {exc}") from exc

    def _insert_native(self, group: list[Batch]) -> None:
        """One INSERT ... SELECT for the batches of one route, with one deduplication token."""
        assert self.registry_url is not None
        route = group[0].route
        with scratch_file(group) as path:
            select = select_from(group, path, self.registry_url)
            self.client.command(
                f"INSERT INTO {route.table} ({', '.join(route.columns)}) {select}, "
                f"insert_deduplication_token = {quote(set_token(group))}"
            )

    def stored_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        wanted = set(partitions)
        found: dict[TopicPartition, int] = {}
        for topic in {t for t, _ in wanted}:
            route = self.routes.get(topic)
            if route is None:
                continue
            try:
                result = self.client.query(
                    f"SELECT kafka_partition, max(kafka_offset) FROM {route.table} "
                    "WHERE kafka_topic = {topic:String} GROUP BY kafka_partition",
                    parameters={"topic": topic},
                )
            except Exception as exc:  # noqa: BLE001
                raise SinkWriteError(f"ClickHouse offsets of {route.table} unreadable: {exc}") from exc
            for partition, offset in result.result_rows:
                if (topic, int(partition)) in wanted:
                    found[(topic, int(partition))] = int(offset) + 1
        return found
