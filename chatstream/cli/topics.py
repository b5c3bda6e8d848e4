"""``chatstream topics apply``: create or update the topics ``pipelines/topics.py`` declares."""

from __future__ import annotations

import typer
from rich.table import Table

from chatstream.cli.output import console, print_json
from chatstream.settings import Settings
from chatstream.topics import TopicAdmin, plan
from pipelines.topics import ALL_TOPICS

app = typer.Typer(help="Kafka topics: partitions, retention, cleanup policy.")


@app.command()
def apply(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan, change nothing."),
    json_out: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Create missing topics, grow partitions, correct configs. Exit 1 on drift it cannot fix."""
    settings: Settings = ctx.obj
    admin = TopicAdmin(settings.kafka_bootstrap_servers)
    replication = admin.replication_factor()
    actions = plan(ALL_TOPICS, admin.existing([t.name for t in ALL_TOPICS]), replication)
    if not dry_run:
        admin.apply(actions, replication)
    drift = [a for a in actions if a.kind == "drift"]
    if json_out:
        print_json(
            {
                "dry_run": dry_run,
                "replication_factor": replication,
                "actions": [{"topic": a.topic, "kind": a.kind, "detail": a.detail} for a in actions],
                "topics": [t.name for t in ALL_TOPICS],
            }
        )
    elif not actions:
        console.print(f"all {len(ALL_TOPICS)} topics match the declaration")
    else:
        table = Table(title="topics: " + ("plan (dry run)" if dry_run else "applied"))
        for column in ("topic", "change", "detail"):
            table.add_column(column)
        for a in actions:
            table.add_row(a.topic, a.kind, a.detail)
        console.print(table)
    if drift:
        raise typer.Exit(1)
