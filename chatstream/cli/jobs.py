"""``chatstream job dispatch``: the platform's stream jobs, wired from the settings."""

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
    from jobs.dispatch.app import DispatchJob, run_worker

    job = build_dispatch(ctx.obj)
    assert isinstance(job, DispatchJob)
    run_worker(job)
