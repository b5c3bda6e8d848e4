"""Open the two stores from the settings: PostgreSQL (psycopg 3) and ClickHouse (clickhouse-connect).

ClickHouse is always a server over HTTP: the local stack's (chDB's engine in a process that owns
the data folder, ``infra/local/clickhouse.py``) or the one ``CHATSTREAM_CLICKHOUSE_DSN`` names.
"""

from __future__ import annotations

import logging
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
    # the driver logs every failed connection attempt at WARNING before raising: the error says it
    for noisy in ("urllib3.connectionpool", "clickhouse_connect.driver._backend.http_sync"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        return clickhouse_connect.get_client(dsn=dsn, **options)
    except Exception as exc:  # noqa: BLE001 - the driver raises many kinds; translate all
        said = "connection refused" if "Connection refused" in str(exc) else " ".join(str(exc).split())[:300]
        hint = " (is the local stack up? `chatstream infra up`)" if settings.is_local("clickhouse") else ""
        raise StoreUnavailableError(f"ClickHouse at {redact_url(dsn)} does not answer: {said}{hint}") from exc
