"""The analytics SQL: callers' values travel only as server-side parameters, every placeholder has
its parameter (and every parameter its placeholder), and each scope filters what it must."""

from __future__ import annotations

import re

import pytest

from gateway import analytics_sql as sql
from gateway.analytics_params import TOP_BY, TOP_WHAT, Scope

HOSTILE = "x' OR 1=1 --{evil:String}"
NOW_MS = 1_795_000_000_000
SCOPES = [
    Scope(NOW_MS - 3_600_000, NOW_MS, None, None),
    Scope(NOW_MS - 3_600_000, NOW_MS, HOSTILE, None),
    Scope(NOW_MS - 3_600_000, NOW_MS, None, HOSTILE),
    Scope(NOW_MS - 3_600_000, NOW_MS, HOSTILE, HOSTILE + "m"),
]
PLACEHOLDER = re.compile(r"\{(\w+):([^}]+)\}")


def statements(scope: Scope) -> list[sql.Statement]:
    return [
        sql.overview(scope),
        *(sql.timeseries(figure, scope, 300) for figure in sql.FIGURES),
        *(sql.top(what, by, scope, 10) for what in TOP_WHAT for by in TOP_BY),
        sql.funnel(scope),
        sql.retention(scope, (1, 7, 30)),
        sql.dimensions(scope),
        sql.anomalies(scope),
    ]


@pytest.mark.parametrize("scope", SCOPES)
def test_values_are_parameters_never_sql_text(scope: Scope) -> None:
    for statement in statements(scope):
        assert "OR 1=1" not in statement.sql and "evil" not in statement.sql
        names = {name for name, _type in PLACEHOLDER.findall(statement.sql)}
        assert names == set(statement.parameters), statement.sql


@pytest.mark.parametrize("scope", SCOPES)
def test_a_tenant_scope_filters_every_query_and_none_reads_all(scope: Scope) -> None:
    for statement in statements(scope):
        assert ("tenant_id = {tenant:String}" in statement.sql) == (scope.tenant is not None), statement.sql
        if scope.tenant is not None:
            assert statement.parameters["tenant"] == scope.tenant


def test_a_model_reads_model_rows_and_users_from_ai_requests() -> None:
    scope = SCOPES[2]
    overview = sql.overview(scope).sql
    assert "dimension = 'model'" in overview and "model = {model:String}" in overview
    assert "FROM ai_requests WHERE model = {model:String}" in overview
    assert "FROM ai_requests" in sql.timeseries("active_users", scope, 60).sql
    assert "dimension = 'user'" in sql.timeseries("active_users", SCOPES[0], 60).sql
    assert "dimension = 'tenant'" in sql.overview(SCOPES[0]).sql


def test_top_users_are_ranked_over_user_rows_even_with_a_model() -> None:
    statement = sql.top("users", "cost", SCOPES[2], 5)
    assert "dimension = 'user'" in statement.sql and "ORDER BY cost_usd DESC" in statement.sql
    assert "{model" not in statement.sql and statement.parameters["limit"] == 5


def test_percentiles_weigh_the_histograms_bucket_bounds_up_to_the_largest_value() -> None:
    statement = sql.overview(SCOPES[0])
    assert statement.parameters["bounds"] == [float(b) for b in sql.LATENCY_BOUNDS_MS]
    assert len(sql.LATENCY_BOUNDS_MS) == 26
    assert "quantilesExactWeighted(0.5, 0.95, 0.99)" in statement.sql and "sum(latency_hist[27])" in statement.sql
    assert "arrayPushBack({bounds:Array(Float64)}, latency_max)" in statement.sql


def test_funnel_and_retention_use_clickhouse_functions_over_the_range() -> None:
    funnel = sql.funnel(SCOPES[3])
    assert f"arrayReduce('windowFunnel({sql.FUNNEL_WINDOW_MS})'" in funnel.sql and "FROM chat_events" in funnel.sql
    assert "minIf(at_ms, action = 'CONVERSATION_CREATED' AND model = {model:String})" in funnel.sql
    retention = sql.retention(SCOPES[3], (2, 5))
    assert "retention(day = cohort, day = cohort + {day0:UInt16}, day = cohort + {day1:UInt16})" in retention.sql
    assert (retention.parameters["day0"], retention.parameters["day1"], retention.parameters["last_day"]) == (2, 5, 5)
    assert "FROM user_active_days" in retention.sql


@pytest.mark.parametrize("figure", list(sql.FIGURES))
def test_every_figure_has_a_unit_and_buckets_by_the_step(figure: str) -> None:
    statement = sql.timeseries(figure, SCOPES[0], 600)
    assert sql.FIGURES[figure].unit and statement.parameters["step"] == 600
    assert "* {step:UInt32} AS bucket" in statement.sql


def test_scaling_annotations_are_the_changes_of_desired_replicas_over_every_service() -> None:
    statement = sql.scaling_changes(SCOPES[1])
    assert "tenant" not in statement.parameters and "PARTITION BY target" in statement.sql
    assert "WHERE before != desired_replicas" in statement.sql and set(statement.parameters) == {"from_ms", "to_ms"}
    assert f"LIMIT {sql.ANNOTATIONS_LIMIT}" in statement.sql and f"LIMIT {sql.ANNOTATIONS_LIMIT}" in sql.anomalies(SCOPES[0]).sql
