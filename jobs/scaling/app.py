"""The scaling job's wiring: service metrics to per-service minutes of load to scaling signals.

``jobs.minute_series`` turns ``ops.metrics.v1`` into two minute series per configured service,
its load metric and its ``replicas`` (summed over its instances), routed by service so that both
live in one partition. A closed minute of ``replicas`` updates what the service runs; a closed
minute of load steps the service (``jobs.scaling.signals.step``: history, forecast, replica
policy) and its signal goes to ``ops.scaling_signals.v1``, keyed by service. Of the minutes one
message closes, the replicas' go first, so a signal names the replicas running when it was made.

Forecasters are refitted from the table's history on a schedule (``refit_every_s`` of wall
clock, the first as soon as ``min_history_minutes`` are there), in a thread, never per minute.
They live in memory: a restarted worker, or one that takes a service over, refits from the
table on the service's next minute.

State: the table ``scaling-services`` (history and policy state per service) has a changelog,
co-partitioned with the series topic. Delivery: at least once; a replayed minute gives the same
signal id, which the stores keep once.

``/v1/scaling/{service}`` and the gauge ``chatstream_desired_replicas`` come from a
``SignalView`` of the signals topic (every service's newest signal, whichever worker made it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from faust.web import Request, Response, View
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from chatstream.avro.serde import ConfluentDecoder, ConfluentEncoder
from chatstream.service_load import Measure
from jobs.anomaly.series import Observation, from_metric
from jobs.faust_worker import add_pages, faust_app
from jobs.minute_series import JSON_SCHEMA, MinuteSettings, MinuteStream, SeriesMetrics
from jobs.scaling.config import ScalingSettings, ServiceTarget
from jobs.scaling.forecaster import Forecaster
from jobs.scaling.signal_view import LatestSignals, as_json
from jobs.scaling.signals import ServiceState, step

log = logging.getLogger(__name__)

APP_ID = "chatstream-scaling"
REPLICAS = "replicas"

LOAD = (
    Measure("points_per_s", "chatstream_scaling_source_records", "rate", "1/s"),
    Measure("signals_per_s", "chatstream_scaling_signals", "rate", "1/s"),
    Measure("services", "chatstream_scaling_services", "gauge", "services"),
)
"""What a scaling worker publishes to ops.metrics.v1 (``chatstream.ops_publisher``)."""


class ScalingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.stream = SeriesMetrics(self.registry, "chatstream_scaling")
        self.signals = Counter("chatstream_scaling_signals", "Scaling signals sent, by rule.", ["rule"], registry=self.registry)
        self.fits = Histogram("chatstream_scaling_fit_seconds", "Forecaster refits and their time.", registry=self.registry,
                              buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30))  # fmt: skip
        self.services = Gauge("chatstream_scaling_services", "Services this worker forecasts.", registry=self.registry)


def service_of(series: str) -> str:
    """``service:gateway/events_per_s`` -> ``gateway``: both of a service's series route alike."""
    return series.partition(":")[2].rpartition("/")[0]


def load_points(services: Mapping[str, ServiceTarget]) -> Callable[[Mapping[str, Any]], list[Observation]]:
    """The points of the configured services' load metrics and replicas; other records none."""
    wanted = {(service, name) for service, target in services.items() for name in (target.metric, REPLICAS)}

    def extract(v: Mapping[str, Any]) -> list[Observation]:
        return from_metric(v) if (v["service"], v["name"]) in wanted else []

    return extract


