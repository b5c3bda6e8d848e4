"""The decode seam: ClickHouse's engine (chDB in-memory) and Python decode the same records into
the same rows, column by column, for every mapping; a set the engine cannot read falls back to
Python."""

from __future__ import annotations

import io
import json
import struct
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import clickhouse_connect
import fastavro
import pytest

from chatstream.avro.catalog import load_catalog
from chatstream.avro.serde import ConfluentDecoder
from connectors.clickhouse_sink import column_types
from connectors.decoding import EngineDecoder, PythonDecoder
from connectors.errors import MappingError
from connectors.mappings import (
    AI_ATTEMPTS,
    AI_REQUESTS,
    CHAT_EVENTS,
    ENGAGEMENT_SESSIONS,
    ENGAGEMENT_WINDOWS,
    FIRST_MS,
    LAST_MS,
    LATE_EVENTS,
    OPS_METRICS,
    ANOMALIES,
    SCALING_SIGNALS,
    Mapping,
)
from connectors.sink import Batch, Route
from tests.ai_events import AT_MS, TEXTS, completed, varied_attempts, varied_responses
from tests.samples import sample
from tests.unit.connectors.tables import create_table

TOPIC = "chat.actions.v1"
CATALOG = load_catalog()
SCHEMA = CATALOG[TOPIC].schema
ROUTES = {m.table: Route(topic, m.table, m, CATALOG[topic].schema)
          for topic, m in (("chat.actions.v1", CHAT_EVENTS), ("ai.responses.v1", AI_REQUESTS), ("ai.requests.v1", AI_ATTEMPTS),
                           ("analytics.engagement.v1", ENGAGEMENT_WINDOWS), ("analytics.sessions.v1", ENGAGEMENT_SESSIONS),
                           ("analytics.late_events.v1", LATE_EVENTS), ("ops.metrics.v1", OPS_METRICS),
                           ("ops.anomalies.v1", ANOMALIES), ("ops.scaling_signals.v1", SCALING_SIGNALS))}  # fmt: skip
ROUTE = ROUTES["chat_events"]
SCHEMA_IDS = {"chat.actions.v1": 1, "ai.requests.v1": 2, "ai.responses.v1": 3, "analytics.engagement.v1": 4,
              "analytics.sessions.v1": 5, "analytics.late_events.v1": 6, "ops.metrics.v1": 7, "ops.anomalies.v1": 8,
              "ops.scaling_signals.v1": 9}  # fmt: skip
SCHEMAS = {schema_id: CATALOG[topic].schema for topic, schema_id in SCHEMA_IDS.items()}
PARSED = {topic: fastavro.parse_schema(CATALOG[topic].schema) for topic in SCHEMA_IDS}


