"""Apply ``infra/migrations/<store>/NNNN_name.sql`` in order, each once.

Each store records applied versions with a checksum in ``chatstream_migrations``; a file that
changed after it was applied is an error, never silently re-run. PostgreSQL applies each file
and its record in one transaction under an advisory lock; ClickHouse has no transactions, so
its statements are written to be idempotent (``IF NOT EXISTS``) and recorded afterwards.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from chatstream.errors import ChatstreamError

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_ADVISORY_LOCK = 0x63686174  # "chat"


class MigrationError(ChatstreamError):
    """A migration is malformed, changed after being applied, or failed."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(folder: Path) -> list[Migration]:
    """The migrations in ``folder``, by version; duplicate versions or stray files are errors."""
    found: dict[int, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        match = _FILE.match(path.name)
        if match is None:
            raise MigrationError(f"{path}: migration files are named NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{path}: version {version} appears twice")
        found[version] = Migration(version, match.group(2), path.read_text())
    return [found[v] for v in sorted(found)]


def pending(migrations: list[Migration], applied: dict[int, str]) -> list[Migration]:
    """Those not applied yet; raises if an applied one's checksum differs."""
    for m in migrations:
        if m.version in applied and applied[m.version] != m.checksum:
            raise MigrationError(
                f"migration {m.version:04d}_{m.name} changed after it was applied; "
                "add a new migration instead"
            )
    return [m for m in migrations if m.version not in applied]


def split_statements(sql: str) -> list[str]:
    """ClickHouse takes one statement per call: split on ``;`` at line ends, drop comments."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    parts = re.split(r";\s*(?:\n|$)", "\n".join(lines))
    return [p.strip() for p in parts if p.strip()]


def migrate_postgres(conn: psycopg.Connection[Any], folder: Path = MIGRATIONS / "postgres") -> list[Migration]:
    """Apply pending PostgreSQL migrations; returns those applied now."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS chatstream_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    conn.commit()
    done: list[Migration] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK,))
        applied = dict(conn.execute("SELECT version, checksum FROM chatstream_migrations").fetchall())
        for m in pending(discover(folder), applied):
            try:
                with conn.transaction():
                    conn.execute(m.sql.encode())  # our own DDL file, not user input
                    conn.execute(
                        "INSERT INTO chatstream_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (m.version, m.name, m.checksum),
                    )
            except psycopg.Error as exc:
                raise MigrationError(f"PostgreSQL migration {m.version:04d}_{m.name} failed: {exc}") from exc
            done.append(m)
    return done


def migrate_clickhouse(client: Any, folder: Path = MIGRATIONS / "clickhouse") -> list[Migration]:
    """Apply pending ClickHouse migrations; returns those applied now."""
    client.command(
        "CREATE TABLE IF NOT EXISTS chatstream_migrations (version UInt32, name String,"
        " checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))"
        " ENGINE = ReplacingMergeTree ORDER BY version"
    )
    applied = dict(client.query("SELECT version, checksum FROM chatstream_migrations FINAL").result_rows)
    done: list[Migration] = []
    for m in pending(discover(folder), applied):
        for statement in split_statements(m.sql):
            try:
                client.command(statement)
            except Exception as exc:  # noqa: BLE001 - the driver's errors vary by backend
                raise MigrationError(f"ClickHouse migration {m.version:04d}_{m.name} failed: {exc}") from exc
        client.insert(
            "chatstream_migrations",
            [[m.version, m.name, m.checksum]],
            column_names=["version", "name", "checksum"],
        )
        done.append(m)
    return done


def maintain_partitions(conn: psycopg.Connection[Any]) -> list[tuple[str, int, int]]:
    """Create upcoming partitions and drop expired ones (native partitioning only)."""
    with conn.transaction():
        rows = conn.execute("SELECT * FROM chatstream_maintain_timeseries()").fetchall()
    return [(str(r[0]), int(r[1]), int(r[2])) for r in rows]
