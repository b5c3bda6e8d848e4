"""The analytics store: queries in its threads with the timeout, ClickHouse's failures translated
(503 unreachable or too slow, 500 a bad query), a client dropped after a connection failure."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from chatstream.stores import StoreUnavailableError
from gateway.analytics_sql import Statement
from gateway.analytics_store import AnalyticsStore
from gateway.errors import AnalyticsUnavailableError, GatewayError

STATEMENT = Statement("SELECT {x:Int64}", {"x": 1})


class Result:
    def __init__(self, rows: list[list[Any]]) -> None:
        self.result_rows = rows


class FakeClient:
    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.calls: list[tuple[str, dict[str, Any], dict[str, Any], str]] = []

    def query(self, sql: str, *, parameters: dict[str, Any], settings: dict[str, Any]) -> Result:
        self.calls.append((sql, parameters, settings, threading.current_thread().name))
        if self.fail is not None:
            raise self.fail
        return Result([[1, "a"]])


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


pytestmark = pytest.mark.anyio


async def test_a_query_runs_in_the_pool_with_the_timeout_and_read_only() -> None:
    client = FakeClient()
    store = AnalyticsStore(lambda timeout_s: client, max_clients=2, timeout_s=3)
    assert await store.rows(STATEMENT) == [(1, "a")]
    sql, parameters, settings, thread = client.calls[0]
    assert (sql, parameters, settings) == (STATEMENT.sql, {"x": 1}, {"max_execution_time": 3, "readonly": 2})
    assert thread.startswith("analytics") and thread != threading.current_thread().name
    store.close()


@pytest.mark.parametrize(
    ("fail", "status", "words"),
    [(OperationalError("Error HTTPConnectionPool: Connection refused"), 503, "not reachable: Error HTTPConnectionPool"),
     (OperationalError("Read timed out. (read timeout=8)"), 503, "did not answer within 3 s"),
     (DatabaseError("Code: 159. DB::Exception: Timeout exceeded: elapsed 3001 ms"), 503, "longer than the 3 s limit"),
     (DatabaseError("Code: 62. DB::Exception: Syntax error"), 500, "the analytics query failed: Code: 62.")],
)  # fmt: skip
async def test_clickhouse_failures_become_gateway_errors(fail: Exception, status: int, words: str) -> None:
    store = AnalyticsStore(lambda timeout_s: FakeClient(fail), max_clients=1, timeout_s=3)
    with pytest.raises(GatewayError) as caught:
        await store.rows(STATEMENT)
    assert caught.value.status == status and words in caught.value.message
    store.close()


async def test_an_unreachable_server_is_503_and_the_next_query_connects_again() -> None:
    opened: list[FakeClient] = []

    def connect(timeout_s: float) -> FakeClient:
        if not opened:
            opened.append(FakeClient(OperationalError("Connection refused")))
        elif len(opened) == 1:
            opened.append(FakeClient())
        return opened[-1]

    store = AnalyticsStore(connect, max_clients=1, timeout_s=3)
    with pytest.raises(AnalyticsUnavailableError):
        await store.rows(STATEMENT)
    assert await store.rows(STATEMENT) == [(1, "a")] and len(opened) == 2
    store.close()


async def test_a_server_that_cannot_be_opened_is_503_with_its_reason() -> None:
    def connect(timeout_s: float) -> FakeClient:
        raise StoreUnavailableError("ClickHouse at http://127.0.0.1:1/ cannot be opened: refused")

    store = AnalyticsStore(connect, max_clients=1, timeout_s=3)
    with pytest.raises(AnalyticsUnavailableError) as caught:
        await store.rows(STATEMENT)
    assert caught.value.message == "ClickHouse at http://127.0.0.1:1/ cannot be opened: refused"
    assert caught.value.retry_after_s == 5
    store.close()
