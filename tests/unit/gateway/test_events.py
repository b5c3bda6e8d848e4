from __future__ import annotations

import io
import struct
import uuid
from typing import Any

import fastavro
import pytest

from chatstream.ids import uuid7
from gateway.auth import Identity
from tests.unit.gateway.fakes import shape

SHAPE = shape(schema_id=42)
ME = Identity("acme", "alice")
NOW_MS = 1_790_000_000_000


def normalize(*events: Any) -> Any:
    return SHAPE.normalize(list(events), ME, now_ms=NOW_MS, trace_id="t" * 32, new_id=lambda ms: uuid7(ms))


def decode(value: bytes) -> dict[str, Any]:
    assert value[0] == 0 and struct.unpack(">I", value[1:5])[0] == 42
    return fastavro.schemaless_reader(io.BytesIO(value[5:]), SHAPE.encoder.parsed, None)  # type: ignore[no-any-return]


MESSAGE = {"type": "message_sent", "conversation_id": "c1", "message_sent": {"message_id": "m1", "text_length": 3}}


def test_a_valid_event_is_filled_in_and_encoded_in_confluent_framing() -> None:
    result = normalize(MESSAGE)
    assert not result.errors and not result.forbidden
    (key, value), = result.encoded
    assert key == b"c1"
    record = decode(value)
    assert record["tenant_id"] == "acme" and record["user_id"] == "alice"
    assert record["action"] == "MESSAGE_SENT" and record["message_sent"]["message_id"] == "m1"
    assert record["trace_id"] == "t" * 32
    assert str(record["event_id"]) == result.event_ids[0]
    assert uuid.UUID(result.event_ids[0]).version == 7
    assert record["occurred_at"].timestamp() * 1000 == NOW_MS


def test_client_event_id_and_iso_time_are_kept() -> None:
    event_id = str(uuid.uuid4())
    result = normalize({**MESSAGE, "event_id": event_id, "occurred_at": "2026-09-20T10:00:00+00:00"})
    record = decode(result.encoded[0][1])
    assert str(record["event_id"]) == event_id
    assert record["occurred_at"].isoformat() == "2026-09-20T10:00:00+00:00"


def test_a_uuid7_event_id_gives_the_time_when_occurred_at_is_missing() -> None:
    event_id = uuid7(NOW_MS - 5000)
    record = decode(normalize({**MESSAGE, "event_id": event_id}).encoded[0][1])
    assert record["occurred_at"].timestamp() * 1000 == NOW_MS - 5000


def test_session_events_are_keyed_by_session() -> None:
    result = normalize({"type": "session_started", "session_id": "s9", "session_started": {}})
    assert result.encoded[0][0] == b"s9"


def fields(result: Any) -> list[tuple[int, str]]:
    return [(e.index, e.field) for e in result.errors]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ("not an object", [(0, "")]),
        ({"type": "message_liked"}, [(0, "type")]),
        ({"conversation_id": "c"}, [(0, "type")]),
        ({**MESSAGE, "colour": "red"}, [(0, "colour")]),
        ({**MESSAGE, "message_sent": {"message_id": "m", "text_length": 1, "mood": "x"}}, [(0, "message_sent.mood")]),
        ({**MESSAGE, "message_sent": {"message_id": "m", "text_length": "long"}}, [(0, "message_sent.text_length")]),
        ({**MESSAGE, "message_sent": {"message_id": "m"}}, [(0, "message_sent.text_length")]),
        ({**MESSAGE, "feedback_given": {"message_id": "m", "rating": "UP"}}, [(0, "feedback_given")]),
        ({"type": "feedback_given", "feedback_given": {"message_id": "m", "rating": "MEH"}}, [(0, "feedback_given.rating")]),
        ({**MESSAGE, "event_id": "nope"}, [(0, "event_id")]),
        ({**MESSAGE, "event_id": str(uuid.uuid4())}, [(0, "occurred_at")]),
        ({**MESSAGE, "occurred_at": "yesterday"}, [(0, "occurred_at")]),
        ({**MESSAGE, "occurred_at": "2026-09-20T10:00:00"}, [(0, "occurred_at")]),
        ({**MESSAGE, "occurred_at": NOW_MS + 2 * 86_400_000}, [(0, "occurred_at")]),
        ({**MESSAGE, "conversation_id": 7}, [(0, "conversation_id")]),
    ],
)
def test_each_bad_event_is_named_by_field(event: Any, expected: list[tuple[int, str]]) -> None:
    result = normalize(event)
    assert fields(result) == expected
    assert result.encoded == [] or len(result.errors) == 0


