from __future__ import annotations

from pathlib import Path

import pytest

from infra.db.migrate import MIGRATIONS, MigrationError, discover, pending, split_statements


def write(folder: Path, name: str, sql: str) -> None:
    (folder / name).write_text(sql)


def test_discover_orders_by_version(tmp_path: Path) -> None:
    write(tmp_path, "0002_b.sql", "SELECT 2")
    write(tmp_path, "0001_a.sql", "SELECT 1")
    assert [(m.version, m.name) for m in discover(tmp_path)] == [(1, "a"), (2, "b")]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"1_a.sql": "x"}, "NNNN_name.sql"),
        ({"0001_a.sql": "x", "0001_b.sql": "y"}, "appears twice"),
    ],
)
def test_discover_rejects_bad_folders(tmp_path: Path, files: dict[str, str], message: str) -> None:
    for name, sql in files.items():
        write(tmp_path, name, sql)
    with pytest.raises(MigrationError, match=message):
        discover(tmp_path)


def test_pending_skips_applied_and_refuses_changed(tmp_path: Path) -> None:
    write(tmp_path, "0001_a.sql", "SELECT 1")
    write(tmp_path, "0002_b.sql", "SELECT 2")
    first, second = discover(tmp_path)
    assert pending([first, second], {1: first.checksum}) == [second]
    with pytest.raises(MigrationError, match="changed after it was applied"):
        pending([first, second], {1: "something else"})


def test_split_statements_drops_comments_and_blank_parts() -> None:
    sql = "-- a comment; with a semicolon\nCREATE TABLE a (x UInt8) ENGINE = Memory;\n\nCREATE TABLE b (y String)\nENGINE = Memory;\n"
    assert split_statements(sql) == [
        "CREATE TABLE a (x UInt8) ENGINE = Memory",
        "CREATE TABLE b (y String)\nENGINE = Memory",
    ]


def test_shipped_migrations_are_well_formed() -> None:
    for store in ("postgres", "clickhouse"):
        assert discover(MIGRATIONS / store), store
