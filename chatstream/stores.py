"""Open the two stores from the settings: PostgreSQL (psycopg 3) and ClickHouse (clickhouse-connect).

ClickHouse is chDB in-process for ``chdb://`` DSNs and a server over HTTP otherwise; the same
client API serves both. chDB locks its folder, so one process at a time may open it.
"""

from __future__ import annotations

from typing import Any

import psycopg

from chatstream.errors import ChatstreamError
from chatstream.settings import Settings, redact_url


class StoreUnavailableError(ChatstreamError):
    """A store could not be opened."""


def connect_postgres(settings: Settings, *, autocommit: bool = False) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(settings.postgres_url(), autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise StoreUnavailableError(
            f"PostgreSQL at {settings.redacted_postgres_url()} not reachable: {' '.join(str(exc).split())}"
        ) from exc


def clickhouse_client(settings: Settings, **options: Any) -> Any:
    """A clickhouse-connect client of the configured server; ``options`` go to ``get_client``
    (timeouts, session handling, default query settings)."""
    import clickhouse_connect

    dsn = settings.clickhouse_url
    try:
        return clickhouse_connect.get_client(dsn=dsn, **options)
    except Exception as exc:  # noqa: BLE001 - driver and chDB raise many kinds; translate all
        raise StoreUnavailableError(f"ClickHouse at {redact_url(dsn)} cannot be opened: {exc}") from exc
