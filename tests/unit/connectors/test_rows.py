from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from connectors.rows import CHAT_EVENT_COLUMNS, chat_event_row
from connectors.sink import SourceRecord


def test_chat_action_becomes_a_wide_row_with_details_as_json() -> None:
    event_id = uuid.uuid4()
    at = datetime(2026, 11, 23, tzinfo=UTC)
    value = {
        "event_id": event_id, "occurred_at": at, "tenant_id": "acme", "user_id": "alice",
        "conversation_id": "c1", "session_id": None, "trace_id": "t", "client": "web",
        "action": "FEEDBACK_GIVEN",
        "feedback_given": {"message_id": "m1", "rating": "DOWN", "comment": "meh"},
    }  # fmt: skip
    row = dict(zip(CHAT_EVENT_COLUMNS, chat_event_row(SourceRecord("chat.actions.v1", 3, 99, value)), strict=True))
    assert row["event_id"] == event_id and row["occurred_at"] == at
    assert row["action"] == "FEEDBACK_GIVEN" and row["rating"] == "DOWN" and row["message_id"] == "m1"
    assert json.loads(row["details"]) == {"message_id": "m1", "rating": "DOWN", "comment": "meh"}
    assert (row["kafka_topic"], row["kafka_partition"], row["kafka_offset"]) == ("chat.actions.v1", 3, 99)


def test_model_switch_fills_the_model_column() -> None:
    value = {"event_id": uuid.uuid4(), "occurred_at": datetime.now(UTC), "tenant_id": "a", "user_id": "u",
             "trace_id": "t", "action": "MODEL_SWITCHED", "model_switched": {"to_model": "gpt-4o"}}  # fmt: skip
    row = dict(zip(CHAT_EVENT_COLUMNS, chat_event_row(SourceRecord("t", 0, 0, value)), strict=True))
    assert row["model"] == "gpt-4o" and row["text_length"] is None
