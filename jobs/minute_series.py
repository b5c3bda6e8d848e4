"""What the anomaly and scaling jobs share: source records to per-series minutes, closed in order.

Two stages in one Faust app, as Faust does repartitioning:

1. ``points`` (``jobs.point_reader``, outside Faust's per-record stream): a consumer group of
   its own (``<app>-points``) reads the source topics in batches, decodes the records, turns them
   into series points (an ``Extract``, e.g. ``jobs.anomaly.series.from_metric``), folds them per
   series and minute, and sends them to the job's series topic, to the partition their ``route``
   key hashes to (crc32): every series lives in one partition, and series with one route key (a
   service's load and its replicas) in the same one. One message per partition and batch holds
   that partition's points, in order; the batch's offsets are committed once Kafka has them.
2. ``series``: reads that topic. Points go into their series' open minutes (the table
   ``table``, e.g. ``anomaly-minutes``; one read and one write per series and message). A
   series' minutes close, in order, once a point of a later minute
   (``lateness_minutes`` later) arrives for it, or, after ``idle_close_s`` without a point, by
   the wall clock (a tick the timer sends to every partition): silence closes minutes too, as
   zeros for counts. A point for a closed minute is dropped and counted. Each series' closed
   minutes go to the job's ``on_closed``.

Minutes close on event time, so a series' records should come in order: ``ops.metrics.v1`` is
keyed by service (all of a service's instances in one partition); ``lateness_minutes`` waits
longer for a source whose records of one series are spread over partitions.

State: the minutes table has a changelog (Faust), keyed by series and co-partitioned with the
series topic, so a worker that takes a partition over, or a restarted one, goes on where the
last left off. A job keeps its own state in tables of its own, keyed the same way.
"""

from __future__ import annotations

import collections
import json
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import faust
from prometheus_client import CollectorRegistry, Counter

from chatstream.avro.serde import ConfluentDecoder
from chatstream.topics import DAY_MS, TopicAdmin, TopicSpec, plan
from jobs.anomaly.series import MINUTE_MS, Kind, Observation, SeriesMinutes, minute_of
from jobs.point_reader import Extract, PointReader


TICK_EVERY_S = 10.0
OnClosed = Callable[[str, list[tuple[int, float]]], Awaitable[None]]
JSON_SCHEMA: faust.Schema = faust.Schema(key_serializer="json", value_serializer="json")


@dataclass(frozen=True)
class MinuteSettings:
    partitions: int  # of the series topic and the tables' changelogs
    lateness_minutes: int = 0
    idle_close_s: float = 90.0
    fill_minutes: int = 60


def series_topic_name(app_id: str) -> str:
    return f"{app_id}-series"


def points_group(app_id: str) -> str:
    """The consumer group that reads a job's sources (stage 1)."""
    return f"{app_id}-points"


def ensure_series_topic(admin: TopicAdmin, app_id: str, partitions: int) -> None:
    """Make the job's series topic before its worker subscribes (Faust would make it on its first
    send, after the consumer had looked for it and given up on it)."""
    series = TopicSpec(series_topic_name(app_id), partitions=partitions, retention_ms=DAY_MS)
    replication = admin.replication_factor()
    admin.apply(plan([series], admin.existing([series.name]), replication), replication)


def partition_of(key: str, partitions: int) -> int:
    return zlib.crc32(key.encode()) % partitions


def encode_points(points: list[Observation]) -> bytes:
    """Points as one series-topic message."""
    return json.dumps({"points": [[o.series, o.minute_ms, o.kind.value, o.value, o.weight, o.instance] for o in points]}).encode()


def decode_points(raw: Mapping[str, Any]) -> list[Observation]:
    return [Observation(s, int(m), Kind(k), float(v), float(w), i) for s, m, k, v, w, i in raw["points"]]


class SeriesMetrics:
    """The two stages' counters, named ``<prefix>_source_records`` and so on."""

    def __init__(self, registry: CollectorRegistry, prefix: str) -> None:
        self.records = Counter(f"{prefix}_source_records", "Source records read, by topic.", ["topic"], registry=registry)
        self.undecodable = Counter(f"{prefix}_undecodable", "Source records skipped: not decodable.", ["topic"], registry=registry)
        self.late = Counter(f"{prefix}_late_points", "Points for a minute already closed (dropped).", registry=registry)


