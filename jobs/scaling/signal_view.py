"""The latest scaling signal per service, as controllers read it: KEDA's metrics-api JSON and a gauge.

``SignalView`` reads ``ops.scaling_signals.v1`` (compacted, keyed by service) from its beginning,
every partition, without a consumer group, on a thread of its own, and keeps each service's
newest signal. Any scaling worker therefore answers for every service, whichever worker computed
its signal. ``as_json`` is the ``GET /v1/scaling/{service}`` body; KEDA's metrics-api scaler takes
``valueLocation: desiredReplicas`` with ``targetValue: "1"`` (metricType ``AverageValue``), so the
HPA it drives asks for exactly ``desiredReplicas``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from jobs.anomaly.series import epoch_ms

log = logging.getLogger(__name__)

Decode = Callable[[bytes], Mapping[str, Any]]


def as_json(signal: Mapping[str, Any], now_ms: int) -> dict[str, Any]:
    """A signal as the endpoint's JSON (camelCase, as Kubernetes' own objects). Pure."""
    at = epoch_ms(signal["occurred_at"])
    return {
        "service": signal["target"],
        "desiredReplicas": signal["desired_replicas"],
        "currentReplicas": signal["current_replicas"],
        "minReplicas": signal["min_replicas"],
        "maxReplicas": signal["max_replicas"],
        "metric": signal["metric"],
        "observed": signal["observed"],
        "forecast": signal["forecast"],
        "forecastLower": signal["forecast_lower"],
        "forecastUpper": signal["forecast_upper"],
        "horizonSeconds": signal["horizon_s"],
        "capacityPerReplica": signal["capacity_per_replica"],
        "reason": signal["reason"],
        "model": signal["model"],
        "at": datetime.fromtimestamp(at / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "ageSeconds": round(max(now_ms - at, 0) / 1000, 3),
    }


class LatestSignals(Collector):
    """Each service's newest signal (thread-safe), and the gauge ``chatstream_desired_replicas``."""

    def __init__(self) -> None:
        self._latest: dict[str, Mapping[str, Any]] = {}
        self._lock = threading.Lock()

    def latest(self, service: str) -> Mapping[str, Any] | None:
        with self._lock:
            return self._latest.get(service)

    def services(self) -> list[str]:
        with self._lock:
            return sorted(self._latest)

    def take(self, signal: Mapping[str, Any]) -> None:
        """Keep ``signal`` if it is its service's newest."""
        with self._lock:
            found = self._latest.get(signal["target"])
            if found is None or epoch_ms(found["occurred_at"]) <= epoch_ms(signal["occurred_at"]):
                self._latest[signal["target"]] = signal

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily("chatstream_desired_replicas", "Replicas the newest scaling signal asks for, per service.",
                                  labels=["service"])  # fmt: skip
        with self._lock:
            for service, signal in sorted(self._latest.items()):
                gauge.add_metric([service], float(signal["desired_replicas"]))
        yield gauge


class SignalView(LatestSignals):
    """``LatestSignals`` kept up to date from the signals topic by a thread of its own."""

    def __init__(self, *, bootstrap: str, topic: str, decode: Decode) -> None:
        super().__init__()
        self.topic = topic
        self.decode = decode
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "chatstream-scaling-view",
                                  "enable.auto.commit": False, "error_cb": self._error})  # fmt: skip
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scaling-signal-view", daemon=True)
        self.read = 0

    def start(self) -> None:
        partitions = self.consumer.list_topics(self.topic, timeout=10).topics[self.topic].partitions
        self.consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions])
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.consumer.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            for message in self.consumer.consume(500, timeout=0.5):
                value = message.value()
                if message.error() is not None or value is None:
                    continue
                try:
                    self.take(self.decode(value))
                    self.read += 1
                except Exception as exc:  # noqa: BLE001 - one unreadable signal is skipped, logged
                    log.warning("scaling view: skipped a record at %s[%d]@%d: %s", self.topic, message.partition(),
                                message.offset(), exc)  # fmt: skip

    @staticmethod
    def _error(error: KafkaError) -> None:
        log.warning("scaling view: Kafka: %s", error)
