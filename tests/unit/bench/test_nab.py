"""NAB's scoring, as its documentation defines it, and the anomalies benchmark on a tiny corpus."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from rich.console import Console

from bench.anomalies import run_anomaly_bench
from bench.nab import DataFile, load_corpus, nab_score, scaled_sigmoid, window_metrics, windowed_gaussian

ROWS = 1000  # probation: 150 rows


def data_file(name: str = "cat/a.csv", windows: list[tuple[int, int]] | None = None) -> DataFile:
    return DataFile(name, [f"t{i}" for i in range(ROWS)], [0.0] * ROWS, [(500, 599)] if windows is None else windows)


def with_detections(*at: int) -> list[float]:
    scores = [0.0] * ROWS
    for i in at:
        scores[i] = 1.0
    return scores


@pytest.mark.parametrize(("position", "expected"), [(-1.0, 0.98661), (-0.5, 0.84828), (0.0, 0.0), (1.0, -0.98661), (3.5, -1.0)])
def test_scaled_sigmoid(position: float, expected: float) -> None:
    assert scaled_sigmoid(position) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize(("detections", "expected"), [
    ((), 0.0),  # nothing detected: the null detector
    ((500,), 100.0),  # at the window's left edge: perfect
    ((500, 520, 590), 100.0),  # later detections in the same window add nothing
    ((599,), 100.0 * (1 + scaled_sigmoid(-1 / 100) / scaled_sigmoid(-1.0)) / 2),  # at its right edge: little
    ((100,), 0.0),  # inside the probationary period: not scored
])  # fmt: skip
def test_nab_score_of_one_window(detections: tuple[int, ...], expected: float) -> None:
    assert nab_score([data_file()], [with_detections(*detections)]).score == pytest.approx(expected)


def test_a_false_positive_costs_its_weight_and_the_threshold_is_the_best_one() -> None:
    scores = with_detections(500)
    scores[300] = 0.5  # a false positive before any window: -1 x 0.11, at a lower score
    result = nab_score([data_file()], [scores])
    assert (result.score, result.threshold, result.tp, result.fp) == (100.0, 1.0, 1, 0)
    scores[300] = 1.0  # now it cannot be left out
    assert nab_score([data_file()], [scores]).score == pytest.approx(100 * (2 - 0.11) / 2)


def test_window_metrics_count_alerts_not_points() -> None:
    scores = with_detections(*range(500, 510), 700, 701)  # one alert in the window, one outside
    metrics = window_metrics([data_file()], [scores], 0.5)
    assert (metrics.alerts, metrics.true_alerts, metrics.windows, metrics.windows_found) == (2, 1, 1, 1)
    assert (metrics.precision, metrics.recall) == (0.5, 1.0)
    assert metrics.f1 == pytest.approx(2 / 3)
    flapping = with_detections(500, 502, 504, 700)  # three alerts in the window: one window found
    metrics = window_metrics([data_file()], [flapping], 0.5)
    assert (metrics.alerts, metrics.true_alerts, metrics.precision) == (4, 3, 0.5)


def test_windowed_gaussian_scores_an_outlier_high() -> None:
    scores = windowed_gaussian([1.0, 2.0] * 100 + [50.0])
    assert scores[0] == 0.0 and scores[-1] > 0.9999 and max(scores[10:-1]) < 0.9


def write_corpus(root: Path) -> None:
    values = [10.0 + (i % 7) for i in range(1200)]
    values[900] = 80.0
    (root / "data" / "synthetic").mkdir(parents=True)
    (root / "labels").mkdir()
    with (root / "data" / "synthetic" / "spike.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "value"])
        writer.writerows([f"2024-01-01 {i // 60:02d}:{i % 60:02d}:00", v] for i, v in enumerate(values))
    windows = {"synthetic/spike.csv": [["2024-01-01 14:30:00.000000", "2024-01-01 15:29:00.000000"]]}
    (root / "labels" / "combined_windows.json").write_text(json.dumps(windows))


def test_the_bench_finds_the_spike_and_writes_nabs_layout(tmp_path: Path) -> None:
    write_corpus(tmp_path / "nab")
    (corpus,) = load_corpus(tmp_path / "nab")
    assert corpus.windows == [(870, 929)]
    figures = run_anomaly_bench(tmp_path / "nab", tmp_path / "out", Console(quiet=True))
    assert (figures["precision"], figures["recall"], figures["alerts"]) == (1.0, 1.0, 1)
    assert figures["nab_standard"] > 90 and figures["points_per_s"] > 0
    with (tmp_path / "out" / "chatstream" / "synthetic" / "chatstream_spike.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1200 and list(rows[0]) == ["timestamp", "value", "anomaly_score", "label"]
    assert rows[900]["label"] == "1" and float(rows[900]["anomaly_score"]) >= 0.9999
    assert (tmp_path / "out" / "windowedGaussian" / "synthetic" / "windowedGaussian_spike.csv").exists()
