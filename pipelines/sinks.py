"""Which sink drains which topic into which table (the same generic sinks for every topic)."""

from __future__ import annotations

from connectors.rows import CHAT_EVENT_COLUMNS, chat_event_row, chat_event_select
from connectors.sink import Route

CLICKHOUSE_ROUTES = (
    Route("chat.actions.v1", "chat_events", CHAT_EVENT_COLUMNS, chat_event_row, native_select=chat_event_select),
)
POSTGRES_ROUTES = (
    Route("chat.actions.v1", "chat_events", CHAT_EVENT_COLUMNS, chat_event_row, native_select=chat_event_select),
)

CONSUMER_GROUPS = {"clickhouse": "chatstream-sink-clickhouse", "postgres": "chatstream-sink-postgres"}
