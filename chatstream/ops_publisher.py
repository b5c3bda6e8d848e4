"""Publish a component's load to ``ops.metrics.v1`` at a fixed interval (its own thread).

Every ``interval_s`` the publisher reads the component's Prometheus registry and its process (CPU,
resident memory), turns the readings into measurements (``chatstream.service_load``) and produces
one ``ServiceMetric`` record per measurement, keyed by ``service`` (a service's instances share a
partition, so its measurements reach the ops jobs in the order they were taken), with ids made from
the instance and the time (a record sent twice is one row in the stores). Each instance also
publishes ``replicas`` = 1: summed over a service's instances, the replicas running.

Best effort, never in the component's way: a Kafka that is away costs the measurements of that
interval (librdkafka retries within ``interval_s``, then drops them) and a WARNING, nothing else;
so does a schema registry that is away (the contract is registered on the first publish that
reaches it).
The Prometheus endpoints are untouched: this reads the same registry.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

from confluent_kafka import KafkaError, Producer
from prometheus_client import Metric
from prometheus_client.process_collector import ProcessCollector

from chatstream.avro.catalog import load_catalog
from chatstream.avro.registry import ContractRegistry
from chatstream.avro.serde import ConfluentEncoder
from chatstream.service_load import Measure, Reading, measure, read
from chatstream.settings import Settings

log = logging.getLogger(__name__)

PROCESS = (
    Measure("cpu_cores", "process_cpu_seconds", "rate", "cores"),
    Measure("memory_bytes", "process_resident_memory_bytes", "gauge", "bytes"),
)
NAMESPACE = uuid.UUID("5b0e6a43-4f7e-4c77-9d0e-2f1d1f3a9c11")  # ids: uuid5 of instance and time


def instance_name(suffix: str = "") -> str:
    """``host:pid`` (and ``suffix``): one publishing process."""
    return f"{socket.gethostname()}:{os.getpid()}{suffix}"


def metric_records(service: str, instance: str, at_ms: int, values: Iterable[tuple[Measure, float]],
                   labels: dict[str, str] | None = None) -> list[dict[str, object]]:  # fmt: skip
    """``ServiceMetric`` records, one per measurement, plus ``replicas`` = 1. Pure."""
    rows = [(m.name, value, m.unit) for m, value in values] + [("replicas", 1.0, "replicas")]
    return [{
        "event_id": str(uuid.uuid5(NAMESPACE, f"{service}/{instance}/{name}/{at_ms}")),
        "occurred_at": at_ms, "tenant_id": "_platform", "user_id": f"svc:{service}", "conversation_id": None,
        "session_id": None, "trace_id": uuid.uuid5(NAMESPACE, f"{service}/{instance}/{at_ms}").hex, "client": service,
        "service": service, "instance": instance, "name": name, "value": float(value), "unit": unit,
        "labels": dict(labels or {}),
    } for name, value, unit in rows]  # fmt: skip


class OpsPublisher:
    def __init__(self, *, bootstrap: str, topic: str, encoder: Callable[[], ConfluentEncoder], service: str, instance: str,
                 measures: Sequence[Measure], collect: Callable[[], Iterable[Metric]], interval_s: float,
                 labels: dict[str, str] | None = None) -> None:  # fmt: skip
        self.topic = topic
        self.encoder_source = encoder  # registers the contract: called until it succeeds
        self.encoder: ConfluentEncoder | None = None
        self.service = service
        self.instance = instance
        self.measures = (*measures, *PROCESS)
        self.process = ProcessCollector(registry=None)
        self.collect = collect
        self.interval_s = interval_s
        self.labels = labels or {}
        self.producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 50,
                                  "message.timeout.ms": int(max(interval_s, 5) * 1000), "error_cb": self._kafka_error})  # fmt: skip
        self.published = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"ops-metrics-{service}", daemon=True)
        self._before: Reading | None = None
        self._before_at = 0.0

    def _kafka_error(self, err: KafkaError) -> None:
        log.debug("ops metrics producer: %s", err.str())

    def _delivered(self, err: KafkaError | None, _msg: object) -> None:
        if err is None:
            self.published += 1
            return
        self.failed += 1
        if self.failed == 1 or self.failed % 100 == 0:
            log.warning("%s: %d ops metrics not delivered to %s (%s)", self.service, self.failed, self.topic, err.str())

    def publish_once(self) -> int:
        """Read, measure and produce now; how many records were handed to Kafka."""
        now, at_ms = time.monotonic(), int(time.time() * 1000)
        reading = read(self.measures, [*self.collect(), *self.process.collect()])
        values = measure(self.measures, self._before, reading, now - self._before_at)
        self._before, self._before_at = reading, now
        records = metric_records(self.service, self.instance, at_ms, values, self.labels)
        if self.encoder is None:
            self.encoder = self.encoder_source()  # the registry away: this interval's figures are lost, said once
        for record in records:
            try:
                self.producer.produce(self.topic, self.encoder.encode(record), self.service.encode(),
                                      on_delivery=self._delivered)  # fmt: skip
            except BufferError:
                self.failed += 1
        self.producer.poll(0)
        return len(records)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.publish_once()
            except Exception:  # noqa: BLE001 - a measurement must never take the component down
                log.exception("%s: ops metrics not published this interval", self.service)

    def start(self) -> OpsPublisher:
        try:
            self.publish_once()  # the first reading: rates start from here
        except Exception as exc:  # noqa: BLE001 - e.g. the registry away while the component starts
            log.warning("%s: ops metrics not published yet (%s); retrying every %g s", self.service, exc, self.interval_s)
        self._thread.start()
        return self

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop, and hand Kafka what is left for up to ``timeout_s``."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self.producer.flush(timeout_s)


def build_publisher(settings: Settings, topic: str, service: str, measures: Sequence[Measure],
                    collect: Callable[[], Iterable[Metric]], *, instance: str | None = None,
                    labels: dict[str, str] | None = None) -> OpsPublisher | None:  # fmt: skip
    """The component's publisher to ``topic`` (ops.metrics.v1); None when
    ``ops_metrics_interval_s`` is 0. Its contract is registered on the first publish, and again
    each interval until the registry takes it: a registry away when the component starts costs
    figures, never the component."""
    if settings.ops_metrics_interval_s <= 0:
        return None
    contract = load_catalog()[topic]

    def encoder() -> ConfluentEncoder:
        with ContractRegistry(settings.schema_registry_url) as registry:
            return ConfluentEncoder(contract.schema, registry.register(contract).schema_id)

    return OpsPublisher(bootstrap=settings.kafka_bootstrap_servers, topic=topic, encoder=encoder, service=service,
                        instance=instance or instance_name(), measures=measures, collect=collect,
                        interval_s=settings.ops_metrics_interval_s, labels=labels)  # fmt: skip


@contextmanager
def publishing(publisher: OpsPublisher | None) -> Iterator[None]:
    """Publish while the block runs (nothing when ``publisher`` is None: publishing is off)."""
    if publisher is None:
        yield
        return
    publisher.start()
    try:
        yield
    finally:
        publisher.close()