@pytest.fixture(scope="module")
def registry_url() -> Iterator[str]:
    """A schema registry's one call the engine makes (``GET /schemas/ids/<id>``), on loopback."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            schema_id = self.path.rstrip("/").rsplit("/", 1)[-1]
            schema = SCHEMAS.get(int(schema_id)) if schema_id.isdigit() else None
            body = json.dumps({"schema": json.dumps(schema)}).encode()
            self.send_response(200 if schema is not None and "/schemas/ids/" in self.path else 404)
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


def framed(record: dict[str, Any], topic: str = TOPIC) -> bytes:
    out = io.BytesIO()
    out.write(struct.pack(">bI", 0, SCHEMA_IDS[topic]))
    fastavro.schemaless_writer(out, PARSED[topic], record)
    return out.getvalue()


def python_decoder() -> PythonDecoder:
    return PythonDecoder(ConfluentDecoder(SCHEMAS.__getitem__).decode)


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


def batch(records: list[dict[str, Any]], partition: int = 2, first: int = 100, route: Route = ROUTE) -> Batch:
    out = Batch(route, partition, first_offset=first, last_offset=first + len(records) - 1)
    for offset, record in enumerate(records, start=first):
        out.offsets.append(offset)
        out.keys.append(b"k")
        out.values.append(framed(record, route.topic))
    return out


def rows_of(engine: Any, name: str) -> list[tuple[Any, ...]]:
    order = "kafka_offset" if "kafka_offset" in engine.query(f"SELECT * FROM {name} LIMIT 0").column_names else "event_id"
    return list(engine.query(f"SELECT * EXCEPT inserted_at FROM {name} ORDER BY {order}").result_rows)


def engagement_windows() -> list[dict[str, Any]]:
    """A tenant, a model and a user row (user_id kept on the user row only; hists of 27 buckets)."""
    records = []
    for i, dimension in enumerate(("tenant", "model", "user")):
        record = sample(CATALOG["analytics.engagement.v1"].schema)
        record.update(dimension=dimension, model="m-1" if dimension == "model" else None, user_id=f"u-{i}",
                      window_start=AT_MS + i * 60_000, window_end=AT_MS + (i + 1) * 60_000, occurred_at=AT_MS,
                      latency_hist=[i] * 27, ttft_hist=list(range(27)), cost_usd=0.125 * i,
                      engagement_score=None if dimension != "user" else 37.5)  # fmt: skip
        records.append(record)
    return records


def engagement_sessions() -> list[dict[str, Any]]:
    records = []
    for i, models in enumerate((["m-b", "m-a"], [])):
        record = sample(CATALOG["analytics.sessions.v1"].schema)
        record.update(session_start=AT_MS + i, session_end=AT_MS + 90_000, models=models, duration_ms=90_000 - i)
        records.append(record)
    return records


def late_events() -> list[dict[str, Any]]:
    record = sample(CATALOG["analytics.late_events.v1"].schema)
    record.update(occurred_at=AT_MS, watermark_at=AT_MS + 61_000, lateness_ms=61_000, detected_at=AT_MS + 90_000)
    return [record]


def ops_metrics() -> list[dict[str, Any]]:
    """Labels with slashes, quotes, a backslash, non-ASCII and none at all; a unit and none."""
    labels = ({"route": "/v1/events", "b": 'say "hi"', "a": "é\\/x"}, {}, {"topic": "chat.actions.v1"})
    now_ms = int(datetime.now(timezone.utc).timestamp() * 1000)  # within the table's 30-day TTL
    records = []
    for i, found in enumerate(labels):
        record = sample(CATALOG["ops.metrics.v1"].schema)
        record.update(occurred_at=now_ms + i, labels=found, unit=None if i == 1 else "1/s", value=1.5 * i)
        records.append(record)
    return records


def anomalies() -> list[dict[str, Any]]:
    """An opening (bounds, expectation) and a resolution (no bounds); recent: the table's TTL."""
    now_ms = int(datetime.now(timezone.utc).timestamp() * 1000)
    opened = {**sample(CATALOG["ops.anomalies.v1"].schema), "occurred_at": now_ms, "window_start": now_ms - 60_000,
              "window_end": now_ms, "severity": "CRITICAL", "status": "OPEN", "observed": 0.0, "expected": 100.5}  # fmt: skip
    resolved = {**opened, "event_id": str(uuid.uuid4()), "occurred_at": now_ms + 60_000, "severity": "INFO", "status": "RESOLVED",
                "expected": None, "lower_bound": None, "upper_bound": None, "description": None}  # fmt: skip
    return [opened, resolved]


def scaling_signals() -> list[dict[str, Any]]:
    """A forecast-driven signal with its interval and replicas seen, and a first one with neither."""
    now_ms = int(datetime.now(timezone.utc).timestamp() * 1000)
    forecast = {**sample(CATALOG["ops.scaling_signals.v1"].schema), "occurred_at": now_ms, "observed": 1234.5, "forecast": 1500.25,
                "forecast_lower": 1100.0, "forecast_upper": 1900.75, "horizon_s": 600, "current_replicas": 2,
                "desired_replicas": 3, "reason": "forecast: upper bound 1901 over 10 min at confidence 0.92"}  # fmt: skip
    first = {**forecast, "event_id": str(uuid.uuid4()), "occurred_at": now_ms + 60_000, "forecast_lower": None,
             "forecast_upper": None, "current_replicas": None, "reason": "reactive: observed 0 at confidence 0.00"}  # fmt: skip
    return [forecast, first]


PARITY: dict[str, tuple[Callable[[], list[dict[str, Any]]], int]] = {
    "chat_events": (every_action, 14),  # one record per action
    "ai_requests": (varied_responses, 7),  # CHUNKs, COMPLETEDs with and without usage, FAILEDs
    "ai_attempts": (varied_attempts, 3),  # a full attempt, a bare one, a fallback
    "engagement_windows": (engagement_windows, 3),
    "engagement_sessions": (engagement_sessions, 2),
    "late_events": (late_events, 1),
    "ops_metrics": (ops_metrics, 3),
    "anomalies": (anomalies, 2),
    "scaling_signals": (scaling_signals, 2),
}


