"""Which sink drains which topic into which table: names only; the CLI builds the sinks.

Tables name their mapping in ``connectors/mappings/``; the topics are ``pipelines/topics.py``'s.
``ai.responses.v1`` lands as ``ai_requests`` (one row per request, its events collapsed into it)
and ``ai.requests.v1`` as ``ai_attempts`` (one row per attempt); ``ops.metrics.v1`` (every
component's load) as ``ops_metrics`` and ``ops.anomalies.v1`` as ``anomalies`` and ``ops.scaling_signals.v1`` as
``scaling_signals``, in both stores. The engagement job's windows,
sessions and late events land in ClickHouse only.
"""

from __future__ import annotations

from pipelines.topics import (
    AI_REQUESTS,
    AI_RESPONSES,
    ANOMALIES,
    CHAT_ACTIONS,
    ENGAGEMENT,
    LATE_EVENTS,
    METRICS,
    SCALING_SIGNALS,
    SESSIONS,
)

_TABLES = (
    (CHAT_ACTIONS.name, "chat_events"),
    (AI_RESPONSES.name, "ai_requests"),
    (AI_REQUESTS.name, "ai_attempts"),
    (METRICS.name, "ops_metrics"),
    (ANOMALIES.name, "anomalies"),
    (SCALING_SIGNALS.name, "scaling_signals"),
)

# The engagement job's outputs are product analytics only: ClickHouse.
_ENGAGEMENT_TABLES = (
    (ENGAGEMENT.name, "engagement_windows"),
    (SESSIONS.name, "engagement_sessions"),
    (LATE_EVENTS.name, "late_events"),
)

SINK_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "clickhouse": _TABLES + _ENGAGEMENT_TABLES,
    "postgres": _TABLES,
}
"""Per sink: (topic, table) pairs."""

CONSUMER_GROUPS = {"clickhouse": "chatstream-sink-clickhouse", "postgres": "chatstream-sink-postgres"}
