"""A component's Prometheus ``/metrics`` read as numbers (the dispatch job's, for the bench and
the demo): every sample by its name and labels, and quantiles of a histogram's buckets."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


def samples(url: str, timeout_s: float = 5.0) -> dict[str, float]:
    """``{url}`` (a ``/metrics``) as ``{'name{label="value",...}': value}``; labels sorted, none:
    the bare name. HTTPError when it does not answer."""
    answer = httpx.get(url, timeout=timeout_s)
    answer.raise_for_status()
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


def histogram(found: dict[str, float], name: str) -> list[tuple[float, float]]:
    """A histogram's cumulative buckets as (upper bound, count), in order, ``+Inf`` last."""
    prefix = f'{name}_bucket{{le="'
    buckets = [(float(key[len(prefix) : -2]), value) for key, value in found.items() if key.startswith(prefix)]
    return sorted(buckets)


def delta(after: list[tuple[float, float]], before: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The buckets of what was observed between two scrapes."""
    counts = dict(before)
    return [(bound, count - counts.get(bound, 0.0)) for bound, count in after]


def bucket_quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """The ``q`` quantile of cumulative buckets, interpolated linearly within its bucket (as
    Prometheus's ``histogram_quantile``); NaN when empty. Only as precise as the buckets."""
    if not buckets or buckets[-1][1] <= 0:
        return float("nan")
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            share = (rank - lower_count) / (count - lower_count) if count > lower_count else 1.0
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound
