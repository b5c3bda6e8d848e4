"""What the ops jobs' tests share: service metrics produced by hand, a job run until it caught up."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from chatstream.avro.catalog import load_catalog
from chatstream.avro.serde import ConfluentEncoder
from chatstream.lag import wait_caught_up
from chatstream.settings import Settings
from jobs.minute_series import points_group, series_topic_name
from pipelines.sinks import CONSUMER_GROUPS
from pipelines.topics import METRICS
from tests.integration.platform import Component
from tests.samples import sample


def produce_metrics(settings: Settings, points: Iterable[tuple[str, str, str, int, float]]) -> int:
    """``ops.metrics.v1`` records of (service, instance, name, occurred_at ms, value); how many."""
    contract = load_catalog()[METRICS.name]
    with SchemaRegistryClient({"url": settings.schema_registry_url}) as registry:
        encoder = ConfluentEncoder(contract.schema, registry.get_latest_version(contract.subject).schema_id)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "enable.idempotence": True})
    count = 0
    for service, instance, name, at_ms, value in points:
        record = {**sample(contract.schema), "service": service, "instance": instance, "name": name, "labels": {},
                  "occurred_at": at_ms, "value": value}  # fmt: skip
        producer.produce(METRICS.name, encoder.encode(record), service.encode())  # as the publishers key them
        count += 1
        if count % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0
    return count


def caught_up(settings: Settings, app_id: str, job: Component, timeout_s: float = 120) -> None:
    """Until the job's groups have read everything of ops.metrics.v1 and of its series topic."""
    deadline = time.monotonic() + timeout_s
    reads = ((METRICS.name, points_group(app_id)), (series_topic_name(app_id), app_id))  # stage 1, stage 2
    while time.monotonic() < deadline:
        lags = {t: wait_caught_up(settings.kafka_bootstrap_servers, [group], t, timeout_s=5) for t, group in reads}
        if not any(v for lag in lags.values() for v in lag.values()):
            time.sleep(3)  # Faust commits every 2.8 s: what the series agent did is in the tables
            return
    raise AssertionError(f"{app_id} did not catch up: {lags}\n{job.log_tail()}")


def run_until_caught_up(settings: Settings, job: str, app_id: str, env: Mapping[str, str]) -> None:
    """Start ``chatstream job <job>``, wait until it caught up, stop it (SIGTERM, exit 0)."""
    component = Component(settings, "job", job, env=env).start()
    try:
        caught_up(settings, app_id, component)
    finally:
        assert component.stop() == 0, component.log_tail()


def drain_into_stores(settings: Settings, topic: str) -> None:
    """Run both sinks until their groups have read all of ``topic``; stop them (exit 0)."""
    sinks = [Component(settings, "sink", kind, env={"CHATSTREAM_OPS_METRICS_INTERVAL_S": "0"}).start() for kind in CONSUMER_GROUPS]
    try:
        lags = wait_caught_up(settings.kafka_bootstrap_servers, list(CONSUMER_GROUPS.values()), topic, timeout_s=90)
        assert not any(lags.values()), (lags, [s.log_tail() for s in sinks])
    finally:
        codes = [s.stop() for s in sinks]
    assert codes == [0, 0], [s.log_tail() for s in sinks]
