"""The engagement job's wiring: settings to a PyFlink ``TableEnvironment``, submitted and watched.

The same Python job runs on a local MiniCluster (the default, inside this process's JVM) or on a
Flink cluster (``jobmanager=host:port``: the plan is pure SQL, so the cluster needs no Python).
Checkpoints go to ``<state>/flink/checkpoints`` and are retained on cancellation; a start resumes
from the newest one there, its Kafka offsets, windows and open transactions included.
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from chatstream.avro.catalog import load_catalog
from chatstream.avro.registry import registry_fetcher
from chatstream.avro.serde import ConfluentDecoder
from chatstream.errors import ChatstreamError
from chatstream.settings import Settings
from infra.local.errors import InfraError
from infra.local.flink import FlinkConnectors
from jobs.engagement.checkpoints import newest_checkpoint
from jobs.engagement.config import EngagementSettings
from jobs.engagement.errors import ConnectorJarsError, JobSubmitError, ResumeError
from jobs.engagement.resume import restore_floor
from jobs.engagement.sql import JobSpec, KafkaTable, activity_reader, statements
from pipelines.engagement import LATE_TOPIC, SESSIONS_TOPIC, SOURCES, WINDOWS_TOPIC
from pipelines.topics import AI_RESPONSES, CHAT_ACTIONS

log = logging.getLogger(__name__)

JOB_NAME = "chatstream-engagement"
TERMINAL = {"FINISHED", "FAILED", "CANCELED"}


def checkpoint_uri(settings: Settings, job: EngagementSettings) -> str:
    return job.checkpoint_dir or (settings.state_dir / "flink" / "checkpoints").as_uri()


def connector_jars(settings: Settings) -> list[Path]:
    """The connector jars, fetched now if ``infra up`` has not (``ConnectorJarsError`` if impossible)."""
    connectors = FlinkConnectors(settings)
    if connectors.present():
        return connectors.jars()
    try:
        return connectors.fetch()
    except InfraError as exc:
        raise ConnectorJarsError(f"the Flink connector jars are missing and could not be fetched: {exc}") from exc


def job_spec(settings: Settings, job: EngagementSettings, *, late_floor_ms: int | None = None) -> JobSpec:
    """The tables and figures of the job, from the contracts on disk and the settings."""
    catalog = load_catalog()
    reader = activity_reader(catalog[CHAT_ACTIONS.name].schema, catalog[AI_RESPONSES.name].schema)
    startup: dict[str, str] = {"scan.startup.mode": job.startup_mode}
    if job.startup_mode == "timestamp":
        startup["scan.startup.timestamp-millis"] = str(job.startup_timestamp_ms or 0)
    source = {
        "connector": "kafka",
        "properties.bootstrap.servers": settings.kafka_bootstrap_servers,
        "properties.group.id": job.group_id,
        "properties.auto.offset.reset": "earliest",
        "properties.isolation.level": "read_committed",
        **startup,
        # Flink's avro-confluent, but a record that is not Confluent Avro of a registered schema
        # is skipped, counted and logged instead of failing the job (jobs/engagement/format)
        "format": "lenient-avro-confluent",
        "lenient-avro-confluent.url": settings.schema_registry_url,
    }

    def sink(topic: str) -> KafkaTable:
        return KafkaTable(topic, catalog[topic].schema, {
            "connector": "kafka",
            "topic": topic,
            "properties.bootstrap.servers": settings.kafka_bootstrap_servers,
            # below the broker's transaction.max.timeout.ms (15 min), above any checkpoint's span
            "properties.transaction.timeout.ms": "600000",
            "sink.delivery-guarantee": "exactly-once",
            # stable across hosts and restarts (one job per group): a restarted job, wherever it
            # runs, finds and aborts what its predecessor left open instead of stalling readers
            "sink.transactional-id-prefix": f"{job.group_id}-{topic}",
            "key.format": "raw",
            "key.fields": "tenant_id",
            "value.format": "avro-confluent",
            "value.fields-include": "ALL",
            "value.avro-confluent.url": settings.schema_registry_url,
            "value.avro-confluent.subject": f"{topic}-value",
        })  # fmt: skip

    return JobSpec(
        activity=KafkaTable(";".join(SOURCES), reader, {**source, "topic": ";".join(SOURCES)}),
        windows=sink(WINDOWS_TOPIC),
        sessions=sink(SESSIONS_TOPIC),
        late=sink(LATE_TOPIC),
        watermark_delay_ms=job.watermark_delay_ms,
        session_gap_ms=round(job.session_gap_s * 1000),
        job_name=job.group_id,
        late_floor_ms=late_floor_ms,
    )


def restored_checkpoint(settings: Settings, job: EngagementSettings) -> str | None:
    """The checkpoint this start resumes from, if any."""
    return newest_checkpoint(checkpoint_uri(settings, job)) if job.restore else None


def late_floor(settings: Settings, job: EngagementSettings) -> int | None:
    """The restore floor (``jobs.engagement.resume``) over what the job has committed."""
    registry = SchemaRegistryClient({"url": settings.schema_registry_url})
    try:
        return restore_floor(settings.kafka_bootstrap_servers, WINDOWS_TOPIC, SESSIONS_TOPIC, job.group_id,
                             round(job.session_gap_s * 1000), ConfluentDecoder(registry_fetcher(registry)).decode)  # fmt: skip
    except (KafkaException, TimeoutError, SchemaRegistryError, ChatstreamError) as exc:
        raise ResumeError(f"resuming from a checkpoint, the job could not read back what it committed: {exc}") from exc


def flink_config(settings: Settings, job: EngagementSettings, jars: list[Path], restored: str | None) -> dict[str, str]:
    """Flink configuration of the job (checkpointing, time, where it runs)."""
    config = {
        "pipeline.name": JOB_NAME,
        "pipeline.jars": ";".join(jar.as_uri() for jar in jars),
        "parallelism.default": str(job.parallelism),
        "table.local-time-zone": "UTC",
        # the planner's operators copy what they keep, so chained operators may hand rows on
        # uncopied: ~20-30 % more events/s in the engagement benchmark (bench/RESULTS.md)
        "pipeline.object-reuse": "true",
        "table.exec.source.idle-timeout": f"{round(job.idle_timeout_s * 1000)} ms",
        "execution.checkpointing.interval": f"{round(job.checkpoint_interval_s * 1000)} ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.dir": checkpoint_uri(settings, job),
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.num-retained": "3",
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": "2147483647",
        "restart-strategy.fixed-delay.delay": "5 s",
    }
    if job.jobmanager:
        host, _, port = job.jobmanager.rpartition(":")
        config.update({"execution.target": "remote", "rest.address": host, "rest.port": port})
    if restored is not None:
        log.info("resuming from checkpoint %s", restored)
        config["execution.state-recovery.path"] = restored
    return {**config, **job.flink_options}


@dataclass
class RunningJob:
    """A submitted job: its client, and what stopping it takes."""

    result: Any  # pyflink TableResult

    @property
    def job_id(self) -> str:
        return str(self.result.get_job_client().get_job_id())

    def status(self) -> str:
        return str(self.result.get_job_client().get_job_status().result().name)

    def cancel(self) -> None:
        self.result.get_job_client().cancel().result()


def submit(settings: Settings, job: EngagementSettings) -> RunningJob:
    """Plan and submit the job; returns once Flink has taken it."""
    from pyflink.table import EnvironmentSettings, TableEnvironment
    from py4j.protocol import Py4JError
    from pyflink.util.exceptions import JavaException

    jars = connector_jars(settings)
    restored = restored_checkpoint(settings, job)
    floor = late_floor(settings, job) if restored is not None else None
    table_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    for key, value in flink_config(settings, job, jars, restored).items():
        table_env.get_config().set(key, value)
    ddl, inserts = statements(job_spec(settings, job, late_floor_ms=floor))
    try:
        for statement in ddl:
            table_env.execute_sql(statement)
        statement_set = table_env.create_statement_set()
        for insert in inserts:
            statement_set.add_insert_sql(insert)
        return RunningJob(statement_set.execute())
    except (JavaException, Py4JError) as exc:
        raise JobSubmitError(f"Flink refused the engagement job: {str(exc).splitlines()[0]}") from exc


def run(settings: Settings, job: EngagementSettings, *, poll_s: float = 1.0) -> int:
    """Submit the job and watch it until it ends, or until SIGINT/SIGTERM cancels it (exit 0).
    A stop asked for while the job is being planned and submitted (the JVM starting, seconds to a
    minute) is honoured once Flink has taken it: it is cancelled at once, still a clean stop."""
    stop = _StopFlag()
    try:
        log.info("starting the engagement job (%s)", job.jobmanager or "local MiniCluster")
        running = submit(settings, job)
        log.info("engagement job %s submitted (%s)", running.job_id, job.jobmanager or "local MiniCluster")
        while not stop.requested:
            state = running.status()
            if state in TERMINAL:
                log.error("engagement job ended: %s", state)
                return 1
            time.sleep(poll_s)
    finally:
        stop.restore()
    log.info("stopping: cancelling the job (its checkpoints are retained)")
    running.cancel()
    return 0


class _StopFlag:
    """SIGINT/SIGTERM set a flag the watch loop reads (a signal never lands inside a py4j call)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
