"""The series detector: warm-up, a spike and a level shift found, quiet on noise, restart-safe."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jobs.anomaly.detector import DetectorConfig, SeriesDetector, features

CONFIG = DetectorConfig(window=500, train_points=300, refit_every=100, warmup_points=30)


def noise(n: int, seed: int = 1) -> list[float]:
    return list(100 + np.random.default_rng(seed).normal(0, 2, n))


def scores(detector: SeriesDetector, values: list[float]) -> list[float]:
    return [detector.observe(i * 60_000, v).score for i, v in enumerate(values)]


def test_a_new_series_scores_nothing_while_it_warms_up() -> None:
    got = scores(SeriesDetector(CONFIG), [1.0, 1000.0] * 15)
    assert got == [0.0] * 30


def test_noise_stays_below_the_threshold_and_a_spike_does_not() -> None:
    detector = SeriesDetector(CONFIG)
    quiet = scores(detector, noise(600))
    assert max(quiet[30:]) < 0.9999
    spike = detector.observe(0, 160.0)  # 30 deviations
    assert spike.score >= 0.9999
    assert spike.model_z is not None  # the model was asked: the baseline found it unusual
    assert "observed 160" in spike.explanation(160.0) and "isolation forest" in spike.explanation(160.0)


def test_a_level_shift_scores_high_at_once() -> None:
    detector = SeriesDetector(CONFIG)
    scores(detector, noise(600))
    shifted = scores(detector, [v + 40 for v in noise(10, seed=2)])
    assert shifted[0] >= 0.9999 and min(shifted) >= 0.999


def test_a_restored_detector_scores_as_the_one_it_replaces() -> None:
    values = noise(900) + [130.0, 95.0, 100.0] + noise(200, seed=3)
    straight = SeriesDetector(CONFIG)
    expected = scores(straight, values)
    first = SeriesDetector(CONFIG)
    scores(first, values[:650])
    state = json.loads(json.dumps(first.snapshot()))  # through a Faust table's JSON
    second = SeriesDetector.restore(CONFIG, state)
    assert scores(second, values[650:]) == pytest.approx(expected[650:], rel=1e-9, abs=1e-12)


def test_a_weight_of_zero_fits_no_model() -> None:
    detector = SeriesDetector(DetectorConfig(window=200, model_weight=0.0, refit_every=50))
    scores(detector, noise(300))
    assert detector.model is None


def test_the_live_features_are_the_training_features() -> None:
    values = np.array(noise(40))
    whole = features(values)
    for i in range(10, 40):
        assert features(values[i - 5 : i + 1])[-1] == pytest.approx(whole[i])
