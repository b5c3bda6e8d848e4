"""The published request schema is as strict as the gateway: what the gateway refuses for its
shape, the schema refuses too, and what it accepts, the schema accepts."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from gateway.app import create_app
from tests.unit.gateway.fakes import FakeProducer, make_gateway
from chatstream.ids import uuid7
from tests.unit.gateway.test_events import MESSAGE, NOW_MS, normalize

SPEC = create_app(make_gateway(FakeProducer(), max_events=3)).openapi()
EVENTS = SPEC["paths"]["/v1/events"]["post"]
BODY = Draft202012Validator(EVENTS["requestBody"]["content"]["application/json"]["schema"])

GOOD = [
    MESSAGE,
    {**MESSAGE, "event_id": str(uuid7(NOW_MS)), "trace_id": "a" * 32, "client": None},
    {"type": "feedback_given", "feedback_given": {"message_id": "m", "rating": "UP"}},
    {"type": "session_started", "session_id": "s1"},
    {"type": "session_ended", "session_ended": {"duration_ms": 2**63 - 1}},
    {"type": "conversation_created"},
]
BAD = [
    {"type": "message_liked"},
    {**MESSAGE, "colour": "red"},
    {**MESSAGE, "message_sent": {"message_id": "m", "text_length": 1, "mood": "x"}},
    {**MESSAGE, "message_sent": {"message_id": "m"}},
    {**MESSAGE, "message_sent": {"message_id": "m", "text_length": 2**31}},
    {**MESSAGE, "message_sent": {"message_id": "m", "text_length": -1}},
    {**MESSAGE, "message_sent": {"message_id": "m", "text_length": 5.5}},
    {**MESSAGE, "message_sent": {"message_id": "m", "text_length": True}},
    {**MESSAGE, "feedback_given": {"message_id": "m", "rating": "UP"}},
    {"type": "feedback_given", "feedback_given": {"message_id": "m", "rating": "MEH"}},
    {**MESSAGE, "trace_id": "0" * 32},
    {**MESSAGE, "trace_id": "A" * 32},
    {**MESSAGE, "conversation_id": 7},
    {**MESSAGE, "conversation_id": "nul\x00here"},
]


@pytest.mark.parametrize("event", GOOD)
def test_what_the_gateway_accepts_the_schema_accepts(event: dict[str, Any]) -> None:
    assert not normalize(event).errors
    assert BODY.is_valid(event) and BODY.is_valid({"events": [event]})


@pytest.mark.parametrize("event", BAD)
def test_what_the_gateway_refuses_the_schema_refuses(event: dict[str, Any]) -> None:
    assert normalize(event).errors
    assert not BODY.is_valid(event)
    assert not BODY.is_valid({"events": [event]})


def test_batches_are_bounded_and_not_empty() -> None:
    assert not BODY.is_valid({"events": []})
    assert not BODY.is_valid({"events": [MESSAGE] * 4})
    assert not BODY.is_valid({"events": [MESSAGE], "extra": 1})


def test_every_status_is_documented_with_its_error_body() -> None:
    assert set(EVENTS["responses"]) == {"202", "400", "401", "403", "408", "413", "422", "429", "431", "503", "504"}
    error = EVENTS["responses"]["503"]["content"]["application/json"]["schema"]
    assert error["required"] == ["error"]
    assert "text/plain; version=0.0.4" in SPEC["paths"]["/metrics"]["get"]["responses"]["200"]["content"]


def test_the_chat_api_documents_every_status_in_openais_error_shape() -> None:
    from tests.unit.gateway.fakes import FakeDirectProducer, FakeReplyReader, make_chat

    spec = create_app(make_gateway(FakeProducer(), chat=make_chat(FakeDirectProducer(FakeReplyReader(partition=0))))).openapi()
    chat = spec["paths"]["/v1/chat/completions"]["post"]["responses"]
    assert set(chat) == {"200", "400", "401", "404", "408", "413", "429", "431", "502", "503", "504"}
    error = chat["404"]["content"]["application/json"]["schema"]["properties"]["error"]
    assert error["required"] == ["message", "type", "param", "code"]
    assert "text/event-stream" in chat["200"]["content"]
    assert "401" in spec["paths"]["/v1/models"]["get"]["responses"]