@pytest.mark.parametrize("table_name", list(PARITY))
def test_engine_and_python_decoders_agree_on_every_column(engine: Any, registry_url: str, table_name: str) -> None:
    route = ROUTES[table_name]
    mapping: Mapping = route.mapping
    build, expected = PARITY[table_name]
    records = build()
    python = python_decoder()
    fallbacks: list[Exception] = []
    stored = {}
    renderings = {"Native": None, "Native in the table's types": column_types, "TabSeparated": None}
    for name, types in renderings.items():
        fmt, target = name.split()[0], f"parity_{table_name}_{len(stored)}"
        create_table(engine, table_name, target)
        decoder = EngineDecoder(engine, registry_url, fmt, python, lambda _b, e: fallbacks.append(e),
                                column_types=types and (lambda t, target=target: column_types(engine, target)))  # fmt: skip
        (decoded,) = decoder.decode([batch(records, route=route)])
        assert decoded.data is not None and decoded.size == len(records) and decoded.rejects == []
        engine.raw_insert(target, list(mapping.columns), insert_block=decoded.data, fmt=fmt)
        stored[name] = rows_of(engine, target)
    (decoded,) = python.decode([batch(records, route=route)])
    assert decoded.rows is not None and decoded.rejects == []
    create_table(engine, table_name, f"parity_{table_name}_python")
    engine.insert(f"parity_{table_name}_python", decoded.rows, column_names=list(mapping.columns))
    stored["python"] = rows_of(engine, f"parity_{table_name}_python")
    assert fallbacks == []
    assert len(stored["python"]) == len(records) == expected
    for name in renderings:
        for engine_row, python_row in zip(stored[name], stored["python"], strict=True):
            assert dict(zip(mapping.columns, engine_row)) == dict(zip(mapping.columns, python_row))


def test_a_set_the_engine_cannot_read_falls_back_and_rejects_only_the_bad_records(engine: Any, registry_url: str) -> None:
    records = every_action()[:3]
    bad = batch(records)
    bad.values[1] = b"\x00\x00\x00\x00\x01\xff\xff\xff"  # framed, body corrupt
    fallbacks: list[Exception] = []
    python = python_decoder()
    (decoded,) = EngineDecoder(engine, registry_url, "Native", python, lambda _b, e: fallbacks.append(e)).decode([bad])
    assert len(fallbacks) == 1 and decoded.rows is not None and len(decoded.rows) == 2
    assert [r.record.offset for r in decoded.rejects] == [101]
    assert [decoded.record(i).offset for i in range(decoded.size)] == [100, 102]


def test_a_tab_separated_part_is_cut_by_rows_without_decoding_again(engine: Any, registry_url: str) -> None:
    records = every_action()[:5]
    python = python_decoder()
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
    python = python_decoder()
    fallbacks: list[Exception] = []
    (edges,) = EngineDecoder(engine, registry_url, fmt, python, lambda _b, e: fallbacks.append(e)).decode([batch(records[:2])])
    assert fallbacks == [] and edges.data is not None and edges.size == 2
    (decoded,) = EngineDecoder(engine, registry_url, fmt, python, lambda _b, e: fallbacks.append(e)).decode([batch(records)])
    assert "outside the years 1-9999" in str(fallbacks[0])
    assert [r.record.offset for r in decoded.rejects] == [102]
    assert decoded.rows is not None and [row[1] for row in decoded.rows[:2]] == [
        datetime(1, 1, 1, tzinfo=timezone.utc), datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc)]


