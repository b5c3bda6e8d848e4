from __future__ import annotations

from collections.abc import Callable
from typing import Any


def test_chdb_table_created_written_and_read_back_after_reopen(clickhouse: Callable[..., Any], unique: str) -> None:
    table = f"test_events_{unique}"
    clickhouse(
        ("command",
         f"CREATE TABLE {table} (event_id UUID, tenant_id String, n UInt32) "
         "ENGINE = ReplacingMergeTree ORDER BY (tenant_id, event_id) "
         "SETTINGS non_replicated_deduplication_window = 100", None),
        ("insert", table, {"columns": ["event_id", "tenant_id", "n"],
                           "rows": [[f"00000000-0000-4000-8000-00000000000{i}", "t1", i] for i in range(5)]}),
    )  # fmt: skip
    # a new process opens the same chDB folder: the rows are on disk
    rows = clickhouse(("query", f"SELECT count(), sum(n) FROM {table}", None))
    assert rows == [[5, 10]]
    # a replayed row (same event_id) collapses in the ReplacingMergeTree
    clickhouse(
        ("insert", table, {"columns": ["event_id", "tenant_id", "n"],
                           "rows": [["00000000-0000-4000-8000-000000000001", "t1", 1]]}),
    )  # fmt: skip
    assert clickhouse(("query", f"SELECT count() FROM {table} FINAL", None)) == [[5]]


def test_clickhouse_migrations_applied(clickhouse: Callable[..., Any]) -> None:
    rows = clickhouse(("query", "SELECT version, name FROM chatstream_migrations FINAL ORDER BY version", None))
    assert rows[0] == [1, "engagement_windows"]
    columns = clickhouse(("query", "SELECT name FROM system.columns WHERE table = 'engagement_windows'", None))
    assert ["event_id"] in columns and ["window_start"] in columns
