"""``chatstream db migrate``: versioned DDL for PostgreSQL and ClickHouse."""

from __future__ import annotations

import typer

from chatstream.cli.output import console, print_json
from chatstream.settings import Settings
from chatstream.stores import clickhouse_client, connect_postgres
from infra.db.migrate import maintain_partitions, migrate_clickhouse, migrate_postgres

app = typer.Typer(help="Database migrations and time-partition maintenance.")


@app.command()
def migrate(ctx: typer.Context, json_out: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """Apply pending migrations to PostgreSQL and ClickHouse, then maintain partitions."""
    settings: Settings = ctx.obj
    with connect_postgres(settings) as conn:
        pg_done = migrate_postgres(conn)
        partitions = maintain_partitions(conn)
    client = clickhouse_client(settings)
    try:
        ch_done = migrate_clickhouse(client)
    finally:
        client.close()
    applied = {
        "postgres": [f"{m.version:04d}_{m.name}" for m in pg_done],
        "clickhouse": [f"{m.version:04d}_{m.name}" for m in ch_done],
    }
    if json_out:
        tables = [{"table": t, "created": c, "dropped": d} for t, c, d in partitions]
        print_json({**applied, "partitions": tables})
        return
    for store, names in applied.items():
        console.print(f"{store}: " + (f"applied {', '.join(names)}" if names else "up to date"))
    for p in partitions:
        console.print(f"partitions of {p[0]}: {p[1]} created, {p[2]} dropped")
