"""Which sink drains which topic into which table: names only; the CLI builds the sinks.

Tables name their mapping in ``connectors/mappings.py``; the topics are ``pipelines/topics.py``'s.
"""

from __future__ import annotations

from pipelines.topics import CHAT_ACTIONS

SINK_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "clickhouse": ((CHAT_ACTIONS.name, "chat_events"),),
    "postgres": ((CHAT_ACTIONS.name, "chat_events"),),
}
"""Per sink: (topic, table) pairs."""

CONSUMER_GROUPS = {"clickhouse": "chatstream-sink-clickhouse", "postgres": "chatstream-sink-postgres"}
