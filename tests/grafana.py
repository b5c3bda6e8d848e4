"""infra/grafana's dashboard for the tests: its panels, and their SQL with Grafana's macros and
variables expanded the way Grafana would for one hour of data and every tenant and model."""

from __future__ import annotations

import json
import re
from typing import Any

from chatstream.settings import REPO_ROOT

DASHBOARD = REPO_ROOT / "infra" / "grafana" / "chatstream-engagement.json"
CLICKHOUSE = "grafana-clickhouse-datasource"
POSTGRES = "grafana-postgresql-datasource"
FROM_S, TO_S = 1_790_000_000, 1_790_003_600

_CLICKHOUSE_MACROS = [
    (r"\$__timeFilter\((\w+)\)", rf"\1 >= toDateTime({FROM_S}) AND \1 <= toDateTime({TO_S})"),
    (r"\$__timeInterval\((\w+)\)", r"toStartOfInterval(toDateTime(\1), INTERVAL 60 second)"),
    (r"\$__fromTime", f"toDateTime({FROM_S})"),
    (r"\$__toTime", f"toDateTime({TO_S})"),
    (r"\$__interval_ms", "60000"),
    (r"\$\{(tenant|model):singlequote\}", "'__all__'"),  # the variables' "All" value
]
_POSTGRES_MACROS = [
    (r"\$__timeFilter\((\w+)\)", rf"\1 BETWEEN to_timestamp({FROM_S}) AND to_timestamp({TO_S})"),
    (r"\$__timeGroupAlias\((\w+), \$__interval\)", r'to_timestamp(floor(extract(epoch FROM \1) / 60) * 60) AS "time"'),
    (r"\$__interval_ms", "60000"),
    (r"\$(tenant|model)\b", "'__all__'"),
]


def load() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels(source: str | None = None) -> list[dict[str, Any]]:
    """The dashboard's panels (not its rows), of one data source type if given."""
    return [p for p in load()["panels"] if p["type"] != "row" and source in (None, p["datasource"]["type"])]


def annotations() -> list[dict[str, Any]]:
    """The dashboard's query annotations, shaped as panels (``title``, ``datasource``, ``targets``)."""
    return [{"title": f"annotation: {a['name']}", "datasource": a["datasource"], "targets": [a["target"]]}
            for a in load()["annotations"]["list"] if "target" in a]  # fmt: skip


def expanded(panel: dict[str, Any]) -> str:
    """The panel's query as Grafana sends it, for the hour from FROM_S, all tenants and models."""
    sql: str = panel["targets"][0]["rawSql"]
    macros = _CLICKHOUSE_MACROS if panel["datasource"]["type"] == CLICKHOUSE else _POSTGRES_MACROS
    for pattern, replacement in macros:
        sql = re.sub(pattern, replacement, sql)
    return sql
