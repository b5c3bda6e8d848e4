"""Kafka to ClickHouse (chDB in-process, or a server over HTTP): idempotent batch inserts.

A flush is decoded in ``prepare`` (``connectors.decoding``: ClickHouse's engine renders Native
blocks, or Python rows for a set the engine cannot read) and written here, one insert per route,
each with an insert deduplication token made from table, topic, partitions and offset ranges, so a
retried write is dropped by ClickHouse itself. An insert the store refuses is narrowed down to the
rows at fault (``connectors.narrowing``, every part with a token of its own), which are
dead-lettered; the rest lands.

Resume: an insert is atomic per part, not per statement (one flush can touch several Kafka
partitions and several months), so a crash can leave a flush half landed. After the dead letters
of a flush are acknowledged, the sink writes a watermark per partition (``chatstream_sink_offsets``,
the next offset to read). On assignment it resumes after the watermark or Kafka's committed offset,
whichever is further, and skips the records past it that the table already holds: a flush cut
short by a crash is completed, not doubled. Tables are ReplacingMergeTree sorted by the mapping's
identity ``key`` with its ``version`` (the Kafka offset) as the version, which also collapses the
same event sent twice to Kafka into its latest copy, as the PostgreSQL sink does.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

from connectors.decoding import Decoded, Decoder
from connectors.engine import quote, set_token
from connectors.errors import RefusedWriteError, SinkWriteError, TransientWriteError
from connectors.narrowing import narrow
from connectors.sink import Batch, DeadLetter, Reject, Route, TopicPartition, describe, next_offsets

log = logging.getLogger(__name__)

OFFSETS_TABLE = "chatstream_sink_offsets"

# ClickHouse error codes that say "not now" (or "not set up"), never "not these rows"
TRANSIENT_CODES = frozenset({
    159, 160, 164, 202, 203, 209, 210, 236, 241, 242, 243, 252, 285, 319, 394, 425, 999, 1000,
    # the store is not set up (yet): missing database, table or column, access
    16, 47, 60, 81, 192, 193, 194, 497, 516,
})  # fmt: skip
_CODE = re.compile(r"Code: (\d+)")


def classify(exc: BaseException) -> type[SinkWriteError]:
    """What a failed ClickHouse write means: transient (retry as is) or a refusal (narrow)."""
    from clickhouse_connect.driver import exceptions as ch

    code = getattr(exc, "code", None)
    if code is None:
        found = _CODE.search(str(exc))
        code = int(found.group(1)) if found else None
    if code == 252 and "partitions for single INSERT" in str(exc):
        return RefusedWriteError  # too many partitions in one insert: smaller inserts pass
    if code in TRANSIENT_CODES:
        return TransientWriteError
    if code is None and isinstance(exc, (ch.OperationalError, ch.InterfaceError, ConnectionError, TimeoutError, OSError)):
        return TransientWriteError  # no answer from the server at all
    return RefusedWriteError


def column_types(client: Any, table: str) -> dict[str, str]:
    """Each column of ``table`` and its type, as the store has them (``EngineDecoder`` casts to them)."""
    try:
        found = client.query(
            "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = {table:String}",
            parameters={"table": table},
        ).result_rows
    except Exception as exc:  # noqa: BLE001 - clickhouse-connect and chDB raise many kinds
        raise classify(exc)(f"ClickHouse column types of {table} unreadable: {exc}") from exc
    if not found:
        raise TransientWriteError(f"ClickHouse has no table {table} (run `chatstream db migrate`)")
    return {str(name): str(kind) for name, kind in found}


class ClickHouseSink:
    name = "clickhouse"

    def __init__(self, client: Any, decoder: Decoder, routes: Iterable[Route], consumer_group: str) -> None:
        """``client``: clickhouse-connect's, of a server (``http://``; ``chdb://`` in unit tests);
        ``decoder``: an ``EngineDecoder`` rendering ``Native``, or a ``PythonDecoder``."""
        self.client = client
        self.tables = {route.topic: route.table for route in routes}
        self.decoder = decoder
        self.consumer_group = consumer_group

    def prepare(self, batches: list[Batch]) -> list[Decoded]:
        return self.decoder.decode(batches)

    def write(self, prepared: list[Decoded], dead_letter: DeadLetter) -> int:
        rejects = [reject for part in prepared for reject in part.rejects]
        written = 0
        for part in prepared:
            if part.size:
                refused = self._insert_narrowing(part, set_token(part.batches))
                rejects += refused
                written += part.size - len(refused)
        if rejects:
            dead_letter(rejects)
        self._store_watermarks([b for part in prepared for b in part.batches])
        return written

    def _insert_narrowing(self, part: Decoded, token: str) -> list[Reject]:
        try:
            self._insert(part, token)
            return []
        except RefusedWriteError as exc:
            log.warning("ClickHouse refused an insert into %s of %s (%s); narrowing it down",
                        part.route.table, describe(part.batches), exc)  # fmt: skip
            refusal = exc

        def attempt(indices: Sequence[int]) -> None:
            self._insert(part.part(indices), f"{token}/{indices[0]}+{len(indices)}")

        refused = narrow(range(part.size), attempt, refusal)
        return [Reject(part.record(i), error) for i, error in refused]

    def _insert(self, part: Decoded, token: str) -> None:
        table, columns = part.route.table, list(part.route.columns)
        settings = {"insert_deduplication_token": token}
        try:
            if part.rows is not None:
                self.client.insert(table, part.rows, column_names=columns, settings=settings)
            else:
                self.client.raw_insert(table, columns, insert_block=part.data, fmt=part.fmt, settings=settings)
        except Exception as exc:  # noqa: BLE001 - clickhouse-connect, chDB and row encoding raise many kinds
            raise classify(exc)(f"ClickHouse insert into {table} failed: {exc}") from exc

    def _store_watermarks(self, batches: list[Batch]) -> None:
        ends = next_offsets(batches)
        rows = [(self.consumer_group, topic, partition, end) for (topic, partition), end in ends.items()]
        if not rows:
            return
        try:
            # literal VALUES: no DESCRIBE round trip, and not the client's row encoder (whose
            # first use in a process costs a second of imports)
            values = ", ".join(f"({quote(g)}, {quote(t)}, {p}, {o})" for g, t, p, o in rows)
            self.client.command(f"INSERT INTO {OFFSETS_TABLE} (consumer_group, topic, kafka_partition, next_offset) VALUES {values}")
        except Exception as exc:  # noqa: BLE001
            raise TransientWriteError(f"ClickHouse watermark not stored: {exc}") from exc

    def resume_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        wanted = set(partitions)
        result = self._query(
            f"SELECT topic, kafka_partition, max(next_offset) FROM {OFFSETS_TABLE} "
            "WHERE consumer_group = {group:String} GROUP BY topic, kafka_partition",
            {"group": self.consumer_group},
        )
        return {(t, int(p)): int(o) for t, p, o in result if (t, int(p)) in wanted}

    def stored_offsets_from(self, starts: dict[TopicPartition, int]) -> dict[TopicPartition, set[int]]:
        found: dict[TopicPartition, set[int]] = {}
        for topic in {t for t, _ in starts}:
            arms = " OR ".join(f"(kafka_partition = {p} AND kafka_offset >= {o})" for (t, p), o in starts.items() if t == topic)
            result = self._query(
                f"SELECT kafka_partition, kafka_offset FROM {self.tables[topic]} "
                f"WHERE kafka_topic = {{topic:String}} AND ({arms})",
                {"topic": topic},
            )
            for partition, offset in result:
                found.setdefault((topic, int(partition)), set()).add(int(offset))
        return found

    def _query(self, sql: str, parameters: dict[str, Any]) -> list[Sequence[Any]]:
        try:
            return list(self.client.query(sql, parameters=parameters).result_rows)
        except Exception as exc:  # noqa: BLE001
            raise TransientWriteError(f"ClickHouse read failed: {exc}") from exc

    def close(self) -> None:
        """The client belongs to whoever made it."""