@pytest.mark.parametrize("fmt", ["Native", "TabSeparated"])
def test_a_response_without_requested_at_is_rejected_by_both_decoders(engine: Any, registry_url: str, fmt: str) -> None:
    """ai_requests keys a request's row by it (falling back to occurred_at would give each event a
    row): the engine's query fails on a null one and Python rejects that record alone, saying why."""
    records = varied_responses()[:3]
    records[1]["requested_at"] = None
    fallbacks: list[Exception] = []
    decoder = EngineDecoder(engine, registry_url, fmt, python_decoder(), lambda _b, e: fallbacks.append(e))
    (decoded,) = decoder.decode([batch(records, route=ROUTES["ai_requests"])])
    assert len(fallbacks) == 1 and "ai_requests needs requested_at" in str(fallbacks[0])
    assert [r.record.offset for r in decoded.rejects] == [101]
    error = decoded.rejects[0].error
    assert isinstance(error, MappingError) and str(error) == "cannot map to ai_requests: requested_at is null, and ai_requests needs it"
    assert decoded.rows is not None and [decoded.record(i).offset for i in range(decoded.size)] == [100, 102]


@pytest.mark.parametrize(("table_name", "field"), [("ai_requests", "requested_at"), ("ai_requests", "occurred_at"),
                                                   ("ai_attempts", "deadline_at"), ("ai_attempts", "requested_at")])  # fmt: skip
def test_ai_times_beyond_the_years_1_to_9999_are_rejected_by_both_decoders(engine: Any, registry_url: str,
                                                                           table_name: str, field: str) -> None:  # fmt: skip
    route = ROUTES[table_name]
    records = (varied_responses() if table_name == "ai_requests" else varied_attempts())[:3]
    records[0][field], records[1][field] = FIRST_MS, LAST_MS + 1  # the first year lands, beyond the last does not
    fallbacks: list[Exception] = []
    decoder = EngineDecoder(engine, registry_url, "Native", python_decoder(), lambda _b, e: fallbacks.append(e))
    (decoded,) = decoder.decode([batch(records, route=route)])
    assert f"{field} outside the years 1-9999" in str(fallbacks[0])
    assert [r.record.offset for r in decoded.rejects] == [101]
    assert decoded.rows is not None and [decoded.record(i).offset for i in range(decoded.size)] == [100, 102]


def test_a_completed_answer_counts_characters_not_bytes_in_both_decoders(engine: Any, registry_url: str) -> None:
    content = TEXTS[5] * 3  # "unicode é ✓ 😀": 13 characters, 19 bytes in UTF-8
    records = [completed("0190d3a0-0000-7000-8000-000000000001", AT_MS, AT_MS, content)]
    route = ROUTES["ai_requests"]
    at = AI_REQUESTS.columns.index("content_length")
    (python,) = python_decoder().decode([batch(records, route=route)])
    create_table(engine, "ai_requests", "lengths")
    (native,) = EngineDecoder(engine, registry_url, "Native", python_decoder()).decode([batch(records, route=route)])
    assert native.data is not None
    engine.raw_insert("lengths", list(AI_REQUESTS.columns), insert_block=native.data, fmt="Native")
    assert python.rows is not None and python.rows[0][at] == len(content) == 39
    assert engine.query("SELECT content_length FROM lengths").result_rows == [(39,)]


def test_a_large_set_with_gaps_between_offsets_is_read_by_the_engine(engine: Any, registry_url: str) -> None:
    """Transactional producers leave a marker after each transaction, so a gateway's records come
    with gaps: each row's coordinates are spelled out, past ClickHouse's default query size."""
    records = (every_action() * 3_000)[:40_000]
    gapped = batch(records, first=4_000_000_000)
    gapped.offsets = [4_000_000_000 + 2 * i for i in range(len(records))]  # a marker after each record
    gapped.last_offset = gapped.offsets[-1]
    fallbacks: list[Exception] = []
    (decoded,) = EngineDecoder(engine, registry_url, "Native", python_decoder(),
                               lambda _b, e: fallbacks.append(e)).decode([gapped])  # fmt: skip
    assert fallbacks == [] and decoded.data is not None
    create_table(engine, "chat_events", "gapped_like")
    engine.command("CREATE TABLE gapped_chat_events AS gapped_like ENGINE = Memory")  # every row kept
    engine.raw_insert("gapped_chat_events", list(ROUTE.columns), insert_block=decoded.data, fmt="Native")
    ((rows, first, last, partitions),) = engine.query(
        "SELECT count(), min(kafka_offset), max(kafka_offset), groupUniqArray(kafka_partition) FROM gapped_chat_events"
    ).result_rows
    assert (rows, first, last, partitions) == (40_000, 4_000_000_000, gapped.offsets[-1], [2])
