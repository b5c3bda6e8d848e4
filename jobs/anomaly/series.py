"""Which minute-level series the anomaly job watches, and how records become their points.

A series is named ``<scope>:<who>/<figure>``:

- ``service:<service>/<metric>``: every ``ops.metrics.v1`` measurement. Per minute, each
  instance's mean; summed over instances for loads (rates, lag, streams, CPU, memory, replicas),
  averaged for percentiles (``latency_p95_s``: they do not add up);
- from the engagement job's one-minute windows (``analytics.engagement.v1``):
  ``tenant:<tenant>/messages``, messages sent per minute (a tenant's traffic collapsing shows as
  minutes of zero); ``tenant:<tenant>/cost_usd``, what its answers cost (cost runaways);
  ``model:<model>/error_rate`` and ``model:<model>/latency_s``, failed over finished answers and
  their mean latency; ``user:<tenant>/<user>/tokens``, the tokens a user's answers used (token
  abuse).

Counts and sums are 0 in a minute without records (for ``fill_minutes`` after the series was
last seen), so silence is a value; means and ratios have no value without records. Pure: the
job feeds records in and closes minutes as event time passes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

MINUTE_MS = 60_000
PERCENTILE = re.compile(r"_p\d+(_\w+)?$")  # latency_p95_s, ttft_p50_s: averaged, not summed


class Kind(Enum):
    SUM = "sum"  # add the values; 0 when nothing came
    MEAN = "mean"  # mean of the values
    RATIO = "ratio"  # sum of numerators / sum of denominators
    INSTANCES_SUM = "instances_sum"  # each instance's mean, summed
    INSTANCES_MEAN = "instances_mean"  # each instance's mean, averaged


@dataclass(frozen=True)
class Observation:
    series: str
    minute_ms: int
    kind: Kind
    value: float
    weight: float = 1.0  # RATIO: the denominator's part
    instance: str = ""


def minute_of(at_ms: int) -> int:
    return at_ms - at_ms % MINUTE_MS


def epoch_ms(value: int | datetime) -> int:
    """A timestamp-millis field as decoded: epoch milliseconds, or a datetime (fastavro's logical types)."""
    if isinstance(value, datetime):
        return round(value.timestamp() * 1000)
    return int(value)


def from_metric(v: Mapping[str, Any]) -> list[Observation]:
    """An ``ops.metrics.v1`` record's point."""
    name = str(v["name"])
    kind = Kind.INSTANCES_MEAN if PERCENTILE.search(name) else Kind.INSTANCES_SUM
    return [Observation(f"service:{v['service']}/{name}", minute_of(epoch_ms(v["occurred_at"])), kind, float(v["value"]),
                        instance=str(v["instance"]))]  # fmt: skip


def from_engagement(v: Mapping[str, Any]) -> list[Observation]:
    """An ``analytics.engagement.v1`` window's points (the engagement job's one-minute windows:
    already counted, so this job decodes one record per tenant, model and user and minute, not
    every chat action and answer chunk)."""
    minute = minute_of(epoch_ms(v["window_start"]))
    dimension, tenant = v.get("dimension"), v["tenant_id"]
    if dimension == "tenant":
        points = [Observation(f"tenant:{tenant}/messages", minute, Kind.SUM, float(v["messages_sent"]))]
        if v.get("cost_usd") is not None:
            points.append(Observation(f"tenant:{tenant}/cost_usd", minute, Kind.SUM, float(v["cost_usd"])))
        return points
    if dimension == "model":
        model = v.get("model") or "unknown"
        finished = float((v.get("ai_completed") or 0) + (v.get("ai_failed") or 0))
        points = []
        if finished:
            points.append(Observation(f"model:{model}/error_rate", minute, Kind.RATIO, float(v.get("ai_failed") or 0), finished))
        if v.get("latency_count"):
            points.append(Observation(f"model:{model}/latency_s", minute, Kind.RATIO, float(v["latency_sum_ms"]) / 1000,
                                      float(v["latency_count"])))  # fmt: skip
        return points
    if dimension == "user":
        tokens = float((v.get("prompt_tokens") or 0) + (v.get("completion_tokens") or 0))
        return [Observation(f"user:{tenant}/{v['user_id']}/tokens", minute, Kind.SUM, tokens)]
    return []


@dataclass
class Bucket:
    """One series' minute, as it fills. JSON-ready (``dict``/``from_dict``) for a Faust table."""

    kind: Kind
    total: float = 0.0
    weight: float = 0.0
    instances: dict[str, list[float]] = field(default_factory=dict)  # instance -> [sum, count]

    def add(self, o: Observation) -> None:
        if self.kind in (Kind.INSTANCES_SUM, Kind.INSTANCES_MEAN):
            part = self.instances.setdefault(o.instance, [0.0, 0.0])
            part[0] += o.value
            part[1] += o.weight  # the count of points folded into ``o`` (``combine``), else 1
        else:
            self.total += o.value
            self.weight += o.weight

    def value(self) -> float | None:
        if self.kind is Kind.SUM:
            return self.total
        if self.kind in (Kind.MEAN, Kind.RATIO):
            return self.total / self.weight if self.weight else None
        means = [s / n for s, n in self.instances.values() if n]
        if not means:
            return None
        return sum(means) if self.kind is Kind.INSTANCES_SUM else sum(means) / len(means)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "total": self.total, "weight": self.weight, "instances": self.instances}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Bucket:
        return cls(Kind(d["kind"]), float(d["total"]), float(d["weight"]), {k: list(v) for k, v in d["instances"].items()})


