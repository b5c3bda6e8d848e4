"""Wire the gateway from the settings and serve it with uvicorn (``chatstream gateway``)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn

from chatstream.avro.catalog import load_catalog
from chatstream.avro.registry import ContractRegistry
from chatstream.avro.serde import ConfluentEncoder
from chatstream.settings import Settings
from gateway.app import EVENTS_TOPIC, Gateway, Limits, create_app
from gateway.auth import TokenVerifier, local_secret
from gateway.events import ChatActionShape
from gateway.metrics import GatewayMetrics
from gateway.producer import EventProducer
from gateway.ratelimit import TenantLimiter


def jwt_secret(settings: Settings) -> str | None:
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    if settings.jwks_url:
        return None
    return local_secret(settings.state_dir)


def build_gateway(settings: Settings) -> Gateway:
    """Register the contract (the platform does it at start), then assemble the gateway."""
    contract = load_catalog()[EVENTS_TOPIC]
    with ContractRegistry(settings.schema_registry_url) as registry:
        schema_id = registry.register(contract).schema_id
    encoder = ConfluentEncoder(contract.schema, schema_id)

    def registry_reachable() -> bool:
        try:
            return httpx.get(f"{settings.schema_registry_url}/subjects", timeout=2).is_success
        except httpx.HTTPError:
            return False

    producer = EventProducer(settings.kafka_bootstrap_servers, ack_timeout_s=settings.ack_timeout_s)
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
        limiter=TenantLimiter(settings.rate_limit_events_per_s, settings.rate_limit_burst),
        shape=ChatActionShape(contract.schema, encoder),
        limits=Limits(settings.max_batch_events, settings.max_body_bytes),
        metrics=GatewayMetrics(),
        ready_checks={"kafka": producer.reachable, "registry": registry_reachable},
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


def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM: stop accepting, finish requests, flush Kafka, return."""
    config = uvicorn.Config(
        create_app(build_gateway(settings)),
        host=settings.gateway_host,
        port=settings.gateway_listen_port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    _Server(config).run()
