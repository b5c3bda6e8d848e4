"""The analytics API on the real stack: chat actions through the gateway and the ClickHouse sink
(a batch of them sent twice), engagement windows and sessions inserted as the engagement job
writes them (a window replayed), then every endpoint answers exactly the figures those rows
make, for the tenant's token, an admin's and nobody else's; and a gateway whose ClickHouse is
not there answers 503 saying so."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import clickhouse_connect
import httpx
import pytest

from chatstream.readiness import wait_ready
from chatstream.settings import Settings
from pipelines.engagement import LATENCY_BOUNDS_MS
from tests.integration.platform import Component, bearer, wait_gateway_ready
from tests.integration.test_clickhouse_server import start_group_at_end
from tests.integration.test_dead_letters import run_sink_until_caught_up

BUCKETS = len(LATENCY_BOUNDS_MS) + 1
COUNTS = ("active_users", "active_conversations", "sessions_started", "conversations_created", "messages_sent",
          "regenerations", "generations_stopped", "feedback_up", "feedback_down", "ai_requests", "ai_completed",
          "ai_failed", "prompt_tokens", "completion_tokens", "latency_count", "ttft_count")  # fmt: skip
SUMS = ("cost_usd", "latency_sum_ms", "ttft_sum_ms", "latency_max_ms", "ttft_max_ms")
DAY0 = (datetime.now(UTC) - timedelta(days=10)).replace(hour=9, minute=0, second=0, microsecond=0)
T0_MS = int(DAY0.timestamp() * 1000)
HOUR = {"from": DAY0.isoformat(), "to": (DAY0 + timedelta(hours=1)).isoformat()}


def hist(**buckets: int) -> list[int]:
    counts = [0] * BUCKETS
    for index, count in buckets.items():
        counts[int(index[1:])] = count
    return counts


def window(tenant: str, dimension: str, minute: int, *, model: str | None = None, user: str = "",
           event_id: uuid.UUID | None = None, inserted_at: datetime | None = None, **figures: Any) -> dict[str, Any]:  # fmt: skip
    """One row of engagement_windows as the contract has it; figures not named are 0."""
    start = DAY0 + timedelta(minutes=minute)
    return {"event_id": event_id or uuid.uuid4(), "occurred_at": start + timedelta(minutes=1), "dimension": dimension,
            "tenant_id": tenant, "model": model, "user_id": user, "window_start": start,
            "window_end": start + timedelta(minutes=1), "latency_hist": hist(), "ttft_hist": hist(),
            "inserted_at": inserted_at or datetime.now(UTC), **dict.fromkeys(COUNTS, 0), **dict.fromkeys(SUMS, 0.0),
            **figures}  # fmt: skip


def windows(tenant: str, other: str) -> list[dict[str, Any]]:
    replayed = uuid.uuid4()
    first: dict[str, Any] = dict(messages_sent=4, conversations_created=2, sessions_started=1, feedback_up=2, feedback_down=1,
                 regenerations=1, ai_requests=4, ai_completed=3, ai_failed=1, prompt_tokens=100, completion_tokens=40,
                 cost_usd=0.5, latency_count=10, latency_max_ms=70.0, latency_hist=hist(b5=10), ttft_count=4,
                 ttft_max_ms=18.0, ttft_hist=hist(b2=4))  # fmt: skip
    return [
        window(tenant, "tenant", 0, event_id=replayed, inserted_at=datetime.now(UTC) - timedelta(minutes=1),
               **{**first, "messages_sent": 40}),  # replaced by its replay  # fmt: skip
        window(tenant, "tenant", 0, event_id=replayed, **first),
        window(tenant, "tenant", 1, messages_sent=3, conversations_created=1, sessions_started=1, feedback_up=1,
               generations_stopped=1, ai_requests=2, ai_completed=2, prompt_tokens=50, completion_tokens=20,
               cost_usd=0.25, latency_count=10, latency_max_ms=380.0, latency_hist=hist(b10=10)),  # fmt: skip
        window(tenant, "tenant", 2, messages_sent=1, feedback_down=1),
        window(tenant, "model", 0, model="m-a", messages_sent=3, ai_requests=3, prompt_tokens=80, completion_tokens=30,
               cost_usd=0.375),  # fmt: skip
        window(tenant, "model", 0, model="m-b", messages_sent=1, ai_requests=1, ai_failed=1, prompt_tokens=20,
               completion_tokens=10, cost_usd=0.125),  # fmt: skip
        window(tenant, "model", 1, model="m-a", messages_sent=3, ai_requests=2, prompt_tokens=50, completion_tokens=20,
               cost_usd=0.25),  # fmt: skip
        window(tenant, "user", 0, user="u1", messages_sent=3, ai_requests=3, prompt_tokens=80, completion_tokens=30,
               cost_usd=0.375),  # fmt: skip
        window(tenant, "user", 0, user="u2", messages_sent=1, ai_requests=1, prompt_tokens=20, completion_tokens=10,
               cost_usd=0.125),  # fmt: skip
        window(tenant, "user", 1, user="u1", messages_sent=2, ai_requests=1, prompt_tokens=25, completion_tokens=10,
               cost_usd=0.125),  # fmt: skip
        window(tenant, "user", 1, user="u2", messages_sent=1, ai_requests=1, prompt_tokens=25, completion_tokens=10,
               cost_usd=0.125),  # fmt: skip
        window(tenant, "user", 2, user="u3", messages_sent=1),
        window(other, "tenant", 0, messages_sent=7),
        window(other, "model", 0, model="m-c", messages_sent=7),
    ]


def insert_rows(client: Any, table: str, rows: list[dict[str, Any]]) -> None:
    columns = sorted({name for row in rows for name in row})
    client.insert(table, [[row.get(c) for c in columns] for row in rows], column_names=columns)


def chat_actions(tenant: str, other: str) -> dict[tuple[str, str], list[list[dict[str, Any]]]]:
    """Batches per (tenant, user): three conversations of ``tenant`` on day 0 (c1 with three
    messages and feedback, c2 one message and feedback, c3 two messages), users coming back on
    days 1 and 7, and one conversation of ``other``."""

    def action(kind: str, conversation: str, at: datetime, **detail: Any) -> dict[str, Any]:
        return {"type": kind, "event_id": str(uuid.uuid4()), "occurred_at": int(at.timestamp() * 1000),
                "conversation_id": f"{tenant}-{conversation}", kind: detail or None}  # fmt: skip

    def conversation(name: str, model: str, start_s: int, messages: int, feedback: bool) -> list[dict[str, Any]]:
        at = DAY0 + timedelta(seconds=start_s)
        events = [action("conversation_created", name, at, model=model)]
        events += [action("message_sent", name, at + timedelta(seconds=i + 1), message_id=f"{name}-m{i}", text_length=5)
                   for i in range(messages)]  # fmt: skip
        if feedback:
            events.append(action("feedback_given", name, at + timedelta(seconds=10), message_id=f"{name}-m0", rating="UP"))
        return events

    def back(name: str, days: int) -> dict[str, Any]:
        return action("message_sent", name, DAY0 + timedelta(days=days), message_id=f"{name}-d{days}", text_length=5)

    return {
        (tenant, "u1"): [conversation("c1", "m-a", 0, 3, True)] * 2 + [[back("c1", 1), back("c1", 7)]],  # sent twice
        (tenant, "u2"): [conversation("c2", "m-b", 20, 1, True), [back("c2", 1)]],
        (tenant, "u3"): [conversation("c3", "m-a", 40, 2, False)],
        (other, "v1"): [conversation("d1", "m-c", 0, 1, False)],
    }


@pytest.fixture(scope="module")
def landed(running_stack: Settings) -> Iterator[tuple[Settings, str, str, Component]]:
    """Both tenants' rows in ClickHouse and a gateway serving the API; yields (settings, tenant,
    other tenant, gateway)."""
    settings = running_stack
    tenant, other = f"an-{uuid.uuid4().hex[:8]}", f"an2-{uuid.uuid4().hex[:8]}"
    group = f"test-analytics-{tenant}"
    start_group_at_end(settings.kafka_bootstrap_servers, group)
    gateway = Component(settings, "gateway").start()
    try:
        wait_gateway_ready(settings, gateway)
        with httpx.Client(base_url=settings.gateway_url, timeout=30) as client:
            for (who, user), batches in chat_actions(tenant, other).items():
                for batch in batches:
                    answer = client.post("/v1/events", json={"events": batch}, headers=bearer(settings, who, user))
                    assert answer.status_code == 202, answer.text
        run_sink_until_caught_up(settings, "clickhouse", group)
        store = clickhouse_connect.get_client(dsn=settings.clickhouse_url)
        insert_rows(store, "engagement_windows", windows(tenant, other))
        insert_rows(store, "engagement_sessions", [
            {"event_id": uuid.uuid4(), "occurred_at": DAY0 + timedelta(minutes=5), "tenant_id": tenant, "user_id": "u1",
             "session_start": DAY0 + timedelta(minutes=4), "session_end": DAY0 + timedelta(minutes=5),
             "duration_ms": 60_000, "turns": 3, "events": 5, "conversations": 1, "models": ["m-a"]},
            {"event_id": uuid.uuid4(), "occurred_at": DAY0 + timedelta(minutes=9), "tenant_id": tenant, "user_id": "u2",
             "session_start": DAY0 + timedelta(minutes=7), "session_end": DAY0 + timedelta(minutes=9),
             "duration_ms": 120_000, "turns": 1, "events": 2, "conversations": 1, "models": ["m-b"]},
        ])  # fmt: skip
        insert_rows(store, "ai_requests", [
            {"request_id": uuid.uuid4(), "requested_at": DAY0 + timedelta(seconds=s), "occurred_at": DAY0 + timedelta(seconds=s),
             "tenant_id": tenant, "user_id": user, "trace_id": "t", "status": "COMPLETED", "provider": "simulated",
             "model": "m-a", "chunks": 1, "tokens_estimated": False, "attempts": 1, "fallback_used": False,
             "kafka_topic": "ai.responses.v1", "kafka_partition": 0, "kafka_offset": s}
            for s, user in ((30, "u1"), (31, "u1"), (90, "u3"))
        ])  # fmt: skip
        yield settings, tenant, other, gateway
    finally:
        assert gateway.stop() == 0, gateway.log_tail()


def get(settings: Settings, path: str, as_tenant: str, *, admin: bool = False, **params: Any) -> httpx.Response:
    """``path`` of the analytics API as a user of ``as_tenant`` (an admin with ``admin``)."""
    headers = bearer(settings, as_tenant, "analyst", roles=["admin"] if admin else None)
    return httpx.get(f"{settings.gateway_url}/v1/analytics/{path}", params={**HOUR, **params}, headers=headers, timeout=30)


def ok(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_the_overview_equals_the_rows(landed: tuple[Settings, str, str, Component]) -> None:
    settings, tenant, _other, _gw = landed
    body = ok(get(settings, "overview", tenant))
    assert body == {
        "from": DAY0.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "to": (DAY0 + timedelta(hours=1)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "tenant": tenant, "model": None, "active_users": 3, "conversations": 3, "messages": 8, "sessions": 2,
        "avg_session_s": 90.0, "feedback_up": 3, "feedback_down": 2, "feedback_ratio": 0.6, "regenerations": 1,
        "generations_stopped": 1, "ai_requests": 6, "ai_failed": 1, "error_rate": 1 / 6, "prompt_tokens": 150,
        "completion_tokens": 60, "cost_usd": 0.75,
        # 10 latencies <= 75 ms (largest 70), 10 in (300, 400] (largest 380): p50 at its bucket's bound, the
        # others at the largest value seen; 4 TTFTs in (10, 20], the largest 18
        "latency_p50_ms": 75.0, "latency_p95_ms": 380.0, "latency_p99_ms": 380.0, "ttft_p50_ms": 18.0, "ttft_p95_ms": 18.0,
    }  # fmt: skip
    model = ok(get(settings, "overview", tenant, model="m-a"))
    assert (model["messages"], model["ai_requests"], model["cost_usd"], model["active_users"], model["avg_session_s"],
            model["latency_p50_ms"]) == (6, 5, 0.625, 2, 60.0, None)  # fmt: skip


def test_timeseries_equal_the_rows(landed: tuple[Settings, str, str, Component]) -> None:
    settings, tenant, _other, _gw = landed

    def series(figure: str, step: int, **params: Any) -> dict[str, list[list[Any]]]:
        body = ok(get(settings, f"timeseries/{figure}", tenant, step=step, **params))
        assert body["step_s"] == step and body["figure"] == figure
        return {s["name"]: s["points"] for s in body["series"]}

    t0 = T0_MS
    messages = series("messages", 60)["all"]
    assert len(messages) == 60 and messages[:4] == [[t0, 4], [t0 + 60_000, 3], [t0 + 120_000, 1], [t0 + 180_000, 0]]
    assert sum(v for _, v in messages) == 8
    assert series("active_users", 120)["all"][:3] == [[t0, 2], [t0 + 120_000, 1], [t0 + 240_000, 0]]
    assert series("active_users", 3600, model="m-a") == {"all": [[t0, 2]]}
    assert series("latency_p95", 60) == {"all": [[t0, 70.0], [t0 + 60_000, 380.0]]}
    assert series("ttft_p50", 60) == {"all": [[t0, 18.0]]}
    assert series("error_rate", 60) == {"all": [[t0, 0.25], [t0 + 60_000, 0.0]]}
    assert series("feedback_ratio", 60) == {"all": [[t0, 2 / 3], [t0 + 60_000, 1.0], [t0 + 120_000, 0.0]]}
    assert series("model_mix", 60) == {"m-a": [[t0, 0.75], [t0 + 60_000, 1.0]], "m-b": [[t0, 0.25]]}
    assert series("cost_by_model", 3600) == {"m-a": [[t0, 0.625]], "m-b": [[t0, 0.125]]}
    assert series("cost_by_tenant", 3600) == {tenant: [[t0, 0.75]]}
    assert series("tokens", 3600) == {"all": [[t0, 210]]}


def test_top_funnel_retention_and_dimensions_equal_the_rows(landed: tuple[Settings, str, str, Component]) -> None:
    settings, tenant, other, _gw = landed
    users = ok(get(settings, "top/users", tenant, by="cost", limit=2))["rows"]
    assert users == [{"key": "u1", "tenant": tenant, "messages": 5, "ai_requests": 4, "tokens": 145, "cost_usd": 0.5},
                     {"key": "u2", "tenant": tenant, "messages": 2, "ai_requests": 2, "tokens": 65, "cost_usd": 0.25}]  # fmt: skip
    models = ok(get(settings, "top/models", tenant, by="tokens"))["rows"]
    assert [(r["key"], r["tokens"], r["messages"]) for r in models] == [("m-a", 180, 6), ("m-b", 30, 1)]
    assert ok(get(settings, "top/tenants", tenant))["rows"] == [
        {"key": tenant, "messages": 8, "ai_requests": 6, "tokens": 210, "cost_usd": 0.75}]  # fmt: skip

    # c1 (sent twice: the replay is no second set of turns) reaches every step, c2 stops after one
    # message (its feedback comes before a 2nd), c3 after two
    steps = ok(get(settings, "funnel", tenant))["steps"]
    assert [(s["name"], s["conversations"]) for s in steps] == [
        ("created", 3), ("1st message", 3), ("2nd message", 2), ("3rd+ message", 1), ("feedback given", 1)]  # fmt: skip
    assert [s["conversations"] for s in ok(get(settings, "funnel", tenant, model="m-a"))["steps"]] == [2, 2, 2, 1, 1]

    week: dict[str, Any] = {"from": DAY0.date().isoformat(), "to": (DAY0 + timedelta(days=1)).date().isoformat()}
    retention = ok(get(settings, "retention", tenant, days="7,1", **week))
    assert retention["days"] == [1, 7]
    assert retention["cohorts"] == [{"day": DAY0.date().isoformat(), "users": 3, "retained": [2, 1]}]

    assert ok(get(settings, "dimensions", tenant)) | {"from": None, "to": None} == {
        "from": None, "to": None, "tenant": tenant, "model": None, "tenants": [tenant], "models": ["m-a", "m-b"]}  # fmt: skip
    assert ok(get(settings, "annotations", tenant))["anomalies"] == []
    every = ok(get(settings, "annotations", "ops", admin=True))  # both statements run on the real ClickHouse
    assert isinstance(every["anomalies"], list) and isinstance(every["scaling"], list)


def test_a_token_reads_its_tenant_and_an_admin_every_tenant(landed: tuple[Settings, str, str, Component]) -> None:
    settings, tenant, other, _gw = landed
    refused = get(settings, "overview", tenant, tenant=other)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert ok(get(settings, "overview", other))["messages"] == 7  # its own tenant: its rows only

    admin = "ops"
    assert ok(get(settings, "overview", admin, tenant=other, admin=True))["messages"] == 7
    everyone = ok(get(settings, "dimensions", admin, admin=True))
    assert {tenant, other} <= set(everyone["tenants"]) and {"m-a", "m-b", "m-c"} <= set(everyone["models"])
    assert ok(get(settings, "overview", admin, admin=True))["messages"] >= 15
    assert [s["conversations"] for s in ok(get(settings, "funnel", admin, tenant=other, admin=True))["steps"]] == [
        1, 1, 0, 0, 0]  # fmt: skip
    tenants = {r["key"] for r in ok(get(settings, "top/tenants", admin, admin=True, limit=100))["rows"]}
    assert {tenant, other} <= tenants


def test_bad_parameters_are_400_naming_them(landed: tuple[Settings, str, str, Component]) -> None:
    settings, tenant, _other, _gw = landed
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("overview", {"from": "1795000000", "to": "1795000000"}, "before"),
        ("timeseries/dau", {}, "unknown figure"),
        ("timeseries/messages", {"step": "60", "from": "2026-01-01", "to": "2026-01-03"}, "too small"),
        ("top/users", {"limit": "500"}, "1..100"),
    ]
    for path, params, words in cases:
        answer = get(settings, path, tenant, **params)
        assert answer.status_code == 400 and words in answer.json()["error"]["message"], answer.text


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_clickhouse_unreachable_is_503_saying_so(landed: tuple[Settings, str, str, Component]) -> None:
    settings, tenant, _other, _gw = landed
    closed, port = free_port(), free_port()
    gateway = Component(settings, "gateway", env={"CHATSTREAM_CLICKHOUSE_DSN": f"http://127.0.0.1:{closed}/",
                                                  "CHATSTREAM_GATEWAY_PORT": str(port), "CHATSTREAM_INSTANCE": "no-ch"}).start()  # fmt: skip
    try:
        assert wait_ready(f"http://127.0.0.1:{port}", timeout_s=60, alive=gateway.running), gateway.log_tail()
        started = time.monotonic()
        answer = httpx.get(f"http://127.0.0.1:{port}/v1/analytics/overview", headers=bearer(settings, tenant), timeout=30)
        assert time.monotonic() - started < 10
    finally:
        assert gateway.stop() == 0, gateway.log_tail()
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
    error = answer.json()["error"]
    assert error["code"] == "clickhouse_unavailable" and f"127.0.0.1:{closed}" in error["message"], error
