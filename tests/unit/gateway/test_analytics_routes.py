"""The analytics routes with a fake store: auth, scoping, refusals in the gateway's error shape,
503 when ClickHouse does not answer, the answers' shapes, and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gateway.analytics import buckets, overview_json, timeseries_json
from gateway.analytics_params import Scope
from gateway.analytics_sql import Statement
from gateway.app import create_app
from gateway.errors import AnalyticsUnavailableError
from tests.unit.gateway.fakes import FakeProducer, make_gateway, token

NOW_MS = 1_795_000_000_000
HOUR = Scope(NOW_MS - 3_600_000, NOW_MS, "acme", None)


class FakeStore:
    """Answers every statement with ``answer(statement)``; remembers what it was asked."""

    def __init__(self, answer: Callable[[Statement], list[tuple[Any, ...]]]) -> None:
        self.answer = answer
        self.asked: list[Statement] = []

    async def rows(self, statement: Statement) -> list[tuple[Any, ...]]:
        self.asked.append(statement)
        return self.answer(statement)

    def close(self) -> None:
        pass


def client(store: FakeStore) -> httpx.AsyncClient:
    gateway = make_gateway(FakeProducer())
    gateway.analytics = store  # type: ignore[assignment]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(gateway)), base_url="http://gw")


def auth(tenant: str = "acme", **kw: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(tenant, 'alice', **kw)}"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


pytestmark = pytest.mark.anyio
FUNNEL = FakeStore(lambda s: [(5, 4, 3, 2, 1)])


@pytest.mark.parametrize(
    ("path", "headers", "status", "code", "words"),
    [("funnel", {}, 401, "unauthorized", "bearer"),
     ("funnel?tenant=globex", auth(), 403, "forbidden", "admin role"),
     ("funnel?from=1795000000&to=1795000000", auth(), 400, "invalid_parameter", "before"),
     ("funnel?from=1700000000&to=1795000000", auth(), 400, "invalid_parameter", "at most 400 days"),
     ("funnel?from=soon", auth(), 400, "invalid_parameter", "ISO 8601"),
     ("timeseries/dau", auth(), 400, "invalid_parameter", "unknown figure 'dau'"),
     ("timeseries/messages?step=30", auth(), 400, "invalid_parameter", "whole minutes"),
     ("timeseries/messages?step=60&from=1795000000&to=1795172800", auth(), 400, "invalid_parameter", "too small"),
     ("top/sessions", auth(), 400, "invalid_parameter", "unknown what"),
     ("top/users?by=likes", auth(), 400, "invalid_parameter", "unknown by"),
     ("top/users?limit=101", auth(), 400, "invalid_parameter", "1..100"),
     ("top/users?limit=0", auth(), 400, "invalid_parameter", "1..100"),
     ("retention?days=0", auth(), 400, "invalid_parameter", "days")],
)  # fmt: skip
async def test_refusals_in_the_gateways_error_shape(path: str, headers: dict[str, str], status: int, code: str,
                                                   words: str) -> None:  # fmt: skip
    store = FakeStore(lambda s: [])
    async with client(store) as http:
        answer = await http.get(f"/v1/analytics/{path}", headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code and words in answer.json()["error"]["message"]
    assert store.asked == []  # refused before any query


async def test_an_admin_reads_any_tenant_and_every_tenant_by_default() -> None:
    async with client(FUNNEL) as http:
        everyone = await http.get("/v1/analytics/funnel", headers=auth("ops", roles=["admin"]))
        one = await http.get("/v1/analytics/funnel?tenant=globex", headers=auth("ops", roles=["admin"]))
    assert everyone.status_code == one.status_code == 200
    assert everyone.json()["tenant"] is None and one.json()["tenant"] == "globex"
    assert "tenant" not in FUNNEL.asked[-2].parameters and FUNNEL.asked[-1].parameters["tenant"] == "globex"
    assert [s["conversations"] for s in one.json()["steps"]] == [5, 4, 3, 2, 1]


async def test_clickhouse_unavailable_is_503_with_retry_after() -> None:
    def down(_statement: Statement) -> list[tuple[Any, ...]]:
        raise AnalyticsUnavailableError("ClickHouse is not reachable: connection refused", retry_after_s=5)

    async with client(FakeStore(down)) as http:
        answer = await http.get("/v1/analytics/overview", headers=auth())
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
    assert answer.json() == {"error": {"code": "clickhouse_unavailable",
                                       "message": "ClickHouse is not reachable: connection refused"}}  # fmt: skip


ANOMALY_ROW = (NOW_MS - 600_000, NOW_MS - 540_000, "tenant:acme/messages", "messages", "CRITICAL", 0.0, 120.5, 0.99999,
               "messages 0 (expected 120.5)", "inc-1")  # fmt: skip
SCALING_ROWS = [(NOW_MS - 900_000, "gateway", -1, 2, 2, "reactive: observed 10"), (NOW_MS - 300_000, "gateway", 2, 4, 2, "forecast")]


def annotation_rows(statement: Statement) -> list[tuple[Any, ...]]:
    return [ANOMALY_ROW] if "FROM anomalies" in statement.sql else SCALING_ROWS


async def test_annotations_are_a_tenants_anomalies_and_for_admins_also_scaling_changes() -> None:
    store = FakeStore(annotation_rows)
    async with client(store) as http:
        mine = (await http.get("/v1/analytics/annotations", headers=auth())).json()
        every = (await http.get("/v1/analytics/annotations", headers=auth(roles=["admin"]))).json()
    assert mine["tenant"] == "acme" and mine["scaling"] == [] and len(store.asked) == 3  # no scaling query for a tenant
    [anomaly] = mine["anomalies"]
    assert anomaly["at"] == NOW_MS - 600_000 and anomaly["label"] == "critical: tenant:acme/messages"
    assert anomaly["expected"] == 120.5 and anomaly["incident_id"] == "inc-1"
    assert [s["label"] for s in every["scaling"]] == ["gateway: 2 replicas", "gateway: 2 -> 4 replicas"]
    assert every["scaling"][1]["reason"] == "forecast" and every["tenant"] is None


def test_overview_ratios_and_percentiles_are_null_with_nothing_to_divide() -> None:
    row = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, [], [], 0, None)
    body = overview_json(HOUR, row)
    assert body["feedback_ratio"] is body["error_rate"] is body["avg_session_s"] is None
    assert body["latency_p50_ms"] is body["latency_p99_ms"] is body["ttft_p95_ms"] is None
    full = overview_json(HOUR, (1, 2, 3, 3, 1, 0, 0, 4, 1, 5, 6, 0.5, [75.0, 400.0, 500.0], [10.0, 20.0, 30.0], 7, 1500.0))
    assert (full["feedback_ratio"], full["error_rate"], full["avg_session_s"]) == (0.75, 0.25, 1.5)
    assert (full["latency_p95_ms"], full["ttft_p95_ms"], full["from"]) == (400.0, 20.0, "2026-11-18T10:06:40.000Z")


def test_buckets_are_step_multiples_covering_the_range() -> None:
    assert buckets(Scope(90_000, 330_000, None, None), 120) == [0, 120, 240]
    assert buckets(Scope(120_000, 360_000, None, None), 120) == [120, 240]


def test_counts_are_zero_filled_per_series_and_ratios_left_absent() -> None:
    scope = Scope(0, 360_000, None, None)
    messages = timeseries_json("messages", scope, 120, [("all", 120, 4)])
    assert messages["series"] == [{"name": "all", "points": [[0, 0], [120_000, 4], [240_000, 0]]}]
    assert timeseries_json("messages", scope, 120, [])["series"][0]["points"] == [[0, 0], [120_000, 0], [240_000, 0]]
    by_model = timeseries_json("cost_by_model", scope, 120, [("a", 0, 1.5), ("b", 240, 2.0)])
    assert [s["points"] for s in by_model["series"]] == [[[0, 1.5], [120_000, 0], [240_000, 0]],
                                                        [[0, 0], [120_000, 0], [240_000, 2.0]]]  # fmt: skip
    ratio = timeseries_json("error_rate", scope, 120, [("all", 120, 0.5)])
    assert (ratio["series"], ratio["unit"], ratio["step_s"]) == ([{"name": "all", "points": [[120_000, 0.5]]}], "ratio", 120)


def test_every_analytics_route_is_in_the_openapi_document() -> None:
    gateway = make_gateway(FakeProducer())
    gateway.analytics = FakeStore(lambda s: [])  # type: ignore[assignment]
    paths = create_app(gateway).openapi()["paths"]
    for path in ("overview", "timeseries/{figure}", "top/{what}", "funnel", "retention", "dimensions", "annotations"):
        operation = paths[f"/v1/analytics/{path}"]["get"]
        assert {"200", "400", "401", "403", "503"} <= set(operation["responses"]), path
        names = [p["name"] for p in operation["parameters"]]
        assert {"from", "to", "tenant", "model"} <= set(names) and len(names) == len(set(names)), path
        assert "422" not in operation["responses"], path
    assert "latency_p95" in str(paths["/v1/analytics/timeseries/{figure}"]["get"]["parameters"])
