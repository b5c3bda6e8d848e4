"""``chatstream bench ingest``: benchmarks against raw baselines measured in the same run."""

from __future__ import annotations

import typer

app = typer.Typer(help="Benchmarks; figures and ratios go to bench/RESULTS.md by hand.")


@app.command()
def ingest(
    ctx: typer.Context,
    quick: bool = typer.Option(False, "--quick", help="Smaller run (under 3 minutes)."),
) -> None:
    """Gateway and sinks vs raw produce / insert / COPY. The last output line is JSON."""
    from bench.ingest import main

    main(ctx.obj, quick)
