"""``chatstream job dispatch | engagement | anomaly | scaling``: the platform's stream jobs, wired from the settings."""

from __future__ import annotations

import asyncio
import os
import random
import time

import typer
from confluent_kafka.schema_registry import SchemaRegistryClient

from chatstream.avro.catalog import load_catalog
from chatstream.avro.registry import ContractRegistry, registry_fetcher
from chatstream.avro.serde import ConfluentDecoder, ConfluentEncoder
from chatstream.settings import Settings
from chatstream.topics import TopicAdmin

app = typer.Typer(help="The platform's stream jobs.", no_args_is_help=True)


def build_dispatch(settings: Settings) -> object:
    """The dispatch job: routing config, provider clients, contracts, Faust app (not started)."""
    from jobs.dispatch.app import APP_ID, DispatchJob
    from jobs.dispatch.config import load_routing
    from jobs.dispatch.engine import Dispatcher
    from jobs.dispatch.providers import build_providers
    from jobs.dispatch.start import skip_unanswerable
    from pipelines.topics import AI_REQUESTS, AI_RESPONSES, CHAT_ACTIONS

    routing = load_routing(settings.models_file, os.environ)  # main(): API keys come from the environment
    topics = TopicAdmin(settings.kafka_bootstrap_servers, timeout_s=10).require(
        [CHAT_ACTIONS.name, AI_REQUESTS.name, AI_RESPONSES.name])  # fmt: skip
    catalog = load_catalog()
    with ContractRegistry(settings.schema_registry_url) as registry:
        encoders = {topic: ConfluentEncoder(catalog[topic].schema, registry.register(catalog[topic]).schema_id)
                    for topic in (AI_REQUESTS.name, AI_RESPONSES.name)}  # fmt: skip
    decoder = ConfluentDecoder(registry_fetcher(SchemaRegistryClient({"url": settings.schema_registry_url})))
    dispatcher = Dispatcher(routing, build_providers(routing), clock_ms=lambda: int(time.time() * 1000),
                            sleep=asyncio.sleep, rng=random.Random())  # fmt: skip
    skip_unanswerable(settings.kafka_bootstrap_servers, APP_ID, CHAT_ACTIONS.name,
                      topics[CHAT_ACTIONS.name].partitions, settings.chat_total_timeout_s)  # fmt: skip
    return DispatchJob(
        bootstrap=settings.kafka_bootstrap_servers,
        actions_topic=CHAT_ACTIONS.name,
        requests_topic=AI_REQUESTS.name,
        responses_topic=AI_RESPONSES.name,
        dispatcher=dispatcher,
        decoder=decoder,
        request_encoder=encoders[AI_REQUESTS.name],
        response_encoder=encoders[AI_RESPONSES.name],
        max_in_flight=settings.dispatch_max_in_flight,
        partitions=topics[CHAT_ACTIONS.name].partitions,
        web_host=settings.gateway_host,
        web_port=settings.dispatch_port,
    )


@app.command()
def dispatch(ctx: typer.Context) -> None:
    """Answer the chat API's requests: route, call providers, stream answers back through Kafka
    (Ctrl-C or SIGTERM: stop taking requests, exit). Metrics and readiness on port base + 87."""
    from chatstream.ops_publisher import build_publisher, publishing
    from jobs.dispatch.app import LOAD, DispatchJob
    from jobs.faust_worker import run_worker
    from pipelines.topics import METRICS

    job = build_dispatch(ctx.obj)
    assert isinstance(job, DispatchJob)
    with publishing(build_publisher(ctx.obj, METRICS.name, "dispatch", LOAD, job.metrics.registry.collect)):
        run_worker(job.app)


@app.command()
def engagement(
    ctx: typer.Context,
    jobmanager: str | None = typer.Option(
        None, "--jobmanager", metavar="HOST:PORT",
        help="Submit to this Flink cluster's REST endpoint instead of a local MiniCluster "
        "(or set CHATSTREAM_ENGAGEMENT_JOBMANAGER).",
    ),
    restore: bool = typer.Option(
        True, "--restore/--no-restore", help="Resume from the newest retained checkpoint, if any."
    ),
) -> None:
    """Aggregate chat activity into engagement windows, sessions and late events (PyFlink SQL,
    exactly once). Ctrl-C or SIGTERM cancels the job; its checkpoints stay, and the next start
    resumes from the newest. Settings: CHATSTREAM_ENGAGEMENT_* (see jobs/engagement/config.py)."""
    import logging

    from jobs.engagement.app import run
    from jobs.engagement.config import EngagementSettings
    from pipelines.engagement import LATE_TOPIC, SESSIONS_TOPIC, SOURCES, WINDOWS_TOPIC

    if jobmanager is not None:
        host, _, port = jobmanager.rpartition(":")
        if not host or not port.isdigit():
            raise typer.BadParameter("expected HOST:PORT of the cluster's REST endpoint", param_hint="--jobmanager")
    settings: Settings = ctx.obj
    TopicAdmin(settings.kafka_bootstrap_servers, timeout_s=10).require([*SOURCES, WINDOWS_TOPIC, SESSIONS_TOPIC, LATE_TOPIC])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("jobs.engagement").setLevel(logging.INFO)  # PyFlink's import lowers the root to WARNING
    job = EngagementSettings()
    overrides: dict[str, object] = {"restore": restore}
    if jobmanager is not None:
        overrides["jobmanager"] = jobmanager
    raise typer.Exit(run(settings, job.model_copy(update=overrides)))


