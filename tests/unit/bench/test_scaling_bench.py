"""The scaling benchmark end to end on a small synthetic trace: its figures and its last line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.scaling import BenchConfig, load_trace, main, run_scaling_bench

KEYS = {"mape", "mape_seasonal_naive", "slo_violation_min", "slo_violation_min_reactive", "replica_min",
        "replica_min_reactive"}  # fmt: skip


def write_trace(path: Path, days: int, seed: int = 0) -> Path:
    """Half-hour rows from 2014-07-01: a daily peak in the afternoon, 10 % noise."""
    rows = np.arange(days * 48)
    hour = (rows % 48) / 2
    load = (200 + 1500 * np.exp(-(((hour - 15) / 3) ** 2))) * np.random.default_rng(seed).lognormal(0, 0.1, rows.size)
    lines = ["timestamp,value"]
    for i, value in zip(rows.tolist(), load.tolist(), strict=True):
        lines.append(f"2014-07-{1 + i // 48:02d} {(i % 48) // 2:02d}:{30 * (i % 2):02d}:00,{value:.1f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_synthetic_trace_gives_sane_figures(tmp_path: Path) -> None:
    trace = write_trace(tmp_path / "daily.csv", days=8)
    assert load_trace(trace).step_s == 1800.0
    figures = run_scaling_bench([trace], config=BenchConfig(refit_every_steps=48))
    assert KEYS <= figures.keys()
    assert figures["daily.rows"] == 8 * 48
    assert 0 < figures["mape"] < 1 and 0 < figures["mape_seasonal_naive"] < 1
    for key in ("replica_min", "replica_min_reactive"):  # at least one replica, every one of 8 days
        assert 8 * 24 * 60 <= figures[key] < 8 * 24 * 60 * 200
    for key in ("slo_violation_min", "slo_violation_min_reactive"):
        assert 0 <= figures[key] < 8 * 24 * 60 and figures[key] % 30 == 0  # whole half-hour rows
    assert figures["slo_violation_min"] < figures["slo_violation_min_reactive"]  # a daily ramp: the point of it
    assert figures["violation_reduction"] == pytest.approx(
        1 - figures["slo_violation_min"] / figures["slo_violation_min_reactive"])  # fmt: skip


def test_main_ends_with_one_json_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = write_trace(tmp_path / "short.csv", days=3)
    main([trace], quick=True)
    out = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(out[-1])
    assert KEYS <= figures.keys() and "short.replica_ratio" in figures
    assert any("overall" in line for line in out[:-1])  # the table came first
