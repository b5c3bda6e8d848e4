"""``chatstream bench ingest | dispatch | engagement | anomalies``: benchmarks against raw baselines measured in the same run."""

from __future__ import annotations

import os
from pathlib import Path

import typer

app = typer.Typer(help="Benchmarks; figures and ratios go to bench/RESULTS.md by hand.")


@app.command()
def ingest(
    ctx: typer.Context,
    quick: bool = typer.Option(False, "--quick", help="Smaller run (under 3 minutes)."),
    gateway_workers: int = typer.Option(
        os.cpu_count() or 1, min=1, help="Gateway worker processes (default: one per core)."
    ),
) -> None:
    """Gateway and sinks vs raw produce / insert / COPY. The last output line is JSON."""
    from bench.ingest import main

    main(ctx.obj, quick, gateway_workers)


@app.command()
def dispatch(
    ctx: typer.Context,
    quick: bool = typer.Option(False, "--quick", help="Shorter phases (under 3 minutes)."),
    gateway_workers: int = typer.Option(1, min=1, help="Gateway worker processes."),
) -> None:
    """Chat completions through gateway + Kafka + dispatch job: added time to first token at 50
    and 200 streams against the simulated provider called directly, and completed requests/s of
    one dispatch worker. The last output line is JSON."""
    from bench.dispatch import main

    main(ctx.obj, quick, gateway_workers)


@app.command()
def engagement(
    ctx: typer.Context,
    quick: bool = typer.Option(False, "--quick", help="Smaller run (under 5 minutes)."),
) -> None:
    """The engagement job's sustained events/s (Kafka to Kafka) against one raw consumer, window
    freshness in ClickHouse at a steady rate through the gateway, and the analytics API's p95 over
    millions of events against the same SQL sent directly. The last output line is JSON."""
    from bench.engagement import main

    main(ctx.obj, quick)


@app.command()
def anomalies(
    nab: Path = typer.Option(..., "--nab", exists=True, file_okay=False,
                             help="The NAB corpus: a folder with data/ and labels/combined_windows.json."),
    out: Path = typer.Option(Path(".chatstream/bench-out/anomalies"), "--out", file_okay=False,
                             help="Where to write the results, in NAB's layout (<out>/chatstream/<category>/...)."),
) -> None:  # fmt: skip
    """The anomaly job's detector over every NAB file, point by point, against NAB's
    windowed-Gaussian baseline in the same run: precision, recall and F1 against the labelled
    windows, NAB's scores, points/s. Needs no services. The last output line is JSON."""
    from bench.anomalies import main

    try:
        main(nab, out)
    except (FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
