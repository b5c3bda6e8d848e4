"""Which sink drains which topic into which table (the same generic sinks for every topic)."""

from __future__ import annotations

from connectors.rows import CHAT_EVENT_COLUMNS, chat_event_row
from connectors.sink import Route

CLICKHOUSE_ROUTES = (Route("chat.actions.v1", "chat_events", CHAT_EVENT_COLUMNS, chat_event_row),)
POSTGRES_ROUTES = (Route("chat.actions.v1", "chat_events", CHAT_EVENT_COLUMNS, chat_event_row),)

CONSUMER_GROUPS = {"clickhouse": "chatstream-sink-clickhouse", "postgres": "chatstream-sink-postgres"}
