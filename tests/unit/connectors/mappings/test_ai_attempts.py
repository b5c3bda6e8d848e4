"""ai.requests.v1 -> ai_attempts: one row per attempt, the deployment chosen and why, no prompt text."""

from __future__ import annotations

from typing import Any

from connectors.mappings import AI_ATTEMPTS, ai_attempt_row
from tests.ai_events import AT_MS, attempt, varied_attempts


def row(record: dict[str, Any]) -> dict[str, Any]:
    return dict(zip(AI_ATTEMPTS.columns, ai_attempt_row(record, "ai.requests.v1", 3, 11), strict=True))


def test_the_prompt_text_stays_out_and_its_messages_are_counted() -> None:
    record = varied_attempts()[0]
    stored = row(record)
    assert "messages" not in AI_ATTEMPTS.columns and stored["prompt_messages"] == len(record["messages"]) == 3
    texts = {m["content"] for m in record["messages"]}
    assert not texts & {v for v in stored.values() if isinstance(v, str)}


def test_an_attempt_row_says_which_deployment_and_why() -> None:
    stored = row(attempt("r-1", AT_MS, AT_MS + 5, attempt=2, deployment="sim-fallback", reason="fallback from sim-primary"))
    assert (stored["request_id"], stored["attempt"], stored["deployment"], stored["reason"]) == (
        "r-1", 2, "sim-fallback", "fallback from sim-primary")  # fmt: skip
    assert (stored["kafka_topic"], stored["kafka_partition"], stored["kafka_offset"]) == ("ai.requests.v1", 3, 11)


def test_an_attempt_without_requested_at_is_still_a_row() -> None:
    stored = row(attempt("r-2", None, AT_MS))
    assert stored["requested_at"] is None and stored["prompt_messages"] == 0
