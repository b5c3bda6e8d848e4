"""``chatstream bench ingest | dispatch | engagement | anomalies | scaling | ops-jobs``: benchmarks against raw baselines measured in the same run."""

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


@app.command()
def scaling(
    trace: list[Path] = typer.Option(None, "--trace", exists=True, dir_okay=False,
                                     help="A load trace CSV (timestamp,value); repeat for several."),
    nab: Path | None = typer.Option(None, "--nab", exists=True, file_okay=False,
                                    help="Without --trace: NAB's ELB request count and NYC taxi traces from this corpus."),
    quick: bool = typer.Option(False, "--quick", help="Smaller forecasters (under a minute)."),
    as_json: bool = typer.Option(False, "--json", help="Only the JSON line."),
) -> None:  # fmt: skip
    """Replay load traces through the scaling job's forecaster and replica policy and a simulated
    cluster (replicas start after a delay), against a reactive HPA-style policy in the same run:
    forecast MAPE vs seasonal-naive, SLO-violation minutes and replica-minutes of both. Needs no
    services. The last output line is JSON."""
    from bench.scaling import NAB_TRACES, main

    traces = list(trace or [])
    if not traces:
        if nab is None:
            raise typer.BadParameter("give --trace CSV (one or more), or --nab DIR for NAB's two load traces", param_hint="--trace")
        traces = [nab / "data" / name for name in NAB_TRACES]
        missing = [str(t) for t in traces if not t.is_file()]
        if missing:
            raise typer.BadParameter(f"not in the NAB corpus: {', '.join(missing)}", param_hint="--nab")
    try:
        main(traces, quick, as_json)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command("ops-jobs")
def ops_jobs(
    ctx: typer.Context,
    quick: bool = typer.Option(False, "--quick", help="200,000 records instead of 600,000 (under 5 minutes)."),
    as_json: bool = typer.Option(False, "--json", help="Only the JSON line on standard output (progress on standard error)."),
) -> None:
    """The anomaly and scaling jobs over a preload of ops.metrics.v1 records against one raw
    consumer decoding them: points/s of each (target: 10,000). The last output line is JSON."""
    from bench.ops_jobs import main

    main(ctx.obj, quick, as_json)
