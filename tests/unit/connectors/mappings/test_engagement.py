"""The engagement job's outputs as ClickHouse rows: windows, sessions, late events."""

from __future__ import annotations

from typing import Any

import pytest

from chatstream.avro.catalog import load_catalog
from connectors.mappings import ENGAGEMENT_SESSIONS, ENGAGEMENT_WINDOWS, LATE_EVENTS, engagement_session_row
from connectors.mappings import engagement_window_row, late_event_row
from tests.samples import sample

CATALOG = load_catalog()


def window(dimension: str) -> dict[str, Any]:
    stored = dict(zip(ENGAGEMENT_WINDOWS.columns, engagement_window_row(
        {**sample(CATALOG["analytics.engagement.v1"].schema), "dimension": dimension, "user_id": "alice"},
        "analytics.engagement.v1", 0, 1)))  # fmt: skip
    return stored


@pytest.mark.parametrize(("dimension", "user"), [("user", "alice"), ("tenant", ""), ("model", "")])
def test_a_window_names_its_user_on_user_rows_only(dimension: str, user: str) -> None:
    assert window(dimension)["user_id"] == user


def test_a_window_row_holds_every_contract_column_and_no_unused_one() -> None:
    stored = window("tenant")
    assert {"latency_hist", "ttft_hist", "engagement_score", "dimension"} <= set(stored)
    assert not {"latency_p50_ms", "latency_p95_ms", "ttft_p50_ms", "trace_id"} & set(stored)


def test_a_session_lists_its_models_sorted_and_a_late_event_keeps_its_source() -> None:
    record = {**sample(CATALOG["analytics.sessions.v1"].schema), "models": ["m-b", "m-a"]}
    stored = dict(zip(ENGAGEMENT_SESSIONS.columns, engagement_session_row(record, "analytics.sessions.v1", 0, 1)))
    assert stored["models"] == ["m-a", "m-b"]
    late = {**sample(CATALOG["analytics.late_events.v1"].schema), "source_topic": "ai.responses.v1"}
    row = dict(zip(LATE_EVENTS.columns, late_event_row(late, "analytics.late_events.v1", 0, 1)))
    assert row["source_topic"] == "ai.responses.v1" and row["event_id"] == late["event_id"]
