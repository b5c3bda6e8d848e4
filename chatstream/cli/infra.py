"""``chatstream infra up | down | status``: the real local services, no Docker."""

from __future__ import annotations

import typer
from rich.table import Table

from chatstream.cli.output import console, print_json, steps
from chatstream.cli.platform import readiness_urls
from chatstream.readiness import probe
from chatstream.settings import Settings
from infra.local import stack

app = typer.Typer(help="Start, stop and inspect the local Kafka, registry, PostgreSQL, ClickHouse.")


@app.command()
def up(ctx: typer.Context, json_out: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """Start every local service (idempotent); data survives down/up.

    Repairs as it goes: a service whose process died is started again, one that runs but does
    not answer its health check is stopped and started again (each is named in the output)."""
    settings: Settings = ctx.obj
    with steps("infra up", quiet=json_out) as step:
        restarted = stack.up(settings, on_step=step)
    if not json_out:
        for name, reason in restarted.items():
            console.print(f"restarted {name}: {reason}")
    _report(settings, json_out, restarted=restarted)


@app.command()
def down(ctx: typer.Context, json_out: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """Stop the local services; their data stays in the state directory.

    Bounded: PostgreSQL gets a fast shutdown (connected clients are disconnected), the others
    SIGTERM; whatever has not stopped after its timeout is killed."""
    settings: Settings = ctx.obj
    with steps("infra down", quiet=json_out) as step:
        stopped = stack.down(settings, on_step=step)
    if json_out:
        print_json({"stopped": stopped})
    else:
        console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@app.command()
def status(
    ctx: typer.Context, json_out: bool = typer.Option(False, "--json", help="JSON output.")
) -> None:
    """Each service, its endpoint, pid and log file, then whether the gateway and each sink
    (``chatstream run``) is ready and why not. Exit 3 when a service is not running."""
    settings: Settings = ctx.obj
    if not _report(settings, json_out, platform=True):
        raise typer.Exit(3)


def _report(
    settings: Settings, json_out: bool, *, platform: bool = False, restarted: dict[str, str] | None = None
) -> bool:
    statuses = stack.status(settings)
    components = {name: (url, *probe(url)) for name, url in readiness_urls(settings).items()} if platform else {}
    if json_out:
        print_json(
            {
                "endpoints": stack.endpoints(settings),
                "services": {s.name: s.to_json() for s in statuses},
                **({"restarted": restarted} if restarted is not None else {}),
                **({"platform": {name: {"readyz": url, "ready": ready, "detail": detail}
                                 for name, (url, ready, detail) in components.items()}} if platform else {}),
            }
        )  # fmt: skip
    else:
        table = Table(title=f"chatstream stack ({settings.state_dir})")
        for column in ("service", "where", "state", "endpoint", "pid", "log"):
            table.add_column(column, overflow="fold")
        for s in statuses:
            state = "[green]running[/]" if s.running else "[red]stopped[/]"
            table.add_row(
                s.name,
                "local" if s.local else "external",
                state,
                s.endpoint,
                str(s.pid or ""),
                str(s.log_file or s.detail),
            )
        console.print(table)
        if components:
            table = Table(title="chatstream run")
            for column in ("component", "state", "readyz"):
                table.add_column(column, overflow="fold")
            for name, (url, ready, detail) in components.items():
                state = {True: "[green]ready[/]", False: f"[red]NOT READY[/]: {detail}", None: "[dim]not running[/]"}[ready]
                table.add_row(name, state, url)
            console.print(table)
    return all(s.running for s in statuses)
