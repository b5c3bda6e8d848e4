"""The Numenta Anomaly Benchmark's corpus and its scoring, for ``chatstream bench anomalies``.

``load_corpus`` reads NAB's data files and labelled windows (``<nab>/data/<category>/<file>.csv``,
``<nab>/labels/combined_windows.json``). ``nab_score`` is NAB's scoring as its documentation and
scorer define it: per file the first 15% of the rows (at most 750) are probationary and not scored;
a detection inside a window earns up to ``tp_weight`` by a scaled sigmoid of its position (earlier
is worth more, only a window's best detection counts), a window without one costs ``fn_weight``, a
detection outside every window costs ``fp_weight`` by the same sigmoid of its distance after the
preceding window (-1 if none precedes it). One threshold for the whole corpus, the one that scores
best; the score is normalised so that detecting nothing is 0 and a perfect detector 100.
``window_metrics`` counts alerts (a score rising to the threshold) against the windows, event by
event: recall is the share of windows with an alert, precision the windows found over those plus
the alerts outside every window.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

PROBATION_FRACTION = 0.15
PROBATION_MAX_ROWS = 750  # NAB: 15% of 5,000


@dataclass(frozen=True)
class Costs:
    tp_weight: float = 1.0
    fp_weight: float = 0.11
    fn_weight: float = 1.0


STANDARD = Costs()
LOW_FP = Costs(fp_weight=0.22)
LOW_FN = Costs(fn_weight=2.0)
PROFILES = {"standard": STANDARD, "reward_low_FP_rate": LOW_FP, "reward_low_FN_rate": LOW_FN}


@dataclass(frozen=True)
class DataFile:
    """One NAB series and its windows as row index ranges (inclusive)."""

    name: str  # <category>/<file>.csv
    timestamps: list[str]
    values: list[float]
    windows: list[tuple[int, int]]

    @property
    def category(self) -> str:
        return self.name.split("/")[0]

    @property
    def probation(self) -> int:
        return probation_rows(len(self.values))

    def labels(self) -> list[int]:
        """1 inside a window, else 0 (the ``label`` column of NAB's results files)."""
        out = [0] * len(self.values)
        for first, last in self.windows:
            out[first : last + 1] = [1] * (last - first + 1)
        return out


def probation_rows(rows: int) -> int:
    return int(min(math.floor(PROBATION_FRACTION * rows), PROBATION_MAX_ROWS))


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.strip())


def load_corpus(nab: Path) -> list[DataFile]:
    """Every data file under ``nab/data`` with its windows, sorted by name."""
    labels = nab / "labels" / "combined_windows.json"
    if not labels.is_file():
        raise FileNotFoundError(f"{labels} not found: is {nab} NAB's corpus (data/ and labels/)?")
    windows_by_file = json.loads(labels.read_text())
    files = []
    for path in sorted((nab / "data").glob("*/*.csv")):
        name = f"{path.parent.name}/{path.name}"
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        stamps = [r["timestamp"] for r in rows]
        index = {_parse(s): i for i, s in enumerate(stamps)}
        try:
            windows = [(index[_parse(a)], index[_parse(b)]) for a, b in windows_by_file.get(name, [])]
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{labels}: a window of {name} does not start or end on one of its timestamps ({exc})") from exc
        files.append(DataFile(name, stamps, [float(r["value"]) for r in rows], windows))
    return files


def scaled_sigmoid(position: float) -> float:
    """NAB's weight of a detection at ``position``: -1 the window's left edge, 0 its right edge,
    > 0 after it (in window widths)."""
    if position > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


@dataclass(frozen=True)
class _Point:
    score: float
    weight: float  # what detecting this point is worth (unweighted by the profile)
    window: int | None  # the corpus-wide window number, None outside every window


def _points(data: DataFile, scores: Sequence[float], first_window: int) -> list[_Point]:
    """The file's scorable points (after probation) with what detecting each is worth."""
    points: list[_Point] = []
    window_at: dict[int, int] = {}
    for n, (first, last) in enumerate(data.windows):
        for i in range(first, last + 1):
            window_at[i] = n
    previous_end: int | None = None  # right edge of the last window passed
    previous_width = 0.0
    for i, score in enumerate(scores):
        window = window_at.get(i)
        if window is not None:
            first, last = data.windows[window]
            weight = scaled_sigmoid(-(last - i + 1) / float(last - first + 1))
        elif previous_end is None:
            weight = -1.0
        else:
            weight = scaled_sigmoid(abs(previous_end - i) / (previous_width - 1)) if previous_width > 1 else -1.0
        if i >= data.probation:
            points.append(_Point(score, weight, None if window is None else first_window + window))
        if window is not None and i == data.windows[window][1]:
            previous_end, previous_width = i, float(data.windows[window][1] - data.windows[window][0] + 1)
    return points


