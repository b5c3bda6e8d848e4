"""The anomaly job's wiring: Faust agents from the sources to per-series detectors to anomalies.

Two stages, as Faust does repartitioning:

1. ``points``: one agent per source topic (``ops.metrics.v1``, ``analytics.engagement.v1``) reads
   records in batches, decodes them, turns them into series points (``jobs.anomaly.series``),
   folds sums per series and minute, and sends each to the job's series topic, to the
   partition its series hashes to (crc32): every series lives in one partition.
2. ``series``: reads that topic. A point goes into its series' open minute (the table
   ``anomaly-minutes``). A series' minutes close, in order, once a point of a later minute
   (``lateness_minutes`` later) arrives for it, or, after ``idle_close_s`` without a point, by
   the wall clock (a tick the timer sends to every partition): silence closes minutes too, as
   zeros for counts. A point for a closed minute is dropped and counted. Each closed minute
   steps the series' watch (``jobs.anomaly.watch``: detector and open anomaly, the table
   ``anomaly-watches``), and an anomaly that opens or resolves goes to ``ops.anomalies.v1``
   (and to the webhook, if set).

State: both tables have changelogs (Faust), keyed by series and co-partitioned with the series
topic, so a worker that takes a partition over, or a restarted one, goes on where the last left
off. The watches also live in memory (a detector's forest is refitted when it is restored, so it
is not restored per minute); a rebalance drops them, to be restored from the table.

Delivery: at least once. An anomaly event sent twice (a replay after a crash) has the same id
(series and minute), and the stores keep one.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
import zlib
from collections.abc import Callable, Mapping
from typing import Any

import faust
from prometheus_client import CollectorRegistry, Counter, Gauge

from chatstream.avro.serde import ConfluentDecoder, ConfluentEncoder
from chatstream.service_load import Measure
from jobs.anomaly.config import AnomalySettings
from jobs.anomaly.events import slack_message
from jobs.anomaly.series import MINUTE_MS, Kind, Observation, SeriesMinutes, combine, minute_of
from jobs.anomaly.watch import Watch
from jobs.anomaly.webhook import Webhook
from jobs.faust_worker import add_pages

log = logging.getLogger(__name__)

APP_ID = "chatstream-anomaly"
SERIES_TOPIC = "chatstream-anomaly-series"
TICK_EVERY_S = 10.0
Extract = Callable[[Mapping[str, Any]], list[Observation]]

LOAD = (
    Measure("points_per_s", "chatstream_anomaly_source_records", "rate", "1/s"),
    Measure("minutes_per_s", "chatstream_anomaly_minutes_scored", "rate", "1/s"),
    Measure("anomalies_per_s", "chatstream_anomaly_events", "rate", "1/s"),
    Measure("series", "chatstream_anomaly_series", "gauge", "series"),
)
"""What an anomaly worker publishes to ops.metrics.v1 (``chatstream.ops_publisher``)."""


class AnomalyMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.records = Counter("chatstream_anomaly_source_records", "Source records read, by topic.", ["topic"], registry=self.registry)
        self.undecodable = Counter("chatstream_anomaly_undecodable", "Source records skipped: not decodable.", ["topic"], registry=self.registry)
        self.late = Counter("chatstream_anomaly_late_points", "Points for a minute already closed (dropped).", registry=self.registry)
        self.scored = Counter("chatstream_anomaly_minutes_scored", "Closed minutes scored.", registry=self.registry)
        self.events = Counter("chatstream_anomaly_events", "Anomalies opened and resolved.", ["status"], registry=self.registry)
        self.series = Gauge("chatstream_anomaly_series", "Series watched by this worker.", registry=self.registry)


def partition_of(series: str, partitions: int) -> int:
    return zlib.crc32(series.encode()) % partitions


def encode_point(o: Observation) -> bytes:
    return json.dumps({"s": o.series, "m": o.minute_ms, "k": o.kind.value, "v": o.value, "w": o.weight, "i": o.instance}).encode()


def decode_point(raw: Mapping[str, Any]) -> Observation:
    return Observation(raw["s"], int(raw["m"]), Kind(raw["k"]), float(raw["v"]), float(raw["w"]), raw["i"])


class AnomalyJob:
    def __init__(self, *, bootstrap: str, sources: Mapping[str, Extract], anomalies_topic: str, decoder: ConfluentDecoder,
                 encoder: ConfluentEncoder, settings: AnomalySettings, web_host: str, web_port: int,
                 clock_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:  # fmt: skip
        self.settings = settings
        self.detector_config = settings.detector()
        self.policy = settings.policy()
        self.decoder = decoder
        self.encoder = encoder
        self.clock_ms = clock_ms
        self.metrics = AnomalyMetrics()
        self.webhook = Webhook(settings.webhook_url) if settings.webhook_url else None
        self.app = faust.App(
            APP_ID,
            broker=f"kafka://{bootstrap}",
            key_serializer="raw",
            value_serializer="raw",
            store="memory://",  # the tables live in memory, restored from their changelogs
            topic_partitions=settings.partitions,
            consumer_auto_offset_reset="earliest",
            broker_session_timeout=10.0,
            broker_heartbeat_interval=2.0,
            producer_acks=-1,
            web_enabled=True,
            web_bind=web_host,
            web_port=web_port,
            web_host=web_host,
            worker_redirect_stdouts=False,
            topic_allow_declare=True,  # the series topic and the changelogs
        )
        json_schema: faust.Schema = faust.Schema(key_serializer="json", value_serializer="json")
        self.series_topic = self.app.topic(SERIES_TOPIC, key_type=bytes, value_type=bytes, partitions=settings.partitions,
                                           internal=True)  # fmt: skip
        self.anomalies = self.app.topic(anomalies_topic, key_type=bytes, value_type=bytes)
        self.minutes = self.app.Table("anomaly-minutes", default=None, partitions=settings.partitions, schema=json_schema)
        self.watch_states = self.app.Table("anomaly-watches", default=None, partitions=settings.partitions, schema=json_schema)
        self.watches: dict[str, Watch] = {}
        self.seen_at: dict[str, int] = {}  # series -> wall clock of its last point (ms)
        self.skipped: collections.Counter[str] = collections.Counter()  # undecodable records by topic
        self._posts: set[asyncio.Task[bool]] = set()
        for topic, extract in sources.items():
            self.app.agent(self.app.topic(topic, key_type=bytes, value_type=bytes), name=f"points-{topic}")(self._points(topic, extract))
        self.app.agent(self.series_topic, name="series")(self._series)
        self.app.timer(TICK_EVERY_S)(self._tick)
        self.app.on_partitions_revoked.connect(self._forget)
        add_pages(self.app, self.metrics.registry, lambda: {"series": len(self.watches)})

    # -- stage 1: source records -> series points ----------------------------------------------
    def _points(self, topic: str, extract: Extract) -> Callable[[Any], Any]:
        async def agent(stream: Any) -> Any:
            async for values in stream.take(2000, within=0.5):
                points: list[Observation] = []
                for value in values:
                    try:
                        points += extract(self.decoder.decode(value))
                    except Exception as exc:  # noqa: BLE001 - a record we cannot read is skipped, counted
                        self.metrics.undecodable.labels(topic).inc()
                        self.skipped[topic] += 1
                        if self.skipped[topic] in (1, 10, 100) or self.skipped[topic] % 1000 == 0:
                            log.warning("anomaly: %d records of %s skipped so far; the last: %s", self.skipped[topic], topic, exc)
                self.metrics.records.labels(topic).inc(len(values))
                for point in combine(points):
                    await self.series_topic.send(key=point.series.encode(), value=encode_point(point),
                                                 partition=partition_of(point.series, self.settings.partitions))  # fmt: skip
                yield len(values)

        return agent

    async def _tick(self) -> None:
        """Every partition gets the wall clock, so silent series close too."""
        for partition in range(self.settings.partitions):
            await self.series_topic.send(key=b"_tick", value=json.dumps({"tick": self.clock_ms()}).encode(), partition=partition)

    # -- stage 2: series points -> minutes -> anomalies ----------------------------------------
    async def _series(self, stream: Any) -> Any:
        async for event in stream.events():
            raw = json.loads(event.value)
            now = self.clock_ms()
            if "tick" in raw:
                idle_ms = int(self.settings.idle_close_s * 1000)
                partition = event.message.partition
                for series in [s for s in list(self.minutes.keys()) if partition_of(s, self.settings.partitions) == partition]:
                    if now - self.seen_at.setdefault(series, now) >= idle_ms:
                        await self._close(series, minute_of(int(raw["tick"]) - idle_ms) - MINUTE_MS)
            else:
                point = decode_point(raw)
                self.seen_at[point.series] = now
                state = self.minutes.get(point.series)
                minutes = SeriesMinutes.from_dict(state) if state else SeriesMinutes(point.kind)
                if not minutes.add(point):
                    self.metrics.late.inc()
                self.minutes[point.series] = minutes.as_dict()
                newest = minutes.last_seen if minutes.last_seen is not None else point.minute_ms
                await self._close(point.series, newest - (1 + self.settings.lateness_minutes) * MINUTE_MS)
            yield event.value

    async def _close(self, series: str, through: int) -> None:
        """Close ``series``' minutes through the one starting ``through``; score each in order."""
        minutes = SeriesMinutes.from_dict(self.minutes[series])
        closed = minutes.close(through, self.settings.fill_minutes)
        if not closed:
            return
        self.minutes[series] = minutes.as_dict()
        watch = self._watch(series)
        for minute, value in closed:
            record = watch.step(series, minute, value, self.policy)
            self.metrics.scored.inc()
            if record is not None:
                await self._emit(series, record)
        self.watch_states[series] = watch.snapshot()
        self.metrics.series.set(len(self.watches))

    def _watch(self, series: str) -> Watch:
        watch = self.watches.get(series)
        if watch is None:
            state = self.watch_states.get(series)
            watch = Watch.restore(self.detector_config, state) if state else Watch.new(self.detector_config)
            self.watches[series] = watch
        return watch

    async def _emit(self, series: str, record: dict[str, Any]) -> None:
        self.metrics.events.labels(record["status"]).inc()
        log.info("anomaly %s: %s %s", record["status"].lower(), series, record["description"])
        await self.anomalies.send(key=series.encode(), value=self.encoder.encode(record))
        if self.webhook is not None:
            task = asyncio.ensure_future(self.webhook.post(slack_message(record)))
            self._posts.add(task)
            task.add_done_callback(self._posts.discard)

    async def _forget(self, *_args: Any, **_kwargs: Any) -> None:
        """A rebalance: partitions may move; what this worker keeps in memory is re-read from the tables."""
        self.watches.clear()
        self.seen_at.clear()
