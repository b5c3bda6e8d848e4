"""Wire the gateway from the settings and serve it with uvicorn (``chatstream gateway``)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from confluent_kafka.schema_registry import SchemaRegistryClient

from chatstream.avro.catalog import load_catalog
from chatstream.avro.registry import ContractRegistry, registry_fetcher
from chatstream.avro.serde import ConfluentDecoder, ConfluentEncoder
from chatstream.errors import ChatstreamError
from chatstream.ops_publisher import build_publisher, instance_name
from chatstream.settings import Settings, load_settings
from chatstream.topics import Existing
from chatstream.stores import clickhouse_client
from gateway.analytics_store import AnalyticsStore
from gateway.app import EVENTS_TOPIC, Gateway, Limits, create_app
from gateway.auth import TokenVerifier, local_secret
from gateway.chat import ChatService
from gateway.direct_producer import DirectProducer
from gateway.connection import guarded_protocol
from gateway.events import ChatActionShape
from gateway.metrics import LOAD, MULTIPROCESS_DIR, GatewayMetrics
from gateway.producer import EventProducer
from gateway.ratelimit import TenantLimiter
from gateway.replies import ReplyReader, reply_partition
from gateway.startup import (
    RECORD_OVERHEAD,
    check_body_fits,
    check_limits,
    max_message_bytes,
    require_topics,
    transactional_id,
)
from jobs.dispatch.config import load_routing
from pipelines.topics import AI_RESPONSES, METRICS


def jwt_secret(settings: Settings) -> str | None:
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    if settings.jwks_url:
        return None
    return local_secret(settings.state_dir)


def build_gateway(settings: Settings, worker: int = 0) -> Gateway:
    """Check the settings and the topic, register the contract (the platform does it at start),
    then assemble the gateway. ``worker``: this process's index among the gateway's workers."""
    check_limits(settings)
    topics = require_topics(settings.kafka_bootstrap_servers, [EVENTS_TOPIC, AI_RESPONSES.name])
    topic_limit = max_message_bytes(topics[EVENTS_TOPIC])
    check_body_fits(settings, topic_limit)
    contract = load_catalog()[EVENTS_TOPIC]
    with ContractRegistry(settings.schema_registry_url) as registry:
        schema_id = registry.register(contract).schema_id
    encoder = ConfluentEncoder(contract.schema, schema_id)
    chat = build_chat(settings, worker, encoder, topics, topic_limit)

    def registry_reachable() -> bool:
        try:
            return httpx.get(f"{settings.schema_registry_url}/subjects", timeout=2).is_success
        except httpx.HTTPError:
            return False

    metrics = GatewayMetrics()
    producer = EventProducer(
        settings.kafka_bootstrap_servers,
        transactional_id=transactional_id(settings, worker),
        ack_timeout_s=settings.ack_timeout_s,
        max_message_bytes=topic_limit,
        on_outcome=lambda outcome, events: metrics.transactions.labels(outcome).inc(),
    )
    return Gateway(
        producer=producer,
        verifier=TokenVerifier(
            algorithms=settings.jwt_algorithms,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            tenant_claim=settings.jwt_tenant_claim,
            secret=jwt_secret(settings),
            jwks_url=settings.jwks_url,
        ),
        # each worker enforces its share of a tenant's limits (connections spread over workers)
        limiter=TenantLimiter(settings.rate_limit_events_per_s / settings.gateway_workers,
                              settings.rate_limit_burst / settings.gateway_workers),  # fmt: skip
        shape=ChatActionShape(contract.schema, encoder, max_age_days=settings.max_event_age_days),
        limits=Limits(settings.max_batch_events, settings.max_body_bytes, max_event_bytes=topic_limit - RECORD_OVERHEAD),
        metrics=metrics,
        ready_checks={"kafka": producer.reachable, "registry": registry_reachable,
                      "topic": lambda: producer.topic_exists(EVENTS_TOPIC) is True},  # fmt: skip
        chat=chat,
        analytics=build_analytics(settings),
        ops=build_publisher(settings, METRICS.name, "gateway", LOAD, metrics.registry.collect,
                            instance=instance_name(f"/{worker}"),
                            labels={"port": str(settings.gateway_listen_port), "worker": str(worker)}),  # fmt: skip
    )


def build_analytics(settings: Settings) -> AnalyticsStore:
    """The analytics API's ClickHouse: clients opened on first use, so the gateway starts (and
    ingests) while ClickHouse is down; its queries answer 503 meanwhile."""

    def connect(timeout_s: float) -> object:
        return clickhouse_client(settings, connect_timeout=min(5.0, timeout_s), send_receive_timeout=timeout_s + 5,
                                 autogenerate_session_id=False)  # fmt: skip

    return AnalyticsStore(connect, max_clients=settings.analytics_max_clients, timeout_s=settings.analytics_timeout_s)


def build_chat(settings: Settings, worker: int, encoder: ConfluentEncoder, topics: dict[str, Existing],
               topic_limit: int) -> ChatService:  # fmt: skip
    """The chat API's parts: the routing config's aliases, a direct producer, this worker's replies."""
    routing = load_routing(settings.models_file)
    name = f"{settings.instance}-{settings.gateway_listen_port}-{worker}"
    partition = reply_partition(settings.reply_partition_base, worker, topics[AI_RESPONSES.name].partitions)
    decoder = ConfluentDecoder(registry_fetcher(SchemaRegistryClient({"url": settings.schema_registry_url})))
    return ChatService(
        producer=DirectProducer(settings.kafka_bootstrap_servers, ack_timeout_s=settings.ack_timeout_s,
                                max_message_bytes=topic_limit),  # fmt: skip
        replies=ReplyReader(settings.kafka_bootstrap_servers, AI_RESPONSES.name, partition, decoder.decode,
                            group=f"chatstream-gateway-replies-{name}"),  # fmt: skip
        encoder=encoder,
        topic=EVENTS_TOPIC,
        partitions=topics[EVENTS_TOPIC].partitions,
        models={alias: spec.description or alias for alias, spec in routing.aliases.items()},
        reply_to=name,
        first_token_timeout_s=settings.chat_first_token_timeout_s,
        idle_timeout_s=settings.chat_idle_timeout_s,
        total_timeout_s=settings.chat_total_timeout_s,
    )


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGINT/SIGTERM after a graceful shutdown (exit status -15); a
    gateway that stopped cleanly exits 0 instead, as process supervisors expect."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def server_options(settings: Settings) -> dict[str, Any]:
    return {"loop": "uvloop", "http": guarded_protocol(settings.max_header_bytes, settings.request_read_timeout_s),
            "log_level": "warning", "access_log": False, "timeout_graceful_shutdown": 10}  # fmt: skip