class ScalingJob:
    def __init__(self, *, bootstrap: str, metrics_topic: str, signals_topic: str, decoder: ConfluentDecoder,
                 encoder: ConfluentEncoder, settings: ScalingSettings, web_host: str, web_port: int,
                 view: LatestSignals | None = None, clock_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:  # fmt: skip
        self.settings = settings
        self.encoder = encoder
        self.clock_ms = clock_ms
        self.metrics = ScalingMetrics()
        self.app = faust_app(APP_ID, bootstrap=bootstrap, partitions=settings.partitions, web_host=web_host, web_port=web_port)
        minutes: MinuteSettings = settings.minutes()
        self.stream = MinuteStream(self.app, bootstrap=bootstrap, table="scaling-minutes", sources={metrics_topic: load_points(settings.services)},
                                   decoder=decoder, settings=minutes, metrics=self.metrics.stream, on_closed=self._closed,
                                   route=service_of, first=lambda series: series.endswith(f"/{REPLICAS}"),
                                   clock_ms=clock_ms)  # fmt: skip
        self.signals = self.app.topic(signals_topic, key_type=bytes, value_type=bytes)
        self.states = self.app.Table("scaling-services", default=None, partitions=settings.partitions, schema=JSON_SCHEMA)
        self.forecasters: dict[str, tuple[Forecaster, float]] = {}  # service -> (model, wall clock of its fit)
        self.view = view
        if view is not None:
            self.metrics.registry.register(view)
        self.app.on_partitions_revoked.connect(self._forget)
        add_pages(self.app, self.metrics.registry, lambda: {"services": len(self.forecasters), "reader": self.stream.reader.failed},
                  healthy=lambda: self.stream.reader.healthy)  # fmt: skip
        self._add_scaling_pages()

    async def _closed(self, series: str, closed: list[tuple[int, float]]) -> None:
        service = service_of(series)
        target = self.settings.services.get(service)
        if target is None:
            return  # no longer configured
        raw = self.states.get(service)
        state = ServiceState.from_dict(raw) if raw else ServiceState()
        if series.rpartition("/")[2] == REPLICAS:
            state.replicas_seen = max(round(closed[-1][1]), 0)
        else:
            for minute, value in closed:  # a backlog closes many minutes at once: a model may come due among them
                forecaster = await self._forecaster(service, target, state)
                record = step(service, target, state, minute, value, forecaster, self.settings.history_minutes)
                if record is not None:
                    self.metrics.signals.labels(record["reason"].partition(":")[0]).inc()
                    await self.signals.send(key=service.encode(), value=self.encoder.encode(record))
        self.states[service] = state.as_dict()

    async def _forecaster(self, service: str, target: ServiceTarget, state: ServiceState) -> Forecaster:
        """The service's model; refitted, in a thread, when the schedule says so and there is
        enough history."""
        found = self.forecasters.get(service)
        now_s = self.clock_ms() / 1000
        enough = len(state.minutes) >= self.settings.min_history_minutes
        if found is not None:
            model, fitted_at = found
            if (not model.fitted and not enough) or (model.fitted and now_s - fitted_at < self.settings.refit_every_s):
                return model
        forecaster = Forecaster(self.settings.forecaster(target))
        if enough:
            history = state.history()
            try:
                with self.metrics.fits.time():
                    await asyncio.get_running_loop().run_in_executor(None, forecaster.fit, history)
            except Exception:  # noqa: BLE001 - a failed fit keeps the last model (or the naive one)
                log.exception("scaling: refitting %s on %d minutes failed; keeping the last model", service, len(history))
                return found[0] if found is not None else forecaster
            log.info("scaling: %s refitted on %d minutes (skill over seasonal-naive %.2f)", service, len(history), forecaster.skill)
        self.forecasters[service] = (forecaster, now_s)
        self.metrics.services.set(len(self.forecasters))
        return forecaster

    async def _forget(self, *_args: Any, **_kwargs: Any) -> None:
        """A rebalance: services may move; models are refitted from the table where they land."""
        self.forecasters.clear()
        self.stream.forget()

    def _add_scaling_pages(self) -> None:
        async def one(view: View, _request: Request, service: str) -> Response:
            """The newest signal for ``service`` (KEDA metrics-api: ``valueLocation: desiredReplicas``)."""
            signal = self.view.latest(service) if self.view is not None else None
            if signal is None:
                known = self.view.services() if self.view is not None else []
                return view.json({"error": f"no scaling signal for service {service!r} yet", "services": known}, status=404)
            return view.json(as_json(signal, self.clock_ms()))

        async def every(view: View, _request: Request) -> Response:
            """Every service's newest signal."""
            now = self.clock_ms()
            found = [] if self.view is None else [self.view.latest(s) for s in self.view.services()]
            return view.json({"services": [as_json(s, now) for s in found if s is not None]})

        self.app.page("/v1/scaling/{service}")(one)
        self.app.page("/v1/scaling")(every)