@app.command()
def anomaly(ctx: typer.Context) -> None:
    """Watch service metrics and engagement windows minute by minute; publish anomalies (opened,
    resolved) to ops.anomalies.v1 (Ctrl-C or SIGTERM: stop, state kept in Faust tables).
    Metrics and readiness on port base + 88. Settings: CHATSTREAM_ANOMALY_* (jobs/anomaly/config.py)."""
    from chatstream.ops_publisher import build_publisher, publishing
    from jobs.anomaly.app import APP_ID, LOAD, AnomalyJob
    from jobs.anomaly.config import AnomalySettings
    from jobs.faust_worker import run_worker
    from jobs.minute_series import ensure_series_topic
    from pipelines.anomaly import ANOMALIES_TOPIC, SOURCES
    from pipelines.topics import METRICS

    settings: Settings = ctx.obj
    job_settings = AnomalySettings()
    admin = TopicAdmin(settings.kafka_bootstrap_servers, timeout_s=10)
    admin.require([*SOURCES, ANOMALIES_TOPIC])
    ensure_series_topic(admin, APP_ID, job_settings.partitions)
    contract = load_catalog()[ANOMALIES_TOPIC]
    with ContractRegistry(settings.schema_registry_url) as registry:
        encoder = ConfluentEncoder(contract.schema, registry.register(contract).schema_id)
    decoder = ConfluentDecoder(registry_fetcher(SchemaRegistryClient({"url": settings.schema_registry_url})))
    job = AnomalyJob(bootstrap=settings.kafka_bootstrap_servers, sources=SOURCES, anomalies_topic=ANOMALIES_TOPIC,
                     decoder=decoder, encoder=encoder, settings=job_settings, web_host=settings.gateway_host,
                     web_port=settings.anomaly_port)  # fmt: skip
    with publishing(build_publisher(settings, METRICS.name, "anomaly", LOAD, job.metrics.registry.collect)), job.stream.reading():
        run_worker(job.app)


@app.command()
def scaling(ctx: typer.Context) -> None:
    """Forecast each configured service's load minute by minute from ops.metrics.v1 and publish
    desired replicas to ops.scaling_signals.v1 (Ctrl-C or SIGTERM: stop, state kept in Faust
    tables). Serves GET /v1/scaling/{service} for KEDA's metrics-api scaler, /metrics (with
    chatstream_desired_replicas) and readiness on port base + 89. Settings: CHATSTREAM_SCALING_*
    (jobs/scaling/config.py)."""
    from chatstream.ops_publisher import build_publisher, publishing
    from jobs.faust_worker import run_worker
    from jobs.minute_series import ensure_series_topic
    from jobs.scaling.app import APP_ID, LOAD, ScalingJob
    from jobs.scaling.config import ScalingSettings
    from jobs.scaling.signal_view import SignalView
    from pipelines.topics import METRICS, SCALING_SIGNALS

    settings: Settings = ctx.obj
    job_settings = ScalingSettings()
    admin = TopicAdmin(settings.kafka_bootstrap_servers, timeout_s=10)
    admin.require([METRICS.name, SCALING_SIGNALS.name])
    ensure_series_topic(admin, APP_ID, job_settings.partitions)
    contract = load_catalog()[SCALING_SIGNALS.name]
    with ContractRegistry(settings.schema_registry_url) as registry:
        encoder = ConfluentEncoder(contract.schema, registry.register(contract).schema_id)
    decoder = ConfluentDecoder(registry_fetcher(SchemaRegistryClient({"url": settings.schema_registry_url})))
    view = SignalView(bootstrap=settings.kafka_bootstrap_servers, topic=SCALING_SIGNALS.name, decode=decoder.decode)
    job = ScalingJob(bootstrap=settings.kafka_bootstrap_servers, metrics_topic=METRICS.name, signals_topic=SCALING_SIGNALS.name,
                     decoder=decoder, encoder=encoder, settings=job_settings, web_host=settings.gateway_host,
                     web_port=settings.scaling_port, view=view)  # fmt: skip
    view.start()
    try:
        with publishing(build_publisher(settings, METRICS.name, "scaling", LOAD, job.metrics.registry.collect)), job.stream.reading():
            run_worker(job.app)
    finally:
        view.stop()
