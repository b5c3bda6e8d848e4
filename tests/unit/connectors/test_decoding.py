"""The decode seam: ClickHouse's engine (chDB in-memory) and Python decode the same records into
the same rows, column by column; a set the engine cannot read falls back to Python."""

from __future__ import annotations

import io
import json
import struct
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import clickhouse_connect
import fastavro
import pytest

from chatstream.avro.catalog import load_catalog
from chatstream.avro.serde import ConfluentDecoder
from chatstream.settings import REPO_ROOT
from connectors.clickhouse_sink import column_types
from connectors.decoding import EngineDecoder, PythonDecoder
from connectors.mappings import CHAT_EVENTS, FIRST_MS, LAST_MS
from connectors.sink import Batch, Route
from tests.samples import sample

TOPIC = "chat.actions.v1"
SCHEMA = load_catalog()[TOPIC].schema
PARSED = fastavro.parse_schema(SCHEMA)
ROUTE = Route(TOPIC, "chat_events", CHAT_EVENTS, SCHEMA)
TEXTS = ["plain", "tab\there", "new\nline", "back\\slash", "quote ' and \"", "unicode é ✓ 😀", ""]


@pytest.fixture(scope="module")
def registry_url() -> Iterator[str]:
    """A schema registry's one call the engine makes (``GET /schemas/ids/1``), on loopback."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            body = json.dumps({"schema": json.dumps(SCHEMA)}).encode()
            self.send_response(200 if self.path.rstrip("/").endswith("/schemas/ids/1") else 404)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def engine() -> Any:
    return clickhouse_connect.get_client(dsn="chdb://memory")


def framed(record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    out.write(struct.pack(">bI", 0, 1))
    fastavro.schemaless_writer(out, PARSED, record)
    return out.getvalue()


def every_action() -> list[dict[str, Any]]:
    """One record per action, its detail filled from the schema, text fields varied."""
    fields = {f["name"]: f for f in SCHEMA["fields"]}
    records = []
    for i, action in enumerate(fields["action"]["type"]["symbols"]):
        base = {name: sample(f["type"], name) for name, f in fields.items() if not isinstance(f["type"], list)}
        base.update(action=action, occurred_at=1_790_000_000_000 + i * 86_400_000, session_id=None,
                    conversation_id=TEXTS[i % len(TEXTS)], client=None if i % 2 else "web")  # fmt: skip
        for symbol in fields["action"]["type"]["symbols"]:
            base[symbol.lower()] = None
        detail = sample(fields[action.lower()]["type"])
        for key, value in detail.items():
            if isinstance(value, str) and value.endswith("-value"):  # a free-text field, not an id or enum
                detail[key] = TEXTS[(i + len(key)) % len(TEXTS)]
        base[action.lower()] = detail
        records.append(base)
    return records


def batch(records: list[dict[str, Any]], partition: int = 2, first: int = 100) -> Batch:
    out = Batch(ROUTE, partition, first_offset=first, last_offset=first + len(records) - 1)
    for offset, record in enumerate(records, start=first):
        out.offsets.append(offset)
        out.keys.append(b"k")
        out.values.append(framed(record))
    return out


def table(engine: Any, name: str) -> None:
    ddl = (REPO_ROOT / "infra/migrations/clickhouse/0002_chat_events.sql").read_text()
    engine.command(f"DROP TABLE IF EXISTS {name}")
    engine.command(f"CREATE TABLE {name}" + ddl.split("CREATE TABLE IF NOT EXISTS chat_events")[1].strip().rstrip(";"))


def rows_of(engine: Any, name: str) -> list[tuple[Any, ...]]:
    return list(engine.query(f"SELECT * EXCEPT inserted_at FROM {name} ORDER BY kafka_offset").result_rows)


def test_engine_and_python_decoders_agree_on_every_column(engine: Any, registry_url: str) -> None:
    records = every_action()
    python = PythonDecoder(ConfluentDecoder(lambda _id: SCHEMA).decode)
    fallbacks: list[Exception] = []
    stored = {}
    renderings = {"Native": None, "Native in the table's types": column_types, "TabSeparated": None}
    for name, types in renderings.items():
        fmt, target = name.split()[0], f"parity_{len(stored)}"
        table(engine, target)
        decoder = EngineDecoder(engine, registry_url, fmt, python, lambda _b, e: fallbacks.append(e),
                                column_types=types and (lambda t, target=target: column_types(engine, target)))  # fmt: skip
        (decoded,) = decoder.decode([batch(records)])
        assert decoded.data is not None and decoded.size == len(records) and decoded.rejects == []
        engine.raw_insert(target, list(CHAT_EVENTS.columns), insert_block=decoded.data, fmt=fmt)
        stored[name] = rows_of(engine, target)
    (decoded,) = python.decode([batch(records)])
    assert decoded.rows is not None and decoded.rejects == []
    table(engine, "parity_python")
    engine.insert("parity_python", decoded.rows, column_names=list(CHAT_EVENTS.columns))
    stored["python"] = rows_of(engine, "parity_python")
    assert fallbacks == []
    assert len(stored["python"]) == len(records) == 14
    for name in renderings:
        for engine_row, python_row in zip(stored[name], stored["python"], strict=True):
            assert dict(zip(CHAT_EVENTS.columns, engine_row)) == dict(zip(CHAT_EVENTS.columns, python_row))


def test_a_set_the_engine_cannot_read_falls_back_and_rejects_only_the_bad_records(engine: Any, registry_url: str) -> None:
    records = every_action()[:3]
    bad = batch(records)
    bad.values[1] = b"\x00\x00\x00\x00\x01\xff\xff\xff"  # framed, body corrupt
    fallbacks: list[Exception] = []
    python = PythonDecoder(ConfluentDecoder(lambda _id: SCHEMA).decode)
    (decoded,) = EngineDecoder(engine, registry_url, "Native", python, lambda _b, e: fallbacks.append(e)).decode([bad])
    assert len(fallbacks) == 1 and decoded.rows is not None and len(decoded.rows) == 2
    assert [r.record.offset for r in decoded.rejects] == [101]
    assert [decoded.record(i).offset for i in range(decoded.size)] == [100, 102]


def test_a_tab_separated_part_is_cut_by_rows_without_decoding_again(engine: Any, registry_url: str) -> None:
    records = every_action()[:5]
    python = PythonDecoder(ConfluentDecoder(lambda _id: SCHEMA).decode)
    (decoded,) = EngineDecoder(engine, registry_url, "TabSeparated", python).decode([batch(records)])
    part = decoded.part([1, 3])
    assert part.data is not None and part.data.count(b"\n") == 2
    assert [part.record(i).offset for i in range(part.size)] == [101, 103]
    (native,) = EngineDecoder(engine, registry_url, "Native", python).decode([batch(records)])
    again = native.part([4])
    assert again.size == 1 and again.record(0).offset == 104 and again.data


@pytest.mark.parametrize("fmt", ["Native", "TabSeparated"])
def test_times_beyond_the_years_1_to_9999_are_rejected_by_both_decoders(engine: Any, registry_url: str, fmt: str) -> None:
    """The engine's text would saturate them (9999-12-31) and Python's datetime overflows: a set
    with one goes to Python, which rejects just that record; the years' own edges still land."""
    records = every_action()[:4]
    records[0]["occurred_at"], records[1]["occurred_at"] = FIRST_MS, LAST_MS
    records[2]["occurred_at"] = LAST_MS + 1
    python = PythonDecoder(ConfluentDecoder(lambda _id: SCHEMA).decode)
    fallbacks: list[Exception] = []
    (edges,) = EngineDecoder(engine, registry_url, fmt, python, lambda _b, e: fallbacks.append(e)).decode([batch(records[:2])])
    assert fallbacks == [] and edges.data is not None and edges.size == 2
    (decoded,) = EngineDecoder(engine, registry_url, fmt, python, lambda _b, e: fallbacks.append(e)).decode([batch(records)])
    assert "outside the years 1-9999" in str(fallbacks[0])
    assert [r.record.offset for r in decoded.rejects] == [102]
    assert decoded.rows is not None and [row[1] for row in decoded.rows[:2]] == [
        datetime(1, 1, 1, tzinfo=timezone.utc), datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc)]