@dataclass
class SeriesMinutes:
    """One series' open minutes and the last minute it closed. JSON-ready for a Faust table."""

    kind: Kind
    open: dict[int, Bucket] = field(default_factory=dict)
    closed_through: int | None = None  # the last minute handed out
    last_seen: int | None = None  # the last minute with records

    def add(self, o: Observation) -> bool:
        """Take the point; False when its minute was closed already (a late point, dropped)."""
        if self.closed_through is not None and o.minute_ms <= self.closed_through:
            return False
        self.open.setdefault(o.minute_ms, Bucket(o.kind)).add(o)
        self.last_seen = max(self.last_seen or o.minute_ms, o.minute_ms)
        return True

    def close(self, through_ms: int, fill_minutes: int) -> list[tuple[int, float]]:
        """The minutes up to ``through_ms`` (a minute's start), in order, with their values:
        minutes without records are 0 for sums (within ``fill_minutes`` of the last seen)."""
        if self.closed_through is not None and through_ms <= self.closed_through:
            return []
        start = (self.closed_through + MINUTE_MS) if self.closed_through is not None else min(self.open, default=through_ms)
        out: list[tuple[int, float]] = []
        minute = start
        while minute <= through_ms:
            bucket = self.open.pop(minute, None)
            if bucket is not None:
                value = bucket.value()
                if value is not None:
                    out.append((minute, value))
            elif self.kind is Kind.SUM and self.last_seen is not None and minute - self.last_seen <= fill_minutes * MINUTE_MS:
                out.append((minute, 0.0))
            minute += MINUTE_MS
        self.closed_through = through_ms
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "open": {str(m): b.as_dict() for m, b in self.open.items()},
                "closed_through": self.closed_through, "last_seen": self.last_seen}  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SeriesMinutes:
        return cls(Kind(d["kind"]), {int(m): Bucket.from_dict(b) for m, b in d["open"].items()},
                   d["closed_through"], d["last_seen"])  # fmt: skip


def combine(observations: Iterable[Observation]) -> list[Observation]:
    """One series' points of one minute (and one instance, for per-instance kinds) folded into one
    point, values and weights summed (what a worker forwards after reading a batch of records):
    a ``Bucket`` takes the folded point as it would have taken the points one by one (for means
    and per-instance means the weight is the count). In the order each key first came."""
    folded: dict[tuple[str, int, str], Observation] = {}
    for o in observations:
        key = (o.series, o.minute_ms, o.instance)
        found = folded.get(key)
        folded[key] = o if found is None else Observation(o.series, o.minute_ms, o.kind, found.value + o.value,
                                                          found.weight + o.weight, o.instance)  # fmt: skip
    return list(folded.values())
