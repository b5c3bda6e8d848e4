"""The engagement benchmark's own parts: its chat actions are valid contract records, its query set
covers every endpoint and figure of the analytics API, and its large data set (made inside an
in-memory chDB with the project's migrations) is consistent with itself."""

from __future__ import annotations

import time

import clickhouse_connect
import fastavro
import pytest

from bench.analytics_data import TABLES, Shape, clear, fill
from bench.engagement import Drain, api_queries, chat_action, partition_of, percentile, who
from chatstream.avro.catalog import load_catalog
from gateway.analytics_params import Scope
from gateway.analytics_sql import FIGURES
from infra.db.migrate import migrate_clickhouse
from pipelines.engagement import LATENCY_BOUNDS_MS
from pipelines.topics import CHAT_ACTIONS


def test_every_kind_of_bench_chat_action_is_a_valid_record() -> None:
    schema = fastavro.parse_schema(load_catalog()[CHAT_ACTIONS.name].schema)
    actions = {chat_action(i, 1_700_000_000_000 + i, "r")["action"] for i in range(10)}
    assert actions == {"MESSAGE_SENT", "FEEDBACK_GIVEN", "REGENERATE_REQUESTED"}
    for i in range(10):
        assert fastavro.validate(chat_action(i, 1_700_000_000_000 + i, "r"), schema, raise_errors=True)


def test_the_query_set_covers_every_endpoint_and_figure_and_builds_its_sql() -> None:
    queries = api_queries("t1", 1_800_000_000_000)
    paths = {path for _, path, _, _ in queries}
    assert {f"/v1/analytics/timeseries/{f}" for f in FIGURES} <= paths
    assert {"/v1/analytics/overview", "/v1/analytics/funnel", "/v1/analytics/retention",
            "/v1/analytics/top/users", "/v1/analytics/top/models", "/v1/analytics/top/tenants"} <= paths  # fmt: skip
    assert len({name for name, *_ in queries}) == len(queries)
    for _name, _path, params, build in queries:
        statement = build(Scope(int(params["from"]) * 1000, int(params["to"]) * 1000, params.get("tenant"), None))
        assert statement.sql.strip() and all(f"{{{p}:" in statement.sql for p in statement.parameters)


def test_a_preloaded_actions_partition_follows_its_conversation() -> None:
    for i in range(50):
        record = chat_action(i, 1_700_000_000_000 + i, "r")
        assert (record["tenant_id"], record["user_id"], record["conversation_id"]) == who(i, "r")
    assert {partition_of(who(i, "r")[2], 6) for i in range(2_000)} == set(range(6))


def test_drain_rates_from_the_jobs_commits() -> None:
    drained = Drain([(0.0, 10_000), (2.0, 50_000), (4.0, 130_000), (6.0, 210_000), (8.0, 290_000)])
    assert drained.seconds == 8.0
    assert drained.eps == (290_000 - 10_000) / 8.0  # warm-up in
    assert drained.warm_eps == (290_000 - 130_000) / 4.0  # from the commit at half time on
    short = Drain([(0.0, 1), (1.0, 3), (3.0, 9)])
    assert short.warm_eps == short.eps  # no commit between half time and the end


def test_percentile_is_none_without_values() -> None:
    assert percentile([], 0.95) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0


@pytest.fixture(scope="module")
def made() -> tuple[object, dict[str, int]]:
    client = clickhouse_connect.get_client(dsn="chdb://memory")
    migrate_clickhouse(client)
    return client, fill(client, Shape(events=5_000, end_ms=int(time.time() * 1000), prefix="unit-"))


def test_the_large_data_set_is_consistent_with_itself(made: tuple[object, dict[str, int]]) -> None:
    client, counts = made
    query = client.query  # type: ignore[attr-defined]
    assert counts["chat_events"] == 5_000
    ((messages,),) = query("SELECT countIf(action = 'MESSAGE_SENT') FROM chat_events WHERE tenant_id LIKE 'unit-%'").result_rows
    assert counts["ai_requests"] == messages  # one AI request per message
    rows = query("SELECT dimension, sum(messages_sent), sum(ai_requests), sum(latency_count), "
                 "sum(arraySum(latency_hist)), max(length(latency_hist)) FROM engagement_windows "
                 "WHERE tenant_id LIKE 'unit-%' GROUP BY dimension ORDER BY dimension").result_rows  # fmt: skip
    assert [r[0] for r in rows] == ["model", "tenant", "user"]
    for _dimension, sent, requests, latencies, in_buckets, buckets in rows:
        assert sent == messages and requests == messages  # every dimension counts every event once
        assert in_buckets == latencies and buckets == len(LATENCY_BOUNDS_MS) + 1


def test_clear_empties_the_tables_fill_writes(made: tuple[object, dict[str, int]]) -> None:
    client, _ = made
    clear(client)
    for table in TABLES:
        assert client.query(f"SELECT count() FROM {table}").result_rows == [(0,)]  # type: ignore[attr-defined]