@dataclass(frozen=True)
class NabScore:
    score: float  # normalised: 0 detects nothing, 100 perfect
    raw: float
    threshold: float
    tp: int
    fp: int
    fn: int


def nab_score(corpus: Sequence[DataFile], scores: Sequence[Sequence[float]], costs: Costs = STANDARD) -> NabScore:
    """NAB's normalised score over the corpus, at the threshold that maximises it."""
    points: list[_Point] = []
    windows = 0
    for data, file_scores in zip(corpus, scores, strict=True):
        points += _points(data, file_scores, windows)
        windows += len(data.windows)
    scored_windows = {p.window for p in points if p.window is not None}
    max_tp = scaled_sigmoid(-1.0)
    best_in = dict.fromkeys(scored_windows, -costs.fn_weight)
    false_part = 0.0
    null = -costs.fn_weight * len(scored_windows)
    best = NabScore(0.0, null, 1.1, 0, 0, len(scored_windows))
    tp = fp = 0
    ordered = sorted(points, key=lambda p: p.score, reverse=True)
    for k, point in enumerate(ordered):
        if point.window is None:
            fp += 1
            false_part += point.weight * costs.fp_weight
        else:
            tp += 1
            best_in[point.window] = max(best_in[point.window], point.weight * costs.tp_weight / max_tp)
        if k + 1 < len(ordered) and ordered[k + 1].score == point.score:
            continue  # one threshold takes every point of equal score
        raw = false_part + sum(best_in.values())
        if raw > best.raw:
            detected = sum(1 for v in best_in.values() if v > -costs.fn_weight)
            best = NabScore(0.0, raw, point.score, tp, fp, len(scored_windows) - detected)
    perfect = costs.tp_weight * len(scored_windows)
    normalised = 100.0 * (best.raw - null) / (perfect - null) if perfect != null else 0.0
    return NabScore(normalised, best.raw, best.threshold, best.tp, best.fp, best.fn)


@dataclass(frozen=True)
class WindowMetrics:
    alerts: int
    true_alerts: int
    windows: int
    windows_found: int

    @property
    def precision(self) -> float:
        """Windows found over windows found plus alerts outside every window: a second alert in
        a window already found is a duplicate, neither right nor wrong (else a detector that
        flaps inside a window would look more precise than one that alerts once)."""
        detections = self.windows_found + self.alerts - self.true_alerts
        return self.windows_found / detections if detections else 0.0

    @property
    def recall(self) -> float:
        return self.windows_found / self.windows if self.windows else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def window_metrics(corpus: Sequence[DataFile], scores: Sequence[Sequence[float]], threshold: float) -> WindowMetrics:
    """Alerts (a score reaching ``threshold`` after a point below it) after probation, against
    the labelled windows."""
    alerts = true_alerts = windows = found = 0
    for data, file_scores in zip(corpus, scores, strict=True):
        start = data.probation
        inside: set[int] = set()
        for first, last in data.windows:
            if last >= start:
                windows += 1
                inside.update(range(max(first, start), last + 1))
        hit_windows = set()
        below = True
        for i in range(start, len(file_scores)):
            above = file_scores[i] >= threshold
            if above and below:
                alerts += 1
                if i in inside:
                    true_alerts += 1
                    hit_windows.add(next(n for n, (a, b) in enumerate(data.windows) if a <= i <= b))
            below = not above
        found += len(hit_windows)
    return WindowMetrics(alerts, true_alerts, windows, found)


def windowed_gaussian(values: Sequence[float], window: int = 6400, step: int = 100) -> list[float]:
    """NAB's windowed-Gaussian baseline: each value's two-sided normal probability under the mean
    and deviation of the values before it (up to ``window`` of them, refreshed every ``step``
    once the window is full); the first value scores 0."""
    scores: list[float] = []
    kept: list[float] = []
    pending: list[float] = []
    mean, m2 = 0.0, 0.0  # Welford's running mean and sum of squares while the window fills
    std = 1.0
    for value in values:
        scores.append(1.0 - 0.5 * math.erfc(abs(value - mean) / std / math.sqrt(2)) if kept else 0.0)
        if len(kept) < window:
            kept.append(value)
            delta = value - mean
            mean += delta / len(kept)
            m2 += delta * (value - mean)
            std = math.sqrt(m2 / len(kept))
        else:
            pending.append(value)
            if len(pending) < step:
                continue
            kept = kept[step:] + pending
            pending = []
            array = np.asarray(kept)
            mean, std = float(array.mean()), float(array.std())
        std = std or 1e-6
    return scores
