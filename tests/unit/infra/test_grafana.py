"""infra/grafana's dashboard: importable JSON whose every panel names a datasource and a query,
and whose ClickHouse queries parse once Grafana's macros are expanded (chDB's parser, in-process;
tests/integration/test_grafana_queries.py runs every query on the real stores)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.grafana import CLICKHOUSE, POSTGRES, annotations, expanded, load, panels

PLUGINS = {CLICKHOUSE: "${clickhouse}", POSTGRES: "${postgres}"}
FIGURES = ["active users", "conversations", "messages per minute", "sessions", "feedback ratio", "regenerations",
           "model mix", "tokens by model", "tokens by tenant", "cost by model", "cost by tenant", "latency",
           "time to first token", "error rate", "top users", "top models", "top tenants", "funnel", "retention"]  # fmt: skip


def test_the_dashboard_is_importable_json() -> None:
    dashboard = load()
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["clickhouse"]["type"] == variables["postgres"]["type"] == "datasource"
    assert {variables["clickhouse"]["query"], variables["postgres"]["query"]} == set(PLUGINS)
    assert variables["tenant"]["includeAll"] and variables["model"]["includeAll"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("panel", panels() + annotations(), ids=lambda p: p["title"])
def test_every_panel_names_a_datasource_and_a_query(panel: dict[str, Any]) -> None:
    source = panel["datasource"]
    assert PLUGINS[source["type"]] == source["uid"]
    assert panel["targets"], "a panel without a query"
    for target in panel["targets"]:
        assert target["datasource"] == source
        assert target["rawSql"].strip().upper().startswith("SELECT")
        if source["type"] == CLICKHOUSE:
            assert target["editorType"] == "sql" and target["queryType"] in ("timeseries", "table")
        else:
            assert target["rawQuery"] is True and target["format"] in ("time_series", "table")


def test_every_figure_has_a_panel_on_the_stores_that_hold_it() -> None:
    clickhouse = " | ".join(p["title"].lower() for p in panels(CLICKHOUSE))
    assert [f for f in FIGURES if f not in clickhouse] == []
    postgres = " | ".join(p["title"].lower() for p in panels(POSTGRES))
    assert [f for f in ["active users", "messages per minute", "model mix", "cost by tenant", "latency", "error rate"]
            if f not in postgres] == []  # fmt: skip


def test_the_clickhouse_queries_parse() -> None:
    chdb = pytest.importorskip("chdb")
    with pytest.raises(RuntimeError, match="Syntax error"):  # the check can fail
        chdb.query("EXPLAIN AST SELECT (1 FROM chat_events", "CSV")
    for panel in panels(CLICKHOUSE) + annotations():
        sql = expanded(panel)
        assert "$" not in sql, (panel["title"], sql)
        chdb.query(f"EXPLAIN AST {sql}", "CSV")  # raises on a syntax error


def test_anomalies_are_annotations_with_a_time_a_region_and_a_text() -> None:
    [anomalies] = annotations()
    sql = anomalies["targets"][0]["rawSql"]
    assert "FROM anomalies" in sql and all(f" AS {column}" in sql for column in ("time", "timeEnd", "title", "text", "tags"))
