"""Fakes behind the gateway's seams, for tests that need no service."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import fastavro

from chatstream.avro.catalog import load_catalog
from chatstream.avro.serde import ConfluentEncoder
from gateway.app import Gateway, Limits
from gateway.auth import TokenVerifier, issue_token
from gateway.chat import ChatService
from pipelines.topics import DISPATCH_HEADER, REQUEST_HEADER
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
                 max_events: int = 1000, max_bytes: int = 1 << 20, max_event_bytes: int = 1 << 21,
                 chat: ChatService | None = None) -> Gateway:  # fmt: skip
    return Gateway(
        producer=producer,  # type: ignore[arg-type]
        verifier=TokenVerifier(algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER, secret=SECRET),
        limiter=TenantLimiter(rate, burst),
        shape=shape(),
        limits=Limits(max_events, max_bytes, max_event_bytes),
        metrics=GatewayMetrics(),
        ready_checks={"kafka": producer.reachable},
        chat=chat,
    )


def token(tenant: str = "acme", user: str = "alice", **kw: object) -> str:
    return issue_token(SECRET, tenant=tenant, user=user, audience=AUDIENCE, issuer=ISSUER, **kw)  # type: ignore[arg-type]


# The chat API: a reply reader without Kafka, and a producer that plays the dispatch job.


_CHAT_ACTIONS = fastavro.parse_schema(load_catalog()["chat.actions.v1"].schema)


def decode_action(value: bytes) -> dict[str, Any]:
    """A chat action as the gateway encoded it (Confluent framing, chat.actions.v1)."""
    record = fastavro.schemaless_reader(io.BytesIO(value[5:]), _CHAT_ACTIONS, None)
    assert isinstance(record, dict)
    return record


def reply(kind: str, **fields: Any) -> dict[str, Any]:
    """An ``ai.responses.v1`` event as the reply reader hands it over, decoded (``request_id`` is
    filled in when the job plays it)."""
    return {"kind": kind, "sequence": 0, "delta": None, "content": None, "finish_reason": None,
            "prompt_tokens": None, "completion_tokens": None, "error_code": None, "error_message": None,
            "retryable": None, **fields}  # fmt: skip


def chunk_reply(sequence: int, delta: str) -> dict[str, Any]:
    return reply("CHUNK", sequence=sequence, delta=delta)


def completed_reply(content: str, *, prompt_tokens: int | None = 5, completion_tokens: int | None = 2,
                    finish_reason: str = "stop") -> dict[str, Any]:  # fmt: skip
    return reply("COMPLETED", content=content, finish_reason=finish_reason, prompt_tokens=prompt_tokens,
                 completion_tokens=completion_tokens)  # fmt: skip


def failed_reply(error_code: str, *, retryable: bool = False, message: str | None = None) -> dict[str, Any]:
    return reply("FAILED", finish_reason="error", error_code=error_code, retryable=retryable,
                 error_message=message if message is not None else f"{error_code}: the job gave up")  # fmt: skip


@dataclass(frozen=True)
class Pause:
    """A script step: the job is silent this long before its next step."""

    seconds: float


Step = dict[str, Any] | Pause | Callable[[], object]


@dataclass(frozen=True)
class Sent:
    """One record the gateway handed to its direct producer."""

    topic: str
    key: bytes
    value: bytes
    partition: int | None
    headers: dict[str, bytes]

    @property
    def dispatch(self) -> str:
        """``request`` or ``stop``: the ``chatstream-dispatch`` header."""
        return self.headers[DISPATCH_HEADER].decode()

    @property
    def request_id(self) -> str:
        return self.headers[REQUEST_HEADER].decode()

    def action(self) -> dict[str, Any]:
        return decode_action(self.value)


class FakeReplyReader:
    """``gateway.replies.ReplyReader`` without Kafka: ``deliver`` does what its reading thread does,
    hand a reply to the queue its request registered (and drop it when nobody waits)."""

    def __init__(self, partition: int = 3) -> None:
        self.partition = partition
        self.queues: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self.started = False
        self.closed = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.started = True

    def register(self, request_id: str) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.queues[request_id] = queue
        return queue

    def unregister(self, request_id: str) -> None:
        self.queues.pop(request_id, None)

    @property
    def waiting(self) -> int:
        return len(self.queues)

    def deliver(self, answer: dict[str, Any]) -> None:
        queue = self.queues.get(str(answer["request_id"]))
        if queue is not None:
            queue.put_nowait(answer)

    def close(self) -> None:
        self.closed = True


class FakeDirectProducer:
    """Kafka and the dispatch job in one, behind ``gateway.direct_producer.DirectProducer``'s seam.

    Every ``send`` is recorded (nothing is decoded). A ``request`` record makes the job play
    ``script`` in the background: each reply is delivered to ``replies`` with the request id of
    the record's ``chatstream-request-id`` header, a :class:`Pause` is silence, a callable is
    called (the test's cue). ``refuse`` makes Kafka refuse every record, as the real producer does.
    """

    def __init__(self, replies: FakeReplyReader, script: Sequence[Step] = ()) -> None:
        self.replies = replies
        self.script = list(script)
        self.sent: list[Sent] = []
        self.refuse = False
        self.closed = False
        self._playing: set[asyncio.Task[None]] = set()

    async def send(self, topic: str, key: bytes, value: bytes, *, partition: int | None = None,
                   headers: list[tuple[str, bytes]] | None = None) -> None:  # fmt: skip
        if self.refuse:
            raise KafkaUnavailableError("Kafka refused the request: broker down", retry_after_s=1)
        sent = Sent(topic, key, value, partition, dict(headers or []))
        self.sent.append(sent)
        if sent.dispatch == "request":
            task = asyncio.get_running_loop().create_task(self._play(sent.request_id))
            self._playing.add(task)
            task.add_done_callback(self._playing.discard)

    async def _play(self, request_id: str) -> None:
        for step in self.script:
            if isinstance(step, Pause):
                await asyncio.sleep(step.seconds)
            elif isinstance(step, dict):
                self.replies.deliver({**step, "request_id": request_id})
            else:
                step()

    def of(self, dispatch: str) -> list[Sent]:
        """The records sent with this ``chatstream-dispatch`` header."""
        return [sent for sent in self.sent if sent.dispatch == dispatch]

    async def first(self, dispatch: str, timeout_s: float = 1.0) -> Sent:
        """The first record of this kind, waiting for it (stops are sent in the background)."""
        async with asyncio.timeout(timeout_s):
            while not self.of(dispatch):
                await asyncio.sleep(0.005)
        return self.of(dispatch)[0]

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop playing (call it on the event loop's thread while a script still plays)."""
        self.closed = True
        for task in self._playing:
            task.cancel()


MODELS = {"fast": "Quick answers", "smart": "Careful answers"}


def make_chat(job: FakeDirectProducer, *, first_token_timeout_s: float = 0.2, idle_timeout_s: float = 0.2,
              total_timeout_s: float = 1.0, partitions: int = 6) -> ChatService:  # fmt: skip
    return ChatService(
        producer=job,  # type: ignore[arg-type]
        replies=job.replies,  # type: ignore[arg-type]
        encoder=shape().encoder,
        topic="chat.actions.v1",
        partitions=partitions,
        models=dict(MODELS),
        reply_to="unit-gw-0",
        first_token_timeout_s=first_token_timeout_s,
        idle_timeout_s=idle_timeout_s,
        total_timeout_s=total_timeout_s,
    )