def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM: stop accepting, finish requests, flush Kafka, return. With
    ``gateway_workers`` > 1 this process becomes the workers' supervisor (``gateway.workers``)."""
    if settings.gateway_workers == 1:
        config = uvicorn.Config(create_app(build_gateway(settings)), host=settings.gateway_host,
                                port=settings.gateway_listen_port, **server_options(settings))  # fmt: skip
        _Server(config).run()
        return
    metrics_dir = settings.state_dir / "run" / "gateway-metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)  # counters start at zero with the gateway
    metrics_dir.mkdir(parents=True)
    os.environ.update({"CHATSTREAM_STATE_DIR": str(settings.state_dir), "CHATSTREAM_GATEWAY_WORKERS": str(settings.gateway_workers),
                       MULTIPROCESS_DIR: str(metrics_dir)})  # fmt: skip
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "gateway.workers", str(settings.gateway_workers)])


def serve_worker(worker: int) -> None:
    """Worker ``worker`` of several (``python -m gateway.main N``, settings from the environment):
    its own listening socket on the shared port (SO_REUSEPORT)."""
    settings = load_settings()
    family, kind, proto, _, address = socket.getaddrinfo(
        settings.gateway_host, settings.gateway_listen_port, type=socket.SOCK_STREAM)[0]  # fmt: skip
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        listener.bind(address)
    except OSError as exc:
        sys.exit(f"error: gateway worker cannot listen on {settings.gateway_host}:{settings.gateway_listen_port}: {exc}")
    listener.listen(2048)
    try:
        gateway = build_gateway(settings, worker)
    except ChatstreamError as exc:
        sys.exit(f"error: {exc}")
    config = uvicorn.Config(create_app(gateway), **server_options(settings))
    _Server(config).run(sockets=[listener])


if __name__ == "__main__":
    serve_worker(int(sys.argv[1]))
