"""Kafka to ClickHouse (chDB in-process, or a server): idempotent batch inserts.

Each batch is one insert (one part: atomic) carrying an insert deduplication token made from
table, topic, partition and offset range, so a retried batch is dropped by ClickHouse itself.
Rows carry their Kafka coordinates; on assignment the sink resumes after the highest offset the
table holds, so a crash between insert and commit neither loses nor doubles a batch. Tables are
ReplacingMergeTree keyed by ``event_id`` (and its sort key), collapsing replays that reach
Kafka twice.

With embedded chDB and a route that has ``native_select``, the sink decodes in the engine: the
batch's framed records go to a scratch file read with ClickHouse's ``AvroConfluent`` format (writer
schemas from the registry), mapped by the route's SELECT expressions, each row given its own Kafka
offset. A batch the engine cannot read (a corrupt record, an unknown schema id) falls back to
decoding record by record in Python; the records that fail there too come back as rejects.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from chatstream.avro.serde import WireFormatError
from connectors.sink import (
    Batch,
    BatchingSink,
    MappingError,
    RawRecord,
    Reject,
    Route,
    Row,
    SinkWriteError,
    SourceRecord,
    TopicPartition,
)

_SCRATCH = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


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
        self._selects: dict[str, tuple[str, ...]] = {}

    def write(self, batch: Batch) -> list[Reject]:
        if not self.native:
            self._insert_rows(batch, batch.rows)
            return []
        records: list[RawRecord] = [row[0] for row in batch.rows]
        if batch.route.native_select is not None:
            try:
                self._insert_native(batch, records)
                return []
            except Exception:  # noqa: BLE001 - any engine-side failure: try record by record
                pass
        rows: list[Row] = []
        rejects: list[Reject] = []
        for record in records:
            try:
                value = self.decode(record.value)  # type: ignore[misc]
                rows.append(batch.route.to_row(SourceRecord(record.topic, record.partition, record.offset, value)))
            except WireFormatError as exc:
                rejects.append(Reject(record, exc))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                rejects.append(Reject(record, MappingError(f"cannot map to {batch.route.table}: {exc}")))
            except Exception as exc:  # noqa: BLE001 - registry unreachable: the record is fine
                raise SinkWriteError(f"cannot decode {record.topic}[{record.partition}]@{record.offset} yet: {exc}") from exc
        if rows:
            self._insert_rows(batch, rows)
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

    def _insert_native(self, batch: Batch, records: list[RawRecord]) -> None:
        route = batch.route
        assert route.native_select is not None and self.registry_url is not None
        offsets = ",".join(str(r.offset) for r in records)
        if route.table not in self._selects:
            self._selects[route.table] = route.native_select()
        select = [
            expr.replace("{kafka_topic}", _quote(route.topic))
            .replace("{kafka_partition}", str(batch.partition))
            .replace("{kafka_offset}", f"[{offsets}][rowNumberInAllBlocks() + 1]")
            for expr in self._selects[route.table]
        ]
        fd, name = tempfile.mkstemp(prefix="chatstream-batch-", suffix=".avro", dir=_SCRATCH)
        try:
            with os.fdopen(fd, "wb") as scratch:
                for record in records:
                    scratch.write(record.value)
            self.client.command(
                f"INSERT INTO {route.table} ({', '.join(route.columns)}) "
                f"SELECT {', '.join(select)} FROM file({_quote(name)}, 'AvroConfluent') "
                f"SETTINGS format_avro_schema_registry_url = {_quote(self.registry_url)}, max_threads = 1, "
                f"insert_deduplication_token = {_quote(batch.dedup_token)}"
            )
        finally:
            os.unlink(name)

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
