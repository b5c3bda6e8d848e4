"""A component's load, measured from its own Prometheus metrics: what ``ops.metrics.v1`` carries.

Each component names its ``Measure``s: a Prometheus family (optionally only the samples whose
labels match), read as a rate per second (a counter's increase over the interval), a gauge (the
sum of its samples), or a latency percentile (``p50``/``p95`` of a histogram over the interval,
interpolated in its buckets as Prometheus' ``histogram_quantile`` does). ``read`` takes what a
registry collects now; ``measure`` compares two readings. Pure: the publisher
(``chatstream.ops_publisher``) owns the clock, the registry and Kafka.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from prometheus_client import Metric

Kind = Literal["rate", "gauge", "p50", "p95"]
QUANTILES = {"p50": 0.5, "p95": 0.95}


@dataclass(frozen=True)
class Measure:
    name: str  # as published, e.g. "requests_per_s"
    family: str  # the Prometheus family, as collected (counters without "_total")
    kind: Kind
    unit: str
    where: Mapping[str, str] = field(default_factory=dict)  # only samples with these labels ("5*": a prefix)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k, "").startswith(v[:-1]) if v.endswith("*") else labels.get(k) == v
                   for k, v in self.where.items())  # fmt: skip


@dataclass(frozen=True)
class Reading:
    """Per measure: a counter's or gauge's sum, or a histogram's cumulative buckets (le -> count)."""

    values: dict[str, float]
    buckets: dict[str, dict[float, float]]


def read(measures: Iterable[Measure], families: Iterable[Metric]) -> Reading:
    by_family: dict[str, list[Metric]] = {}
    for family in families:
        by_family.setdefault(family.name, []).append(family)
    values: dict[str, float] = {}
    buckets: dict[str, dict[float, float]] = {}
    for m in measures:
        samples = [s for f in by_family.get(m.family, []) for s in f.samples if m.matches(s.labels)]
        if m.kind in QUANTILES:
            found: dict[float, float] = {}
            for s in samples:
                if s.name.endswith("_bucket"):
                    le = float(s.labels["le"])
                    found[le] = found.get(le, 0.0) + s.value
            buckets[m.name] = found
        else:
            suffix = "_total" if m.kind == "rate" else ""
            values[m.name] = sum(s.value for s in samples if s.name == m.family + suffix)
    return Reading(values, buckets)


def quantile(q: float, cumulative: Mapping[float, float]) -> float | None:
    """``histogram_quantile``: the q-quantile of cumulative bucket counts (None: no observations).
    Linear within the bucket; above the last finite bound, that bound."""
    bounds = sorted(cumulative)
    if not bounds or cumulative[bounds[-1]] <= 0:
        return None
    rank = q * cumulative[bounds[-1]]
    below, lower = 0.0, 0.0
    for bound in bounds:
        count = cumulative[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        below, lower = count, bound
    return lower


def measure(measures: Iterable[Measure], before: Reading | None, now: Reading, elapsed_s: float) -> list[tuple[Measure, float]]:
    """Each measure's value over the interval (rates and percentiles need ``before``; a counter
    that went down, a restart, counts from zero)."""
    out: list[tuple[Measure, float]] = []
    for m in measures:
        if m.kind == "gauge":
            out.append((m, now.values[m.name]))
        elif before is None or elapsed_s <= 0:
            continue
        elif m.kind == "rate":
            increase = now.values[m.name] - before.values[m.name]
            out.append((m, (increase if increase >= 0 else now.values[m.name]) / elapsed_s))
        else:
            old = before.buckets[m.name]
            delta = {le: count - old.get(le, 0.0) for le, count in now.buckets[m.name].items()}
            if any(v < 0 for v in delta.values()):
                delta = dict(now.buckets[m.name])
            found = quantile(QUANTILES[m.kind], delta)
            if found is not None:
                out.append((m, found))
    return out
