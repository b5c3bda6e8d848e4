"""Scaling benchmark: the predictive replica policy against a reactive HPA, on recorded load.

Each trace (a CSV of ``timestamp,value``, such as NAB's ``NAB_TRACES``) is replayed through
``jobs.scaling``. The forecaster is refitted every ``refit_every_steps`` (288) steps from the rows
seen so far, never a later one; between refits the last model forecasts each step from the rows
before it (in one batch per refit: the features read only earlier rows, so this is the same as a
``predict`` call per step). Its upper bound (the 0.9 quantile) drives ``decide`` on one simulated
cluster; ``reactive_replicas`` (the HPA algorithm, target utilisation 0.7) drives another. Both see
the same trace, start-up delay and capacity in the same run.

Time compression: one trace row is one control step, and one control step is ``control_step_s``
(60 s) of cluster time: a 5-minute trace runs 5x faster, a 30-minute one 30x. The cluster's
start-up delay (120 s: two steps), the HPA's stabilisation window (300 s) and the policy's
scale-down cooldown (300 s) are in cluster time. The forecaster works in the trace's own time
(its rows, its calendar): it forecasts the peak of the next ``delay + 1`` rows, the rows that the
replicas decided now must carry before a later decision can add any. Minutes are reported in the
trace's own time (a violating row counts its own length), so the two policies compare, and so
does one trace with the other.

Capacity per replica is sized from the trace so that its median load needs ``median_replicas`` (4)
replicas at the target utilisation: a fixed setting of the service, the same for both policies.

Figures per trace: forecast MAPE (and MdAPE) against seasonal-naive's (the same window a day
earlier) over the same rows (those forecast by a fitted model), SLO-violation minutes (load above
ready capacity) and replica-minutes (requested replicas, starting ones included) for both.
Overall: minutes summed, MAPE averaged over traces. ``quick`` grows 60 trees a fit, not 150. A table
first; the last line of output is one JSON object.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import numpy as np
from rich.console import Console
from rich.table import Table

from jobs.scaling.features import FloatArray, History, peak_targets
from jobs.scaling.forecaster import Forecaster, ForecasterConfig, ForecastBatch, SeasonalNaiveForecaster
from jobs.scaling.policy import (
    HpaConfig,
    HpaState,
    PolicyConfig,
    PolicyState,
    decide,
    reactive_replicas,
    reactive_value,
)
from jobs.scaling.simulation import ClusterConfig, ClusterState, simulate

NAB_TRACES = ("realAWSCloudwatch/elb_request_count_8c0756.csv", "realKnownCause/nyc_taxi.csv")


@dataclass(frozen=True)
class BenchConfig:
    control_step_s: float = 60.0  # cluster time per trace row
    startup_delay_s: float = 120.0
    target_utilisation: float = 0.7
    median_replicas: float = 4.0
    scale_down_window_s: float = 300.0  # HPA stabilisation and the policy's cooldown alike
    min_replicas: int = 1
    max_replicas: int = 200
    refit_every_steps: int = 288
    upper_quantile: float = 0.9
    headroom: float = 1.0
    min_confidence: float = 0.5
    interval: Literal["quantile", "residual"] = "quantile"


def load_trace(path: Path) -> History:
    """A ``timestamp,value`` CSV (timestamps in UTC) as a History at its median step."""
    stamps, values = [], []
    with path.open(newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            try:
                when = datetime.fromisoformat(row["timestamp"].strip()).replace(tzinfo=timezone.utc)
                stamps.append(when.timestamp())
                values.append(float(row["value"]))
            except (KeyError, AttributeError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}, line {line}: not a timestamp,value row ({exc})") from exc
    if len(values) < 3:
        raise ValueError(f"{path}: {len(values)} rows; a trace needs a timestamp,value header and rows")
    step_s = float(np.median(np.diff(stamps))) if len(stamps) > 1 else 60.0
    return History.of(stamps, values, step_s)


def forecasts(history: History, forecaster: Forecaster, refit_every_steps: int) -> tuple[ForecastBatch, np.ndarray]:
    """The forecast made at each step t >= 1 (after row t - 1) by the model of the last refit at or
    before t, fitted on rows [0, refit) only; and whether a fitted model made it."""
    n = len(history)
    parts: list[ForecastBatch] = []
    fitted = np.zeros(n, dtype=np.bool_)
    bounds = list(range(refit_every_steps, n, refit_every_steps))
    for start, end in zip([1, *bounds], [*bounds, n], strict=True):
        if start > 1:
            forecaster.fit(history.head(start))
        parts.append(forecaster.predict_rows(history, np.arange(start, end, dtype=np.int64)))
        fitted[start:end] = forecaster.fitted
    nan = np.array([np.nan])
    return ForecastBatch(
        np.concatenate([nan, *(p.value for p in parts)]),
        np.concatenate([nan, *(p.lower for p in parts)]),
        np.concatenate([nan, *(p.upper for p in parts)]),
        np.concatenate([[0.0], *(p.confidence for p in parts)]),
    ), fitted


def mape(forecast: FloatArray, actual: FloatArray) -> float:
    """Mean absolute percentage error over the rows with a positive actual (NaN without any)."""
    keep = actual > 0
    if not keep.any():
        return math.nan
    return float(np.mean(np.abs(forecast[keep] - actual[keep]) / actual[keep]))


def mdape(forecast: FloatArray, actual: FloatArray) -> float:
    """Median absolute percentage error: MAPE without the rows where load nearly stopped (the
    taxi trace's blizzard makes its MAPE)."""
    keep = actual > 0
    if not keep.any():
        return math.nan
    return float(np.median(np.abs(forecast[keep] - actual[keep]) / actual[keep]))


def run_trace(history: History, config: BenchConfig, *, quick: bool = False) -> dict[str, float]:
    loads = history.values
    n = len(history)
    capacity = float(np.median(loads)) / (config.median_replicas * config.target_utilisation)
    delay_steps = math.ceil(config.startup_delay_s / config.control_step_s - 1e-9)
    horizon_steps = delay_steps + 1
    forecaster = Forecaster(ForecasterConfig(
        step_s=history.step_s, horizon_s=horizon_steps * history.step_s,
        upper_quantile=config.upper_quantile, interval=config.interval, max_iter=60 if quick else 150,
    ))  # fmt: skip
    refit = config.refit_every_steps
    batch, fitted = forecasts(history, forecaster, refit)

    scored = np.flatnonzero(fitted[: n - horizon_steps + 1])
    actual = peak_targets(loads, scored, horizon_steps)
    naive = SeasonalNaiveForecaster(history.step_s, horizon_steps * history.step_s).predict_rows(history, scored)

    cluster = ClusterConfig(capacity, delay_steps, step_minutes=history.step_s / 60)
    policy = PolicyConfig(
        capacity_per_replica=capacity, min_replicas=config.min_replicas, max_replicas=config.max_replicas,
        scale_down_cooldown_s=config.scale_down_window_s, target_utilisation=config.target_utilisation,
        min_confidence=config.min_confidence, headroom=config.headroom,
    )  # fmt: skip
    hpa = HpaConfig(
        capacity_per_replica=capacity, target_utilisation=config.target_utilisation,
        min_replicas=config.min_replicas, max_replicas=config.max_replicas,
        scale_down_stabilisation_s=config.scale_down_window_s,
    )  # fmt: skip
    initial = max(config.min_replicas, reactive_value(policy, float(loads[0])))

    policy_state = PolicyState(initial)
    reasons: dict[str, int] = {}

    def predictive(t: int, observed: float, _: ClusterState) -> int:
        nonlocal policy_state
        decision = decide(policy, policy_state, float(batch.upper[t]), float(batch.confidence[t]),
                          observed, t * config.control_step_s)  # fmt: skip
        policy_state = decision.new_state
        reasons[decision.reason] = reasons.get(decision.reason, 0) + 1
        return decision.desired

    hpa_state = HpaState(initial)

    def reactive(t: int, observed: float, now: ClusterState) -> int:
        nonlocal hpa_state
        decision = reactive_replicas(hpa, hpa_state, observed, now.ready, t * config.control_step_s)
        hpa_state = decision.new_state
        return decision.desired

    ours = simulate(loads.tolist(), predictive, cluster, initial)
    theirs = simulate(loads.tolist(), reactive, cluster, initial)
    return {
        "rows": float(n),
        "step_min": history.step_s / 60,
        "capacity_per_replica": capacity,
        "startup_delay_steps": float(delay_steps),
        "horizon_steps": float(horizon_steps),
        "mape": mape(batch.value[scored], actual),
        "mape_seasonal_naive": mape(naive, actual),
        "mdape": mdape(batch.value[scored], actual),
        "mdape_seasonal_naive": mdape(naive, actual),
        "interval_coverage": float(np.mean(actual <= batch.upper[scored])) if scored.size else math.nan,
        "slo_violation_min": ours.slo_violation_min,
        "slo_violation_min_reactive": theirs.slo_violation_min,
        "replica_min": ours.replica_min,
        "replica_min_reactive": theirs.replica_min,
        "violation_reduction": _reduction(ours.slo_violation_min, theirs.slo_violation_min),
        "replica_ratio": _ratio(ours.replica_min, theirs.replica_min),
        "fallback_share": reasons.get("reactive", 0) / max(1, sum(reasons.values())),
    }


def run_scaling_bench(traces: list[Path], *, config: BenchConfig | None = None, quick: bool = False) -> dict[str, float]:
    """Every trace through both policies; per-trace figures as ``<trace>.<figure>``, then overall."""
    config = config or BenchConfig()
    figures: dict[str, float] = {}
    per_trace = []
    for path in traces:
        started = time.perf_counter()
        result = run_trace(load_trace(path), config, quick=quick)
        result["seconds"] = time.perf_counter() - started
        per_trace.append(result)
        figures.update({f"{path.stem}.{key}": value for key, value in result.items()})
    total = {k: sum(r[k] for r in per_trace) for k in
             ("slo_violation_min", "slo_violation_min_reactive", "replica_min", "replica_min_reactive")}  # fmt: skip
    figures.update({
        "mape": float(np.mean([r["mape"] for r in per_trace])),
        "mape_seasonal_naive": float(np.mean([r["mape_seasonal_naive"] for r in per_trace])),
        "mdape": float(np.mean([r["mdape"] for r in per_trace])),
        "mdape_seasonal_naive": float(np.mean([r["mdape_seasonal_naive"] for r in per_trace])),
        **total,
        "violation_reduction": _reduction(total["slo_violation_min"], total["slo_violation_min_reactive"]),
        "replica_ratio": _ratio(total["replica_min"], total["replica_min_reactive"]),
    })  # fmt: skip
    return figures


def _reduction(ours: float, theirs: float) -> float:
    return 1.0 - ours / theirs if theirs else 0.0


def _ratio(ours: float, theirs: float) -> float:
    return ours / theirs if theirs else 0.0


def _table(figures: dict[str, float], names: list[str]) -> Table:
    table = Table(title="scaling: predictive policy vs reactive HPA (minutes in the traces' own time)")
    columns = ("trace", "MAPE", "MAPE s-naive", "MdAPE", "MdAPE s-naive", "SLO-viol. min", "reactive",
               "fewer", "replica-min", "reactive", "ratio", "fallback")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "trace" else "right")
    for name in [*names, "overall"]:
        key = "" if name == "overall" else f"{name}."

        def get(figure: str) -> float:
            return figures.get(f"{key}{figure}", 0.0)

        table.add_row(
            name, f"{get('mape'):.1%}", f"{get('mape_seasonal_naive'):.1%}", f"{get('mdape'):.1%}",
            f"{get('mdape_seasonal_naive'):.1%}", f"{get('slo_violation_min'):,.0f}",
            f"{get('slo_violation_min_reactive'):,.0f}", f"{get('violation_reduction'):.0%}",
            f"{get('replica_min'):,.0f}", f"{get('replica_min_reactive'):,.0f}", f"{get('replica_ratio'):.2f}x",
            "" if name == "overall" else f"{get('fallback_share'):.0%}",
        )  # fmt: skip
    return table


