"""Every table the ClickHouse sink fills can answer the sink's resume query: after a crash (or any
restart past its watermark) the sink asks each table which of a partition's offsets it already
holds, by the Kafka coordinates of its rows. A table without them stalls the sink at start."""

from __future__ import annotations

import clickhouse_connect
import pytest

from chatstream.avro.catalog import load_catalog
from connectors.clickhouse_sink import ClickHouseSink
from connectors.decoding import PythonDecoder
from connectors.mappings import MAPPINGS
from connectors.mappings.base import KAFKA_COLUMNS
from connectors.sink import Route
from pipelines.sinks import SINK_TABLES
from tests.unit.connectors.tables import create_table


@pytest.mark.parametrize(("topic", "table"), SINK_TABLES["clickhouse"])
def test_the_sink_can_read_what_each_table_holds(topic: str, table: str) -> None:
    assert set(KAFKA_COLUMNS) <= set(MAPPINGS[table].columns), f"{table}'s mapping does not write its Kafka coordinates"
    engine = clickhouse_connect.get_client(dsn="chdb://memory")
    name = f"resume_{table}"
    create_table(engine, table, name)
    route = Route(topic, name, MAPPINGS[table], load_catalog()[topic].schema)
    sink = ClickHouseSink(engine, PythonDecoder(lambda raw: raw), [route], "resume-test")  # only its resume query runs
    assert sink.stored_offsets_from({(topic, 0): 0, (topic, 3): 7}) == {}
