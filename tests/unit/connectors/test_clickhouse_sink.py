"""The ClickHouse sink's native path and its record-by-record fallback, with a fake client."""

from __future__ import annotations

from typing import Any

import pytest

from chatstream.avro.serde import WireFormatError
from connectors.clickhouse_sink import ClickHouseSink
from connectors.native import offset_runs
from connectors.rows import CHAT_EVENT_COLUMNS, chat_event_select
from connectors.sink import Route


class FakeClient:
    def __init__(self, native_fails: bool) -> None:
        self.native_fails = native_fails
        self.commands: list[str] = []
        self.inserts: list[tuple[str, list[Any], dict[str, str]]] = []

    def command(self, sql: str) -> None:
        self.commands.append(sql)
        if self.native_fails:
            raise RuntimeError("Code: 117. Cannot read Avro")

    def insert(self, table: str, rows: list[Any], column_names: list[str], settings: dict[str, str]) -> None:
        self.inserts.append((table, rows, settings))


def decode(payload: bytes) -> dict[str, Any]:
    if payload.endswith(b"bad"):
        raise WireFormatError("Avro body does not decode")
    return {"n": int(payload[5:])}


ROUTE = Route("t", "tbl", ("n", "o"), lambda r: (r.value["n"], r.offset), native_select=lambda: ("n", "{kafka_offset}"))


def sink(client: FakeClient) -> ClickHouseSink:
    return ClickHouseSink(client, [ROUTE], registry_url="http://registry", decode=decode)


def feed(target: ClickHouseSink, payloads: list[bytes], offsets: list[int] | None = None) -> None:
    for offset, payload in zip(offsets or range(10, 10 + len(payloads)), payloads):
        target.add_raw("t", 0, offset, b"k", payload)


def test_native_insert_reads_the_batch_in_the_engine_with_per_row_offsets() -> None:
    client = FakeClient(native_fails=False)
    target = sink(client)
    feed(target, [b"\x00\x00\x00\x00\x011", b"\x00\x00\x00\x00\x012"])
    (batch,) = target.take_batches()
    assert target.write(batch) == []
    (sql,) = client.commands
    assert "FROM file(" in sql and "'AvroConfluent'" in sql and "SELECT n, rowNumberInAllBlocks() + 10 FROM" in sql
    assert "insert_deduplication_token = 'tbl:t:0:10-11'" in sql
    assert client.inserts == []


def test_offsets_with_gaps_are_given_row_by_row() -> None:
    client = FakeClient(native_fails=False)
    target = sink(client)
    feed(target, [b"\x00\x00\x00\x00\x011", b"\x00\x00\x00\x00\x012"], offsets=[10, 13])  # a transaction marker at 11-12
    (batch,) = target.take_batches()
    target.write(batch)
    (sql,) = client.commands
    # row 0 -> 0 + 10, row 1 -> 1 + 12
    assert "rowNumberInAllBlocks() + multiIf(rowNumberInAllBlocks() < 1, 10, 12)" in sql and "tbl:t:0:10-13" in sql


def test_all_partitions_of_a_flush_go_in_one_insert_with_one_token() -> None:
    client = FakeClient(native_fails=False)
    target = sink(client)
    target.routes["t"] = Route("t", "tbl", ("n", "p", "o"), lambda r: (r.value["n"], r.partition, r.offset),
                               native_select=lambda: ("n", "{kafka_partition}", "{kafka_offset}"))  # fmt: skip
    for partition, offsets in ((0, [5, 6, 7]), (3, [40, 41])):
        for offset in offsets:
            target.add_raw("t", partition, offset, None, b"\x00\x00\x00\x00\x011")
    batches = target.take_batches()
    assert offset_runs(batches) == [(0, 5, 3), (3, 40, 2)]
    assert target.write_many(batches) == []
    (sql,) = client.commands
    # rows 0-2 are partition 0 from offset 5; rows 3-4 partition 3 from offset 40 (row 3 + 37)
    assert "SELECT n, multiIf(rowNumberInAllBlocks() < 3, 0, 3), rowNumberInAllBlocks() + multiIf(rowNumberInAllBlocks() < 3, 5, 37)" in sql
    assert "insert_deduplication_token = 'tbl:t:0:5-7,tbl:t:3:40-41'" in sql


def test_offset_runs_split_a_batch_at_its_gaps() -> None:
    target = sink(FakeClient(native_fails=False))
    for offset in (1, 2, 5, 6, 9):
        target.add_raw("t", 2, offset, None, b"\x00\x00\x00\x00\x011")
    assert offset_runs(target.take_batches()) == [(2, 1, 2), (2, 5, 2), (2, 9, 1)]


def test_a_batch_the_engine_cannot_read_falls_back_and_rejects_only_the_bad_records() -> None:
    client = FakeClient(native_fails=True)
    target = sink(client)
    feed(target, [b"\x00\x00\x00\x00\x011", b"\x00\x00\x00\x00\x01bad", b"\x00\x00\x00\x00\x013"])
    (batch,) = target.take_batches()
    rejects = target.write(batch)
    assert [r.record.offset for r in rejects] == [11]
    assert isinstance(rejects[0].error, WireFormatError)
    ((table, rows, settings),) = client.inserts
    assert table == "tbl" and rows == [(1, 10), (3, 12)]
    assert settings == {"insert_deduplication_token": "tbl:t:0:10-12"}


def test_without_a_registry_the_sink_decodes_in_python() -> None:
    assert not ClickHouseSink(FakeClient(False), [ROUTE]).native


@pytest.mark.parametrize("column", ["message_id", "model", "text_length", "rating", "details"])
def test_chat_event_select_maps_every_column_in_order(column: str) -> None:
    select = chat_event_select()
    assert len(select) == len(CHAT_EVENT_COLUMNS)
    expression = select[CHAT_EVENT_COLUMNS.index(column)]
    assert expression.startswith("multiIf(")
    if column == "model":
        assert "model_switched.to_model" in expression
    if column == "details":
        assert expression.count("toJSONString(") == 14
