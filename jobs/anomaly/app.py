"""The anomaly job's wiring: source records to per-series minutes to detectors to anomalies.

``jobs.minute_series`` turns the sources (``ops.metrics.v1``, ``analytics.engagement.v1``) into
series points and closes each series' minutes in order. Each closed minute steps the series'
watch (``jobs.anomaly.watch``: detector and open anomaly, the table ``anomaly-watches``),
and an anomaly that opens or resolves goes to ``ops.anomalies.v1`` (and to the webhook, if set).

State: the tables have changelogs (Faust), keyed by series and co-partitioned with the series
topic, so a worker that takes a partition over, or a restarted one, goes on where the last left
off. The watches also live in memory (a detector's forest is refitted when it is restored, so it
is not restored per minute); a rebalance drops them, to be restored from the table.

Delivery: at least once. An anomaly event sent twice (a replay after a crash) has the same id
(series and minute), and the stores keep one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from chatstream.avro.serde import ConfluentDecoder, ConfluentEncoder
from chatstream.service_load import Measure
from jobs.anomaly.config import AnomalySettings
from jobs.anomaly.events import slack_message
from jobs.anomaly.watch import Watch
from jobs.anomaly.webhook import Webhook
from jobs.faust_worker import add_pages, faust_app
from jobs.minute_series import JSON_SCHEMA, Extract, MinuteSettings, MinuteStream, SeriesMetrics

log = logging.getLogger(__name__)

APP_ID = "chatstream-anomaly"

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
        self.stream = SeriesMetrics(self.registry, "chatstream_anomaly")
        self.scored = Counter("chatstream_anomaly_minutes_scored", "Closed minutes scored.", registry=self.registry)
        self.events = Counter("chatstream_anomaly_events", "Anomalies opened and resolved.", ["status"], registry=self.registry)
        self.series = Gauge("chatstream_anomaly_series", "Series watched by this worker.", registry=self.registry)


class AnomalyJob:
    def __init__(self, *, bootstrap: str, sources: Mapping[str, Extract], anomalies_topic: str, decoder: ConfluentDecoder,
                 encoder: ConfluentEncoder, settings: AnomalySettings, web_host: str, web_port: int,
                 clock_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:  # fmt: skip
        self.settings = settings
        self.detector_config = settings.detector()
        self.policy = settings.policy()
        self.encoder = encoder
        self.metrics = AnomalyMetrics()
        self.webhook = Webhook(settings.webhook_url) if settings.webhook_url else None
        self.app = faust_app(APP_ID, bootstrap=bootstrap, partitions=settings.partitions, web_host=web_host, web_port=web_port)
        self.stream = MinuteStream(self.app, bootstrap=bootstrap, table="anomaly-minutes", sources=sources, decoder=decoder,
                                   settings=settings.minutes(), metrics=self.metrics.stream, on_closed=self._closed,
                                   clock_ms=clock_ms)  # fmt: skip
        self.anomalies = self.app.topic(anomalies_topic, key_type=bytes, value_type=bytes)
        self.watch_states = self.app.Table("anomaly-watches", default=None, partitions=settings.partitions, schema=JSON_SCHEMA)
        self.watches: dict[str, Watch] = {}
        self._posts: set[asyncio.Task[bool]] = set()
        self.app.on_partitions_revoked.connect(self._forget)
        add_pages(self.app, self.metrics.registry, lambda: {"series": len(self.watches), "reader": self.stream.reader.failed},
                  healthy=lambda: self.stream.reader.healthy)  # fmt: skip

    async def _closed(self, series: str, closed: list[tuple[int, float]]) -> None:
        """Score ``series``' closed minutes in order."""
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
        self.stream.forget()
