from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import psycopg

from chatstream.settings import Settings
from tests.integration.conftest import chatstream

COLUMNS = "event_id uuid NOT NULL, occurred_at timestamptz NOT NULL, v int NOT NULL, PRIMARY KEY (event_id, occurred_at)"


def partition_of(conn: psycopg.Connection, table: str, at: datetime) -> str:
    row = conn.execute(
        f"SELECT tableoid::regclass::text FROM {table} WHERE occurred_at = %s", (at,)
    ).fetchone()
    assert row is not None
    return str(row[0])


def test_time_partitioned_table_created_written_and_maintained(running_stack: Settings, unique: str) -> None:
    table = f"test_ts_{unique}"
    now = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(running_stack.postgres_url(), autocommit=True) as conn:
        flavor = conn.execute(
            "SELECT chatstream_create_timeseries(%s, %s, 'occurred_at', interval '1 day', interval '3 days')",
            (table, COLUMNS),
        ).fetchone()
        assert flavor is not None and flavor[0] in ("native", "timescaledb")
        if flavor[0] != "native":
            return  # hypertable chunks are TimescaleDB's business
        # a row in each recent day lands in that day's partition
        for days_ago in range(3):
            at = now - timedelta(days=days_ago)
            conn.execute(f"INSERT INTO {table} VALUES (gen_random_uuid(), %s, 1)", (at,))
            day = (at.astimezone(UTC)).strftime("%Y%m%d")
            assert partition_of(conn, table, at) == f"{table}_p{day}_0000"
        # a row beyond the created range is caught by the DEFAULT partition, not refused
        far = now + timedelta(days=10)
        conn.execute(f"INSERT INTO {table} VALUES (gen_random_uuid(), %s, 2)", (far,))
        assert partition_of(conn, table, far) == f"{table}_default"
        # maintenance ten days on: far's partition is created (its row moved), old ones dropped
        rows = conn.execute(
            "SELECT * FROM chatstream_maintain_timeseries(%s, %s)", (far, table)
        ).fetchall()
        (name, created, dropped), = rows
        assert name == table and created >= 1 and dropped >= 3
        assert partition_of(conn, table, far) == f"{table}_p{far.strftime('%Y%m%d')}_0000"
        remaining = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert remaining == (1,)  # the three old rows expired with their partitions


def test_primary_key_keeps_event_ids_unique(running_stack: Settings) -> None:
    with psycopg.connect(running_stack.postgres_url(), autocommit=True) as conn:
        at = datetime.now(UTC)
        event_id = str(uuid.uuid4())  # a replayed event keeps its event_id and occurred_at
        insert = (
            "INSERT INTO ops_metrics (event_id, occurred_at, tenant_id, service, instance, name, value, trace_id)"
            " VALUES (%s, %s, 't', 'gateway', 'i1', 'requests', 1, 'x') ON CONFLICT DO NOTHING"
        )
        conn.execute(insert, (event_id, at))
        conn.execute(insert, (event_id, at))
        count = conn.execute("SELECT count(*) FROM ops_metrics WHERE event_id = %s", (event_id,)).fetchone()
        assert count == (1,)


def test_migrations_are_recorded_and_idempotent(running_stack: Settings) -> None:
    again = json.loads(chatstream(running_stack, "db", "migrate", "--json").stdout)
    assert again["postgres"] == [] and again["clickhouse"] == []
    with psycopg.connect(running_stack.postgres_url()) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM chatstream_migrations ORDER BY 1")]
    assert versions[:2] == [1, 2]
