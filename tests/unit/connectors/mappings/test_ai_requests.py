"""ai.responses.v1 -> ai_requests: one row per request, its latest event's state, no answer text."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import clickhouse_connect
import pytest

from connectors.errors import MappingError
from connectors.mappings import AI_REQUESTS, ai_request_row
from tests.ai_events import AT_MS, chunk, completed, failed, response
from tests.unit.connectors.tables import create_table

REQUEST = "0190d3a0-0000-7000-8000-00000000000a"


def as_python(record: dict[str, Any]) -> dict[str, Any]:
    """A record as fastavro hands it to ``to_row``: timestamps as aware datetimes."""
    times = ("occurred_at", "requested_at")
    return {k: datetime.fromtimestamp(v / 1000, timezone.utc) if k in times and v is not None else v for k, v in record.items()}


def row(record: dict[str, Any], offset: int = 7) -> dict[str, Any]:
    return dict(zip(AI_REQUESTS.columns, ai_request_row(as_python(record), "ai.responses.v1", 1, offset), strict=True))


def test_the_answer_text_stays_out() -> None:
    assert not {"delta", "content", "messages"} & set(AI_REQUESTS.columns)
    stored = row(completed(REQUEST, AT_MS, AT_MS + 9, "secret answer", sequence=4))
    assert "secret answer" not in [v for v in stored.values() if isinstance(v, str)]
    assert stored["content_length"] == len("secret answer")


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (chunk(REQUEST, AT_MS, AT_MS + 1, 0, "Hel"), {"status": "streaming", "chunks": 1, "content_length": None}),
        (chunk(REQUEST, AT_MS, AT_MS + 2, 4, "lo", content="stray"), {"status": "streaming", "chunks": 5, "content_length": None}),
        (completed(REQUEST, AT_MS, AT_MS + 3, "Hello", sequence=5),
         {"status": "completed", "chunks": 5, "content_length": 5, "cost_usd": 0.000123, "total_tokens": 46,
          "finish_reason": "stop", "latency_ms": 1_234, "time_to_first_token_ms": 56}),
        (completed(REQUEST, AT_MS, AT_MS + 3, None, sequence=0), {"status": "completed", "chunks": 0, "content_length": None}),
        (failed(REQUEST, AT_MS, AT_MS + 4, "timeout", sequence=2),
         {"status": "failed", "chunks": 2, "error_code": "timeout", "retryable": True, "attempts": 2,
          "fallback_used": True, "cost_usd": None, "content_length": None}),
        (response(REQUEST, AT_MS, AT_MS + 5, "CANCELLED"), {"status": "cancelled"}),  # a kind added later
    ],
)  # fmt: skip
def test_a_row_holds_the_state_its_event_says(record: dict[str, Any], expected: dict[str, Any]) -> None:
    stored = row(record)
    assert {k: stored[k] for k in expected} == expected
    assert stored["request_id"] == REQUEST and stored["kafka_offset"] == 7
    assert stored["requested_at"] == datetime.fromtimestamp(AT_MS / 1000, timezone.utc)
    assert stored["occurred_at"] > stored["requested_at"]


def test_a_response_without_requested_at_cannot_be_a_row() -> None:
    with pytest.raises(MappingError, match="requested_at is null, and ai_requests needs it"):
        row(completed(REQUEST, None, AT_MS, "x"))


def test_every_event_of_a_request_has_its_key() -> None:
    events = [chunk(REQUEST, AT_MS, AT_MS + i, i, "x") for i in range(3)] + [completed(REQUEST, AT_MS, AT_MS + 9, "xxx")]
    keys = {tuple(row(e)[c] for c in AI_REQUESTS.key) for e in events}
    assert len(keys) == 1


def test_clickhouse_collapses_a_requests_events_into_its_latest_and_counts_a_replayed_completion_once() -> None:
    """The table as migrated, in chDB: chunks then COMPLETED (twice: a replay) of one request, a
    request still streaming, and a FAILED one: one row each, the latest event's, cost once."""
    engine = clickhouse_connect.get_client(dsn="chdb://memory")
    create_table(engine, "ai_requests", "collapse")
    done, streaming, broken = REQUEST, REQUEST[:-1] + "b", REQUEST[:-1] + "c"
    events = [chunk(done, AT_MS, AT_MS + i, i, "x") for i in range(3)]
    events += [chunk(streaming, AT_MS, AT_MS + 1, 0, "y"), completed(done, AT_MS, AT_MS + 5, "xxx", sequence=3, cost_usd=0.25),
               chunk(streaming, AT_MS, AT_MS + 6, 1, "y"), failed(broken, AT_MS + 1, AT_MS + 7, "timeout", cost_usd=0.5)]  # fmt: skip
    replay = completed(done, AT_MS, AT_MS + 5, "xxx", sequence=3, cost_usd=0.25)
    rows = [ai_request_row(as_python(e), "ai.responses.v1", 0, offset) for offset, e in enumerate(events)]
    engine.insert("collapse", rows, column_names=list(AI_REQUESTS.columns))
    engine.insert("collapse", [ai_request_row(as_python(replay), "ai.responses.v1", 0, 99)], column_names=list(AI_REQUESTS.columns))
    found = engine.query("SELECT toString(request_id), status, chunks, cost_usd, kafka_offset FROM collapse FINAL ORDER BY 1").result_rows
    assert found == [(done, "completed", 3, 0.25, 99), (streaming, "streaming", 2, None, 5), (broken, "failed", 0, 0.5, 6)]
    assert engine.query("SELECT sum(cost_usd), count() FROM collapse FINAL").result_rows == [(0.75, 3)]
