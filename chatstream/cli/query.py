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

app = typer.Typer()


class QueryError(ChatstreamError):
    """The store refused or failed the statement; the message is the store's own, on one line."""


def run_query(settings: Settings, store: str, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Columns and rows of ``sql``; ``QueryError`` when the store refuses it."""
    if store == "clickhouse":
        from clickhouse_connect.driver.exceptions import ClickHouseError

        client = clickhouse_client(settings)
        try:
            result = client.query(sql)
            return list(result.column_names), [tuple(r) for r in result.result_rows]
        except ClickHouseError as exc:
            raise QueryError(f"ClickHouse: {_server_said(_one_line(exc))}") from exc
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


def _server_said(message: str) -> str:
    """The server's own words from clickhouse-connect's wrapper ("Received ClickHouse exception,
    code: 62, server response: Code: 62. ... (for url http://...)")."""
    _, found, said = message.partition("server response: ")
    return said.rsplit(" (for url ", 1)[0] if found else message


@app.command()
def query(
    ctx: typer.Context,
    store: str = typer.Argument(..., metavar="clickhouse|postgres"),
    sql: str = typer.Argument(..., help="One SQL statement."),
    json_out: bool = typer.Option(False, "--json", help="JSON rows."),
) -> None:
    """Run one SQL statement against ClickHouse or PostgreSQL and print the rows.

    Works while the platform runs: the local ClickHouse is served over HTTP to every process.
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
