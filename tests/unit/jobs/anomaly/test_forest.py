"""The compiled forest scores exactly as scikit-learn's IsolationForest does."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from jobs.anomaly.forest import CompiledForest, average_path_length


@pytest.mark.parametrize(("samples", "features", "max_features"), [(500, 3, 1.0), (64, 2, 1.0), (300, 4, 0.5)])
def test_the_compiled_forest_scores_as_scikit_learn(samples: int, features: int, max_features: float) -> None:
    rng = np.random.default_rng(7)
    train = rng.normal(size=(samples, features))
    model = IsolationForest(n_estimators=40, max_samples=min(128, samples), max_features=max_features,
                            random_state=3).fit(train)  # fmt: skip
    forest = CompiledForest(model)
    probe = np.vstack([rng.normal(size=(50, features)), rng.normal(5, 1, size=(10, features))])
    expected = -model.score_samples(probe)
    got = np.array([forest.score(x) for x in probe])
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got[50:].mean() > got[:50].mean()  # the far points are the strange ones


@pytest.mark.parametrize(("n", "expected"), [(1, 0.0), (2, 1.0), (256, 10.244)])
def test_average_path_length(n: int, expected: float) -> None:
    assert average_path_length(n) == pytest.approx(expected, abs=1e-3)
