"""The ``chatstream`` command: one typer app, one sub-app per concern.

Settings are loaded once here (``main``) and handed to every command through the context.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer
from rich.markup import escape

from chatstream.cli import bench, dashboard, db, infra, jobs, platform, query, schemas, topics
from chatstream.cli.output import err_console
from chatstream.errors import ChatstreamError
from chatstream.settings import load_settings

app = typer.Typer(
    help="chatstream: Avro chat events on Kafka, stream jobs, ClickHouse and PostgreSQL sinks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(infra.app, name="infra")
app.add_typer(topics.app, name="topics")
app.add_typer(schemas.app, name="schemas")
app.add_typer(db.app, name="db")
app.add_typer(bench.app, name="bench")
app.add_typer(jobs.app, name="job")
app.registered_commands += platform.app.registered_commands + query.app.registered_commands
app.registered_commands += dashboard.app.registered_commands


@app.callback()
def root(
    ctx: typer.Context,
    state_dir: Path | None = typer.Option(
        None, help="State directory of the local stack [env: CHATSTREAM_STATE_DIR]."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug detail to stderr."),
) -> None:
    """Load the settings once; every command reads them from the context."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING)
    overrides = {"state_dir": state_dir} if state_dir is not None else {}
    ctx.obj = load_settings(**overrides)


def main() -> None:
    try:
        app()
    except ChatstreamError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            err_console.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
