"""How each topic's records become rows of a table: one mapping per table, two renderings.

A ``Mapping`` holds the table's columns and the same mapping twice: ``to_row`` for records
decoded in Python (fastavro), and ``engine_select`` as ClickHouse expressions over the record's
Avro fields, for records decoded in ClickHouse's engine (``connectors.decoding``). A parity test
runs both over the same records and compares every column. Mappings take the topic's Avro schema
(the contract) as an argument; which topic drains into which table is ``pipelines/sinks.py``'s
business, not theirs.

A mapping also names the row's identity: ``key``, the columns that make two rows the same row
in every store (ClickHouse's sort key, PostgreSQL's primary key), and ``version``, the column
whose highest value wins when copies of one row differ elsewhere. For most tables a row is an
event; for ``ai_requests`` it is a request, which all its events collapse into.

One module per table: ``base`` (``Mapping`` and the expressions the mappings share),
``chat_events``, ``ai_requests``, ``ai_attempts``, and the engagement job's ``engagement_windows``,
``engagement_sessions``, ``late_events`` (ClickHouse only: their rows are derived, deterministic
and collapse by id, so the tables replace by ``inserted_at``), and the ops topics' ``ops_metrics``
``anomalies`` and ``scaling_signals`` (all in both stores).
"""

from __future__ import annotations

from connectors.mappings.ai_attempts import AI_ATTEMPT_COLUMNS, AI_ATTEMPT_KEY, AI_ATTEMPTS, ai_attempt_row
from connectors.mappings.ai_requests import AI_REQUEST_COLUMNS, AI_REQUEST_KEY, AI_REQUESTS, STATUS, ai_request_row
from connectors.mappings.anomalies import ANOMALIES, anomaly_row
from connectors.mappings.base import FIRST_MS, LAST_MS, Mapping, Row, not_null, require, within_years
from connectors.mappings.chat_events import CHAT_EVENT_COLUMNS, CHAT_EVENT_KEY, CHAT_EVENTS, chat_event_row
from connectors.mappings.engagement_sessions import ENGAGEMENT_SESSIONS, engagement_session_row
from connectors.mappings.engagement_windows import ENGAGEMENT_WINDOWS, engagement_window_row
from connectors.mappings.late_events import LATE_EVENTS, late_event_row
from connectors.mappings.ops_metrics import OPS_METRIC_COLUMNS, OPS_METRICS, ops_metric_row
from connectors.mappings.scaling_signals import SCALING_SIGNALS, scaling_signal_row

MAPPINGS = {m.table: m for m in (CHAT_EVENTS, AI_REQUESTS, AI_ATTEMPTS, ENGAGEMENT_WINDOWS, ENGAGEMENT_SESSIONS,
                                 LATE_EVENTS, OPS_METRICS, ANOMALIES, SCALING_SIGNALS)}  # fmt: skip
"""Every mapping by its table: ``pipelines/sinks.py`` names tables, the CLI looks them up here."""

__all__ = [
    "AI_ATTEMPTS",
    "ANOMALIES",
    "AI_ATTEMPT_COLUMNS",
    "AI_ATTEMPT_KEY",
    "AI_REQUESTS",
    "AI_REQUEST_COLUMNS",
    "AI_REQUEST_KEY",
    "CHAT_EVENTS",
    "CHAT_EVENT_COLUMNS",
    "CHAT_EVENT_KEY",
    "ENGAGEMENT_SESSIONS",
    "ENGAGEMENT_WINDOWS",
    "LATE_EVENTS",
    "OPS_METRICS",
    "OPS_METRIC_COLUMNS",
    "SCALING_SIGNALS",
    "FIRST_MS",
    "LAST_MS",
    "MAPPINGS",
    "STATUS",
    "Mapping",
    "Row",
    "ai_attempt_row",
    "anomaly_row",
    "ai_request_row",
    "chat_event_row",
    "engagement_session_row",
    "engagement_window_row",
    "late_event_row",
    "ops_metric_row",
    "scaling_signal_row",
    "not_null",
    "require",
    "within_years",
]
