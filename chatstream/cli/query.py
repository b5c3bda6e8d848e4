"""``chatstream query clickhouse|postgres SQL``: ask either store, as the platform sees it."""

from __future__ import annotations

from typing import Any

import psycopg
import typer
from rich.table import Table

from chatstream.cli.output import console, print_json
from chatstream.errors import ChatstreamError
from chatstream.settings import Settings
from chatstream.stores import clickhouse_client, connect_postgres
from infra.local.clickhouse import require_chdb_free

app = typer.Typer()


class QueryError(ChatstreamError):
    """The store refused or failed the statement; the message is the store's own, on one line."""


def run_query(settings: Settings, store: str, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Columns and rows of ``sql``; ``QueryError`` when the store refuses it, ``ChdbBusyError``
    when embedded chDB is open in another process."""
    if store == "clickhouse":
        from clickhouse_connect.driver.exceptions import ClickHouseError

        require_chdb_free(settings)
        client = clickhouse_client(settings)
        try:
            result = client.query(sql)
            return list(result.column_names), [tuple(r) for r in result.result_rows]
        except ClickHouseError as exc:
            raise QueryError(f"ClickHouse: {_one_line(exc)}") from exc
        finally:
            client.close()
    with connect_postgres(settings) as conn:
        try:
            cursor = conn.execute(sql.encode())
            names = [d.name for d in cursor.description or []]
            return names, [tuple(r) for r in cursor.fetchall()] if cursor.description else []
        except psycopg.Error as exc:
            raise QueryError(f"PostgreSQL: {_one_line(exc)}") from exc


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@app.command()
def query(
    ctx: typer.Context,
    store: str = typer.Argument(..., metavar="clickhouse|postgres"),
    sql: str = typer.Argument(..., help="One SQL statement."),
    json_out: bool = typer.Option(False, "--json", help="JSON rows."),
) -> None:
    """Run one SQL statement against ClickHouse or PostgreSQL and print the rows.

    Embedded chDB is opened by one process at a time: stop `chatstream run` (or its ClickHouse
    sink) first, or run everything with CHATSTREAM_CLICKHOUSE_SERVER=1 (a local server they
    share), or point CHATSTREAM_CLICKHOUSE_DSN at a ClickHouse server.
    """
    if store not in ("clickhouse", "postgres"):
        raise typer.BadParameter("clickhouse or postgres", param_hint="STORE")
    names, rows = run_query(ctx.obj, store, sql)
    if json_out:
        print_json([dict(zip(names, row, strict=True)) for row in rows])
        return
    table = Table(*names)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)
