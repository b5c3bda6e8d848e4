"""``chatstream schemas register | check | docs``: the Avro contracts and the registry."""

from __future__ import annotations

import typer
from rich.table import Table

from chatstream.avro import docs as event_docs
from chatstream.avro.catalog import load_catalog
from chatstream.avro.registry import ContractRegistry
from chatstream.cli.output import console, err_console, print_json
from chatstream.settings import Settings

app = typer.Typer(help="Avro contracts in schemas/avro/: registration, compatibility, docs.")


@app.command()
def register(ctx: typer.Context, json_out: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """Register every schema (idempotent); the registry refuses incompatible changes."""
    settings: Settings = ctx.obj
    with ContractRegistry(settings.schema_registry_url) as registry:
        results = [registry.register(c) for c in load_catalog().values()]
    if json_out:
        print_json([r.__dict__ for r in results])
        return
    table = Table(title=f"registered at {settings.schema_registry_url}")
    for column in ("subject", "schema id", "version", ""):
        table.add_column(column)
    for r in results:
        table.add_row(r.subject, str(r.schema_id), str(r.version), "new" if r.new else "unchanged")
    console.print(table)


@app.command()
def check(ctx: typer.Context, json_out: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """Check every schema against all registered versions. Exit 1 on an incompatible change."""
    settings: Settings = ctx.obj
    with ContractRegistry(settings.schema_registry_url) as registry:
        results = [registry.check(c) for c in load_catalog().values()]
    if json_out:
        print_json([{**r.__dict__, "ok": r.ok} for r in results])
    else:
        table = Table(title=f"compatibility (BACKWARD_TRANSITIVE) at {settings.schema_registry_url}")
        for column in ("subject", "state", "registered versions", "incompatible with"):
            table.add_column(column)
        for r in results:
            state = r.state if r.ok else f"[bold red]{r.state}[/]"
            table.add_row(r.subject, state, ", ".join(map(str, r.versions)), ", ".join(map(str, r.incompatible_with)))
        console.print(table)
    if not all(r.ok for r in results):
        err_console.print("[bold red]error:[/] incompatible schema change (see above)")
        raise typer.Exit(1)


@app.command()
def docs(check_only: bool = typer.Option(False, "--check", help="Fail if docs/events.md is stale.")) -> None:
    """Regenerate docs/events.md from the .avsc files."""
    catalog = load_catalog()
    if check_only:
        fresh = event_docs.DOCS_PATH.exists() and event_docs.DOCS_PATH.read_text() == event_docs.render(catalog)
        if not fresh:
            err_console.print(f"[bold red]error:[/] {event_docs.DOCS_PATH} is stale: run chatstream schemas docs")
            raise typer.Exit(1)
        console.print(f"{event_docs.DOCS_PATH} is up to date")
        return
    changed = event_docs.write(catalog)
    console.print(f"{event_docs.DOCS_PATH} {'written' if changed else 'already up to date'}")
