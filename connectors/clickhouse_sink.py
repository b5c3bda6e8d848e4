"""Kafka to ClickHouse (chDB in-process, or a server): idempotent batch inserts.

Each batch is one insert (one part: atomic) carrying an insert deduplication token made from
table, topic, partition and offset range, so a retried batch is dropped by ClickHouse itself.
Rows carry their Kafka coordinates; on assignment the sink resumes after the highest offset the
table holds, so a crash between insert and commit neither loses nor doubles a batch. Tables are
ReplacingMergeTree keyed by ``event_id`` (and its sort key), collapsing replays that reach
Kafka twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from connectors.sink import Batch, BatchingSink, Route, SinkWriteError, TopicPartition


class ClickHouseSink(BatchingSink):
    name = "clickhouse"

    def __init__(self, client: Any, routes: Iterable[Route]) -> None:
        super().__init__(routes)
        self.client = client

    def write(self, batch: Batch) -> None:
        try:
            self.client.insert(
                batch.route.table,
                batch.rows,
                column_names=list(batch.route.columns),
                settings={"insert_deduplication_token": batch.dedup_token},
            )
        except Exception as exc:  # noqa: BLE001 - clickhouse-connect and chDB raise many kinds
            raise SinkWriteError(f"ClickHouse insert into {batch.route.table} failed: {exc}") from exc

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