SUMMARY_KEYS = ("mape", "mape_seasonal_naive", "slo_violation_min", "slo_violation_min_reactive", "replica_min",
                "replica_min_reactive", "violation_reduction", "replica_ratio", "mdape", "mdape_seasonal_naive")  # fmt: skip


def main(traces: list[Path], quick: bool = False, as_json: bool = False) -> None:
    """Run the bench; unless ``as_json``, a table and a line per trace first. The last line is one
    JSON object: the overall figures, then each trace's as ``<trace>.<figure>``."""
    figures = run_scaling_bench(traces, quick=quick)
    if not as_json:
        console = Console()
        if not console.is_terminal:
            console = Console(width=160)
        console.print(_table(figures, [p.stem for p in traces]))
        for path in traces:
            def get(figure: str, key: str = path.stem) -> float:
                return figures[f"{key}.{figure}"]

            console.print(
                f"{path.stem}: {get('rows'):.0f} rows of {get('step_min'):.0f} min, one per {BenchConfig().control_step_s:.0f} s "
                f"control step; capacity {get('capacity_per_replica'):,.1f}/replica; start-up "
                f"{get('startup_delay_steps'):.0f} steps; forecast: peak of the next {get('horizon_steps'):.0f} rows, "
                f"upper bound held {get('interval_coverage'):.0%}; {get('seconds'):.1f} s"
            )  # fmt: skip
    summary = {k: round(figures[k], 4) for k in SUMMARY_KEYS}
    per_trace = {k: round(v, 4) for k, v in figures.items() if "." in k and k.split(".", 1)[1] in SUMMARY_KEYS}
    print(json.dumps(summary | per_trace))