class MinuteStream:
    """The two stages on ``app``; ``on_closed(series, minutes)`` gets each series' closed minutes."""

    def __init__(self, app: faust.App, *, bootstrap: str, table: str, sources: Mapping[str, Extract], decoder: ConfluentDecoder,
                 settings: MinuteSettings, metrics: SeriesMetrics, on_closed: OnClosed, route: Callable[[str], str] = lambda series: series,
                 first: Callable[[str], bool] = lambda series: False,
                 clock_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:  # fmt: skip
        self.app = app
        self.decoder = decoder
        self.settings = settings
        self.metrics = metrics
        self.on_closed = on_closed
        self.route = route
        self.first = first  # series whose minutes a message closes before the others'
        self.clock_ms = clock_ms
        self.topic = app.topic(series_topic_name(app.conf.id), key_type=bytes, value_type=bytes, partitions=settings.partitions,
                               internal=True)  # fmt: skip
        self.minutes = app.Table(table, default=None, partitions=settings.partitions, schema=JSON_SCHEMA)
        self.seen_at: dict[str, int] = {}  # series -> wall clock of its last point (ms)
        self.reader = PointReader(
            bootstrap=bootstrap, group=points_group(app.conf.id), sources=sources, decode=decoder.decode,
            series_topic=self.topic.get_topic_name(), partition=self.partition, encode=encode_points,
            on_records=lambda topic, n: metrics.records.labels(topic).inc(n),
            on_undecodable=lambda topic: metrics.undecodable.labels(topic).inc(),
        )  # fmt: skip
        app.agent(self.topic, name="series")(self._series)
        app.timer(TICK_EVERY_S)(self._tick)
        app.task(self._start_reading)  # once the worker runs, its tables recovered: stage 2 is there for the points

    def partition(self, series: str) -> int:
        return partition_of(self.route(series), self.settings.partitions)

    def forget(self) -> None:
        """A rebalance: what this worker keeps in memory goes; the tables are re-read."""
        self.seen_at.clear()

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Around the Faust worker: stage 1 starts with the worker (its tables recovered) and
        stops, its batch in hand sent and committed, when the block ends."""
        try:
            yield
        finally:
            self.reader.stop()

    async def _start_reading(self) -> None:
        if not self.reader.started:
            self.reader.start()

    async def _tick(self) -> None:
        """Every partition gets the wall clock, so silent series close too."""
        for partition in range(self.settings.partitions):
            await self.topic.send(key=b"_tick", value=json.dumps({"tick": self.clock_ms()}).encode(), partition=partition)

    # -- stage 2: series points -> closed minutes ----------------------------------------------
    async def _series(self, stream: Any) -> Any:
        async for event in stream.events():
            raw = json.loads(event.value)
            now = self.clock_ms()
            if "tick" in raw:
                idle_ms = int(self.settings.idle_close_s * 1000)
                partition = event.message.partition
                for series in [s for s in list(self.minutes.keys()) if self.partition(s) == partition]:
                    if now - self.seen_at.setdefault(series, now) >= idle_ms:
                        await self._close(series, minute_of(int(raw["tick"]) - idle_ms) - MINUTE_MS)
            else:
                by_series: dict[str, list[Observation]] = collections.defaultdict(list)
                for point in decode_points(raw):
                    by_series[point.series].append(point)
                for series, points in sorted(by_series.items(), key=lambda item: not self.first(item[0])):
                    self.seen_at[series] = now
                    state = self.minutes.get(series)
                    minutes = SeriesMinutes.from_dict(state) if state else SeriesMinutes(points[0].kind)
                    late = sum(not minutes.add(point) for point in points)
                    if late:
                        self.metrics.late.inc(late)
                    newest = minutes.last_seen if minutes.last_seen is not None else points[-1].minute_ms
                    await self._close(series, newest - (1 + self.settings.lateness_minutes) * MINUTE_MS, minutes)
            yield event.value

    async def _close(self, series: str, through: int, minutes: SeriesMinutes | None = None) -> None:
        """Close ``series``' minutes through the one starting ``through`` and hand them on; the
        table gets the series' minutes whenever they changed (``minutes`` given: a point was added)."""
        changed = minutes is not None
        if minutes is None:
            minutes = SeriesMinutes.from_dict(self.minutes[series])
        before = minutes.closed_through
        closed = minutes.close(through, self.settings.fill_minutes)
        if changed or minutes.closed_through != before:
            self.minutes[series] = minutes.as_dict()
        if closed:
            await self.on_closed(series, closed)
