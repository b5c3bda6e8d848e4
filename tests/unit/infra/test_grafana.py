"""infra/grafana's dashboard: importable JSON whose every panel names a datasource and a query,
and whose ClickHouse queries parse once Grafana's macros are expanded (chDB's parser, in-process)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from chatstream.settings import REPO_ROOT

DASHBOARD = REPO_ROOT / "infra" / "grafana" / "chatstream-engagement.json"
PLUGINS = {"grafana-clickhouse-datasource": "${clickhouse}", "grafana-postgresql-datasource": "${postgres}"}
FIGURES = ["active users", "conversations", "messages per minute", "sessions", "feedback ratio", "regenerations",
           "model mix", "tokens by model", "tokens by tenant", "cost by model", "cost by tenant", "latency",
           "time to first token", "error rate", "top users", "top models", "top tenants", "funnel", "retention"]  # fmt: skip


def load() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict[str, Any]]:
    return [p for p in load()["panels"] if p["type"] != "row"]


def test_the_dashboard_is_importable_json() -> None:
    dashboard = load()
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["clickhouse"]["type"] == variables["postgres"]["type"] == "datasource"
    assert {variables["clickhouse"]["query"], variables["postgres"]["query"]} == set(PLUGINS)
    assert variables["tenant"]["includeAll"] and variables["model"]["includeAll"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("panel", panels(), ids=lambda p: p["title"])
def test_every_panel_names_a_datasource_and_a_query(panel: dict[str, Any]) -> None:
    source = panel["datasource"]
    assert PLUGINS[source["type"]] == source["uid"]
    assert panel["targets"], "a panel without a query"
    for target in panel["targets"]:
        assert target["datasource"] == source
        assert target["rawSql"].strip().upper().startswith("SELECT")
        if source["type"] == "grafana-clickhouse-datasource":
            assert target["editorType"] == "sql" and target["queryType"] in ("timeseries", "table")
        else:
            assert target["rawQuery"] is True and target["format"] in ("time_series", "table")


def test_every_figure_of_the_dashboard_has_a_panel_on_both_stores_where_they_hold_it() -> None:
    titles = {p["datasource"]["type"]: [] for p in panels()}  # type: dict[str, list[str]]
    for p in panels():
        titles[p["datasource"]["type"]].append(p["title"].lower())
    clickhouse = " | ".join(titles["grafana-clickhouse-datasource"])
    assert [f for f in FIGURES if f not in clickhouse] == []
    postgres = " | ".join(titles["grafana-postgresql-datasource"])
    assert [f for f in ["active users", "messages per minute", "model mix", "cost by tenant", "latency", "error rate"]
            if f not in postgres] == []  # fmt: skip


MACROS = [
    (r"\$__timeFilter\((\w+)\)", r"\1 >= toDateTime(1790000000) AND \1 <= toDateTime(1790003600)"),
    (r"\$__timeInterval\((\w+)\)", r"toStartOfInterval(toDateTime(\1), INTERVAL 60 second)"),
    (r"\$__fromTime", "toDateTime(1790000000)"),
    (r"\$__toTime", "toDateTime(1790003600)"),
    (r"\$__interval_ms", "60000"),
    (r"\$\{(tenant|model):singlequote\}", "'__all__'"),
]


def test_the_clickhouse_queries_parse() -> None:
    chdb = pytest.importorskip("chdb")
    with pytest.raises(RuntimeError, match="Syntax error"):  # the check can fail
        chdb.query("EXPLAIN AST SELECT (1 FROM chat_events", "CSV")
    for p in panels():
        if p["datasource"]["type"] != "grafana-clickhouse-datasource":
            continue
        sql = p["targets"][0]["rawSql"]
        for pattern, replacement in MACROS:
            sql = re.sub(pattern, replacement, sql)
        assert "$" not in sql, (p["title"], sql)
        chdb.query(f"EXPLAIN AST {sql}", "CSV")  # raises on a syntax error
