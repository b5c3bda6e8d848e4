"""``chatstream bench anomalies``: the anomaly job's detector over the Numenta Anomaly Benchmark.

Every NAB file is streamed point by point, in file order, through the detector and the
deduplication the job uses (``jobs.anomaly.detector`` with the job's default configuration, one
fresh detector per file, as a new key in the job), next to NAB's windowed-Gaussian baseline
computed in the same run. Written in NAB's results layout
(``OUT/chatstream/<category>/chatstream_<file>.csv``, ``timestamp,value,anomaly_score,label``;
the baseline's under ``OUT/windowedGaussian/``), so NAB's own scorer can read them.

``anomaly_score`` is the score of a new anomaly: the detector's score while no anomaly is open for
the series, and capped just below the opening threshold while one is (the job emits nothing new
then). Precision, recall and F1 (``bench.nab.window_metrics``) count the job's alerts (anomalies opened after NAB's
probationary period) against the labelled windows at the job's own threshold; the baseline, which
has no threshold of its own, at the threshold that maximises its NAB score. NAB scores (0: detects
nothing, 100: perfect) for the three profiles, each at its best threshold, as NAB reports them.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bench.nab import PROFILES, DataFile, load_corpus, nab_score, window_metrics, windowed_gaussian
from jobs.anomaly.detector import DetectorConfig, SeriesDetector
from jobs.anomaly.incident import Incident, IncidentPolicy, step


@dataclass(frozen=True)
class Detected:
    scores: list[float]
    alerts: int


def detect(data: DataFile, config: DetectorConfig, policy: IncidentPolicy) -> Detected:
    """One file through a fresh detector and the job's deduplication, point by point."""
    detector = SeriesDetector(config)
    incident = Incident()
    below = policy.open_at * (1 - 1e-9)
    scores: list[float] = []
    alerts = 0
    for i, value in enumerate(data.values):
        score = detector.observe(i, value).score
        was_open = incident.open
        incident, change = step(policy, incident, score, i)
        alerts += change is not None and change.value == "opened"
        scores.append(min(score, below) if was_open else score)
    return Detected(scores, alerts)


def write_results(out: Path, detector: str, data: DataFile, scores: Sequence[float]) -> None:
    category, file_name = data.name.split("/")
    path = out / detector / category / f"{detector}_{file_name}"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "value", "anomaly_score", "label"])
        for row in zip(data.timestamps, data.values, scores, data.labels(), strict=True):
            writer.writerow([row[0], f"{row[1]:g}", f"{row[2]:.12f}", row[3]])


def run_anomaly_bench(nab: Path, out: Path, console: Console, *, config: DetectorConfig | None = None,
                      policy: IncidentPolicy | None = None) -> dict[str, float]:  # fmt: skip
    config, policy = config or DetectorConfig(), policy or IncidentPolicy()
    corpus = load_corpus(nab)
    if not corpus:
        raise FileNotFoundError(f"no NAB data files under {nab / 'data'}")
    ours: list[list[float]] = []
    baseline: list[list[float]] = []
    detector_s = 0.0
    points = sum(len(d.values) for d in corpus)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("streaming NAB files", total=points)
        for data in corpus:
            started = time.perf_counter()
            ours.append(detect(data, config, policy).scores)
            detector_s += time.perf_counter() - started
            baseline.append(windowed_gaussian(data.values))
            write_results(out, "chatstream", data, ours[-1])
            write_results(out, "windowedGaussian", data, baseline[-1])
            progress.advance(task, len(data.values))
    figures: dict[str, float] = {"files": len(corpus), "points": points, "points_per_s": points / detector_s}
    mine = window_metrics(corpus, ours, policy.open_at)
    figures.update(precision=mine.precision, recall=mine.recall, f1=mine.f1, alerts=mine.alerts)
    base_best = nab_score(corpus, baseline).threshold
    theirs = window_metrics(corpus, baseline, base_best)
    figures.update(baseline_precision=theirs.precision, baseline_recall=theirs.recall, baseline_f1=theirs.f1,
                   baseline_alerts=theirs.alerts, baseline_threshold=base_best)  # fmt: skip
    for profile, costs in PROFILES.items():
        figures[f"nab_{profile}"] = nab_score(corpus, ours, costs).score
        figures[f"baseline_nab_{profile}"] = nab_score(corpus, baseline, costs).score
    return figures


def report(console: Console, figures: dict[str, float]) -> None:
    table = Table(title=f"NAB: {figures['files']:.0f} files, {figures['points']:,.0f} points")
    for column in ("measure", "chatstream detector", "windowed Gaussian (same run)", "published reference"):
        table.add_column(column)
    table.add_row("precision / recall / F1",
                  f"{figures['precision']:.2f} / {figures['recall']:.2f} / {figures['f1']:.2f}",
                  f"{figures['baseline_precision']:.2f} / {figures['baseline_recall']:.2f} / {figures['baseline_f1']:.2f}", "")  # fmt: skip
    table.add_row("alerts", f"{figures['alerts']:.0f}", f"{figures['baseline_alerts']:.0f}", "")
    published = {"standard": "RCF 51.7, HTM 70.5, WG 39.6", "reward_low_FP_rate": "RCF 38.4, HTM 62.6, WG 20.9",
                 "reward_low_FN_rate": "RCF 59.7, HTM 75.2, WG 47.4"}  # fmt: skip
    for profile in PROFILES:
        table.add_row(f"NAB score, {profile}", f"{figures[f'nab_{profile}']:.1f}",
                      f"{figures[f'baseline_nab_{profile}']:.1f}", published[profile])  # fmt: skip
    table.add_row("points/s (detector + deduplication)", f"{figures['points_per_s']:,.0f}", "", "")
    console.print(table)


def main(nab: Path, out: Path) -> None:
    console = Console(stderr=True)
    figures = run_anomaly_bench(nab, out, console)
    report(console, figures)
    console.print(f"results in NAB's layout under {out}")
    keys = ("precision", "recall", "f1", "baseline_precision", "baseline_recall", "baseline_f1", "points_per_s",
            "nab_standard", "nab_reward_low_FP_rate", "nab_reward_low_FN_rate", "baseline_nab_standard",
            "baseline_nab_reward_low_FP_rate", "baseline_nab_reward_low_FN_rate", "alerts", "baseline_alerts", "points")  # fmt: skip
    print(json.dumps({k: round(figures[k], 4) for k in keys}))
