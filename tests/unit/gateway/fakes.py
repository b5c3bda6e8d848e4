"""Fakes behind the gateway's seams, for tests that need no service."""

from __future__ import annotations

from chatstream.avro.catalog import load_catalog
from chatstream.avro.serde import ConfluentEncoder
from gateway.app import Gateway, Limits
from gateway.auth import TokenVerifier, issue_token
from gateway.errors import KafkaUnavailableError
from gateway.events import ChatActionShape
from gateway.metrics import GatewayMetrics
from gateway.ratelimit import TenantLimiter

SECRET = "unit-test-secret-" * 5  # long enough for HS512 too (64+ bytes)
AUDIENCE, ISSUER = "chatstream", "chatstream-local"


class FakeProducer:
    """Records what would be produced; ``down`` makes it act like an unreachable Kafka."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.down = False

    async def send(self, topic: str, records: list[tuple[bytes, bytes]]) -> None:
        if self.down:
            raise KafkaUnavailableError("Kafka did not acknowledge within 1s", retry_after_s=5)
        self.sent += [(topic, k, v) for k, v in records]

    def reachable(self, timeout_s: float = 2.0) -> bool:
        return not self.down

    def close(self, flush_timeout_s: float = 10.0) -> int:
        return 0


def shape(schema_id: int = 42) -> ChatActionShape:
    contract = load_catalog()["chat.actions.v1"]
    return ChatActionShape(contract.schema, ConfluentEncoder(contract.schema, schema_id))


def make_gateway(producer: FakeProducer, *, rate: float = 1e9, burst: float = 1e9,
                 max_events: int = 1000, max_bytes: int = 1 << 20, max_event_bytes: int = 1 << 21) -> Gateway:  # fmt: skip
    return Gateway(
        producer=producer,  # type: ignore[arg-type]
        verifier=TokenVerifier(algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER, secret=SECRET),
        limiter=TenantLimiter(rate, burst),
        shape=shape(),
        limits=Limits(max_events, max_bytes, max_event_bytes),
        metrics=GatewayMetrics(),
        ready_checks={"kafka": producer.reachable},
    )


def token(tenant: str = "acme", user: str = "alice", **kw: object) -> str:
    return issue_token(SECRET, tenant=tenant, user=user, audience=AUDIENCE, issuer=ISSUER, **kw)  # type: ignore[arg-type]
