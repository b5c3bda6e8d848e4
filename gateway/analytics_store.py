"""Analytics queries off the event loop: a bounded pool of threads, one ClickHouse client each.

clickhouse-connect is synchronous, so each query runs in one of ``max_clients`` threads of this
worker process; a thread opens its client on first use (a gateway starts, and serves its other
routes, while ClickHouse is down) and drops it after a connection failure, so the next query
connects again. Every query carries ClickHouse's ``max_execution_time`` and the HTTP read timeout
a little beyond it. Failures become gateway errors here:

    StoreUnavailableError, OperationalError, timeouts  -> AnalyticsUnavailableError (503)
    any other ClickHouse error                        -> GatewayError (500), logged with the SQL
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chatstream.stores import StoreUnavailableError
from gateway.analytics_sql import Statement
from gateway.errors import AnalyticsUnavailableError, GatewayError

log = logging.getLogger(__name__)

TIMEOUT_CODE = "Code: 159."  # ClickHouse's TIMEOUT_EXCEEDED


class AnalyticsStore:
    """Runs statements on ClickHouse; ``connect(timeout_s)`` opens one client (it may raise
    ``StoreUnavailableError``)."""

    def __init__(self, connect: Callable[[float], Any], *, max_clients: int, timeout_s: float) -> None:
        self._connect = connect
        self.timeout_s = timeout_s
        self._pool = ThreadPoolExecutor(max_workers=max_clients, thread_name_prefix="analytics")
        self._local = threading.local()

    async def rows(self, statement: Statement) -> list[tuple[Any, ...]]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._run, statement)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            try:
                client = self._connect(self.timeout_s)
            except StoreUnavailableError as exc:
                raise AnalyticsUnavailableError(str(exc), retry_after_s=5) from exc
            self._local.client = client
        return client

    def _run(self, statement: Statement) -> list[tuple[Any, ...]]:
        from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

        client = self._client()
        try:
            result = client.query(statement.sql, parameters=statement.parameters,
                                  settings={"max_execution_time": self.timeout_s, "readonly": 2})  # fmt: skip
        except OperationalError as exc:
            self._local.client = None  # reconnect next time
            if "timed out" in str(exc).lower():
                raise AnalyticsUnavailableError(f"ClickHouse did not answer within {self.timeout_s:g} s",
                                                retry_after_s=5) from exc  # fmt: skip
            raise AnalyticsUnavailableError(f"ClickHouse is not reachable: {_first_line(exc)}", retry_after_s=5) from exc
        except DatabaseError as exc:
            if TIMEOUT_CODE in str(exc):
                raise AnalyticsUnavailableError(
                    f"the query took longer than the {self.timeout_s:g} s limit (CHATSTREAM_ANALYTICS_TIMEOUT_S); "
                    "narrow the range or the tenant", retry_after_s=5) from exc  # fmt: skip
            log.error("analytics query failed: %s\n%s", _first_line(exc), statement.sql)
            raise GatewayError(f"the analytics query failed: {_first_line(exc)}") from exc
        return [tuple(row) for row in result.result_rows]


def _first_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:500]