def test_every_bad_event_of_a_batch_is_listed_by_index() -> None:
    result = normalize(MESSAGE, {"type": "nope"}, MESSAGE, {**MESSAGE, "x": 1})
    assert fields(result) == [(1, "type"), (3, "x")]


def test_enum_errors_name_the_symbols() -> None:
    result = normalize({"type": "feedback_given", "feedback_given": {"message_id": "m", "rating": "MEH"}})
    assert "UP, DOWN" in result.errors[0].message


@pytest.mark.parametrize("claim", ["tenant_id", "user_id"])
def test_another_tenant_or_user_is_forbidden(claim: str) -> None:
    result = normalize({**MESSAGE, claim: "someone-else"})
    assert [(e.index, e.field) for e in result.forbidden] == [(0, claim)]


def test_the_tokens_own_tenant_may_be_stated() -> None:
    assert not normalize({**MESSAGE, "tenant_id": "acme", "user_id": "alice"}).forbidden


def errors_of(*events: Any) -> dict[str, str]:
    result = normalize(*events)
    assert not result.encoded
    return {e.field: e.message for e in result.errors}


@pytest.mark.parametrize(
    ("detail", "field", "message"),
    [
        ({"text_length": 2**31}, "message_sent.text_length", "between 0 and 2147483647"),  # breaks both stores
        ({"text_length": -1}, "message_sent.text_length", "between 0 and"),  # a length is not negative
        ({"text_length": 5.5}, "message_sent.text_length", "must be an integer"),  # was stored as 5
        ({"text_length": 5.0}, "message_sent.text_length", "must be an integer"),
        ({"text_length": True}, "message_sent.text_length", "must be an integer"),  # was stored as 1
        ({"token_count": "7"}, "message_sent.token_count", "must be an integer"),
    ],
)
def test_integers_hold_to_the_contract(detail: dict[str, Any], field: str, message: str) -> None:
    event = {**MESSAGE, "message_sent": {"message_id": "m1", "text_length": 3, **detail}}
    assert message in errors_of(event)[field]


def test_a_long_may_reach_its_own_range_but_not_beyond() -> None:
    ended = {"type": "session_ended", "session_id": "s1", "session_ended": {"duration_ms": 2**63 - 1}}
    assert not normalize(ended).errors
    too_long = {**ended, "session_ended": {"duration_ms": 2**63}}
    assert "between 0 and 9223372036854775807" in errors_of(too_long)["session_ended.duration_ms"]


@pytest.mark.parametrize("trace", ["T" * 32, "abc", "0" * 32, "g" * 32, 7])
def test_a_trace_id_is_a_w3c_trace_id(trace: Any) -> None:
    assert "W3C trace id" in errors_of({**MESSAGE, "trace_id": trace})["trace_id"]
    assert not normalize({**MESSAGE, "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}).errors


def test_occurred_at_stays_within_the_window_the_stores_keep() -> None:
    day = 24 * 3600 * 1000
    assert not normalize({**MESSAGE, "occurred_at": NOW_MS - 30 * day}).errors
    assert "more than 30 days in the past" in errors_of({**MESSAGE, "occurred_at": NOW_MS - 30 * day - 1})["occurred_at"]
    assert "more than 30 days" in errors_of({**MESSAGE, "occurred_at": "0001-01-01T00:00:00+00:00"})["occurred_at"]


def test_nul_characters_in_text_are_refused_where_they_are() -> None:
    event = {**MESSAGE, "conversation_id": "a\x00b", "message_sent": {"message_id": "m1", "text_length": 3, "content": "x\x00"}}
    assert set(errors_of(event)) == {"conversation_id", "message_sent.content"}
    # the app skips the scan when the body holds no \u0000 escape
    assert not SHAPE.normalize([event], ME, now_ms=NOW_MS, trace_id="t" * 32, check_nul=False).errors
