"""Every query of infra/grafana's dashboard runs on the real stores (ClickHouse over HTTP, as the
Grafana plugin talks to it, and PostgreSQL), its macros expanded as Grafana would."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from chatstream.settings import Settings
from tests.grafana import CLICKHOUSE, POSTGRES, annotations, expanded, panels


@pytest.mark.parametrize("panel", panels(CLICKHOUSE) + annotations(), ids=lambda p: p["title"])
def test_every_clickhouse_panel_query_runs(clickhouse: Callable[..., Any], panel: dict[str, Any]) -> None:
    rows = clickhouse(("query", expanded(panel), None))
    assert isinstance(rows, list)


def test_every_postgres_panel_query_runs(running_stack: Settings) -> None:
    with psycopg.connect(running_stack.postgres_url()) as conn:
        for panel in panels(POSTGRES):
            conn.execute(expanded(panel)).fetchall()  # raises on any error, naming it
