"""Tables of the ClickHouse migrations, made under another name in an in-memory engine (chDB)."""

from __future__ import annotations

from typing import Any

from infra.db.migrate import MIGRATIONS, discover, split_statements


def create_table(engine: Any, table: str, name: str) -> None:
    """``name``, made as the latest migration that creates ``table`` makes it (dropped first if there)."""
    marker = f"CREATE TABLE IF NOT EXISTS {table}\n"
    ddl = [s for m in discover(MIGRATIONS / "clickhouse") for s in split_statements(m.sql) if s.startswith(marker)][-1]
    engine.command(f"DROP TABLE IF EXISTS {name}")
    engine.command(f"CREATE TABLE {name}\n" + ddl[len(marker):])
