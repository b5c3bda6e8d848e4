"""The dispatch job's wiring: a Faust agent on ``chat.actions.v1``, the engine, answers to Kafka.

The agent reads the records the gateway's chat API marks (header ``chatstream-dispatch``:
``request`` or ``stop``) and skips every other chat action without decoding it. A request is
decoded and answered in a task of its own, so one worker streams many answers at once (at most
``CHATSTREAM_DISPATCH_MAX_IN_FLIGHT``; beyond that the agent waits, and Kafka holds the rest).
Each attempt is published to ``ai.requests.v1`` and every event of the answer to the request's
reply partition of ``ai.responses.v1`` (the gateway worker holding the client reads it). A stop
cancels the request's task, which closes the provider's stream.

Tenant limits are fleet-wide: the gateway sends a tenant's requests to one partition, so one
worker at a time owns the tenant. Its usage (RPM/TPM windows, the day's spend) lives in a Faust
table keyed by tenant whose changelog is co-partitioned with the requests: a worker taking the
partition over after a rebalance or a crash restores the tenant's usage from it.

Delivery: the agent's offsets advance as requests are taken (Faust's at-least-once acks an
event once the agent moved past it), so a worker killed mid-answer does not redo its answers;
their clients get the gateway's timeout error, and nothing is billed twice (a request's
COMPLETED is written once, and the stores keep one row per request).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from contextlib import aclosing
from typing import Any

import faust
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from chatstream.avro.serde import ConfluentDecoder, ConfluentEncoder
from chatstream.service_load import Measure
from jobs.dispatch.engine import Dispatcher
from jobs.dispatch.events import ChunkBatch, Completed, Dispatched, Failed
from jobs.dispatch.limits import TenantUsage
from jobs.dispatch.records import (
    Asked,
    asked,
    cancelled_record,
    chunk_record,
    completed_record,
    failed_record,
    request_record,
)
from jobs.dispatch.transport import fetch_without_waiting
from jobs.dispatch.usage import estimate_prompt_tokens
from jobs.faust_worker import add_pages, faust_app
from pipelines.topics import DISPATCH_HEADER, REQUEST_HEADER

log = logging.getLogger(__name__)

APP_ID = "chatstream-dispatch"


LOAD = (
    Measure("requests_per_s", "chatstream_dispatch_answers", "rate", "1/s"),
    Measure("errors_per_s", "chatstream_dispatch_answers", "rate", "1/s", {"outcome": "failed"}),
    Measure("in_flight_streams", "chatstream_dispatch_in_flight", "gauge", "streams"),
    Measure("tokens_per_s", "chatstream_dispatch_tokens", "rate", "1/s"),
    Measure("ttft_p50_s", "chatstream_dispatch_ttft_seconds", "p50", "s"),
    Measure("ttft_p95_s", "chatstream_dispatch_ttft_seconds", "p95", "s"),
)
"""What a dispatch worker publishes to ops.metrics.v1 (``chatstream.ops_publisher``)."""


class DispatchMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.answers = Counter("chatstream_dispatch_answers", "Requests by outcome (completed, failed, cancelled, "
                               "expired: past their deadline when read, not answered).",
                               ["outcome"], registry=self.registry)  # fmt: skip
        self.fallbacks = Counter("chatstream_dispatch_fallbacks", "Answers that fell back to another deployment.",
                                 registry=self.registry)  # fmt: skip
        self.in_flight = Gauge("chatstream_dispatch_in_flight", "Answers streaming now.", registry=self.registry)
        self.tokens = Counter("chatstream_dispatch_tokens", "Tokens of completed answers, prompt and completion.",
                              ["kind"], registry=self.registry)  # fmt: skip
        self.ttft = Histogram("chatstream_dispatch_ttft_seconds", "Dispatch to first token.",
                              buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
                              registry=self.registry)  # fmt: skip


class DispatchJob:
    def __init__(
        self,
        *,
        bootstrap: str,
        actions_topic: str,
        requests_topic: str,
        responses_topic: str,
        dispatcher: Dispatcher,
        decoder: ConfluentDecoder,
        request_encoder: ConfluentEncoder,
        response_encoder: ConfluentEncoder,
        max_in_flight: int,
        partitions: int,
        web_host: str,
        web_port: int,
    ) -> None:
        self.dispatcher = dispatcher
        self.decoder = decoder
        self.request_encoder = request_encoder
        self.response_encoder = response_encoder
        self.metrics = DispatchMetrics()
        self.app = faust_app(
            APP_ID, bootstrap=bootstrap, partitions=partitions, web_host=web_host, web_port=web_port,
            # the group's offsets are moved up to the oldest answerable request before it starts
            # (jobs.dispatch.start); offsets out of range (retention passed them) restart at the end
            consumer_auto_offset_reset="latest",
            producer_linger=0.001,  # a millisecond's batching: one produce request for several records
        )  # the usage table's changelog is co-partitioned with the requests (``partitions``)
        self.actions = self.app.topic(actions_topic, key_type=bytes, value_type=bytes, allow_empty=True)
        self.requests = self.app.topic(requests_topic, key_type=bytes, value_type=bytes)
        self.responses = self.app.topic(responses_topic, key_type=bytes, value_type=bytes)
        self.usage = self.app.Table("tenant-usage", default=dict, partitions=partitions,
                                    schema=faust.Schema(key_serializer="json", value_serializer="json"))  # fmt: skip
        fetch_without_waiting(self.app)
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._pending: collections.Counter[str] = collections.Counter()  # answers streaming, by tenant
        self.app.agent(self.actions, name="dispatch")(self._agent)
        add_pages(self.app, self.metrics.registry, lambda: {"in_flight": len(self._tasks)})

    async def _agent(self, stream: Any) -> Any:
        async for event in stream.events():
            headers = event.headers or {}
            kind = headers.get(DISPATCH_HEADER)
            if kind is None:
                continue
            if kind == b"stop":
                request_id = (headers.get(REQUEST_HEADER) or b"").decode()
                task = self._tasks.get(request_id)
                if task is not None:
                    task.cancel()
                continue
            try:
                request = asked(self.decoder.decode(event.value))
            except Exception as exc:  # noqa: BLE001 - a bad record must not stop the job
                log.warning("undecodable request at %s[%d]@%d: %s", event.message.topic, event.message.partition,
                            event.message.offset, exc)  # fmt: skip
                continue
            if request is None:
                continue
            deadline = request.request.deadline_at_ms
            if deadline is not None and deadline <= time.time() * 1000:
                self.metrics.answers.labels("expired").inc()  # the gateway has answered 504 already
                continue
            await self._slots.acquire()
            task = asyncio.get_running_loop().create_task(self._answer(request, event.message.partition))
            self._tasks[request.request.request_id] = task

    async def _answer(self, asked: Asked, partition: int) -> None:
        """``partition``: the request's, which is its tenant's and its usage changelog's."""
        request = asked.request
        self.metrics.in_flight.inc()
        attempt: Dispatched | None = None
        chunks = 0
        tenant = request.tenant_id
        streaming = self._pending[tenant]  # the tenant's other answers in flight
        self._pending[tenant] += 1
        try:
            usage = _with_pending(TenantUsage.from_dict(self.usage.get(tenant) or {}), streaming)
            async with aclosing(self.dispatcher.run(request, usage)) as events:
                async for event in events:
                    if isinstance(event, Dispatched):
                        attempt = event
                        await self._publish_request(asked, event)
                    elif isinstance(event, ChunkBatch):
                        chunks = event.sequence + 1
                        if event.sequence == 0:
                            self.metrics.ttft.observe((event.at_ms - request.received_at_ms) / 1000)
                        if asked.stream or event.sequence == 0:  # a whole answer's first: it has started
                            await self._reply(asked, chunk_record(asked, event, attempt))
                    elif isinstance(event, Completed):
                        await self._reply(asked, completed_record(asked, event))
                        self._charge(request.tenant_id, event, partition)
                        self.metrics.answers.labels("completed").inc()
                        self.metrics.tokens.labels("prompt").inc(event.prompt_tokens)
                        self.metrics.tokens.labels("completion").inc(event.completion_tokens)
                        if event.fallback_used:
                            self.metrics.fallbacks.inc()
                    elif isinstance(event, Failed):
                        await self._reply(asked, failed_record(asked, event, attempt))
                        self._charge(request.tenant_id, event, partition)
                        self.metrics.answers.labels("failed").inc()
        except asyncio.CancelledError:
            self.metrics.answers.labels("cancelled").inc()
            await asyncio.shield(self._reply(asked, cancelled_record(asked, int(time.time() * 1000), chunks, attempt)))
        except Exception:
            log.exception("request %s failed in the job", request.request_id)
        finally:
            self._pending[tenant] -= 1
            self._tasks.pop(request.request_id, None)
            self._slots.release()
            self.metrics.in_flight.dec()

    def _charge(self, tenant_id: str, event: Completed | Failed, partition: int) -> None:
        """Store the tenant's usage with this request's charge, and its changelog record in the
        request's partition. Written by hand: Faust's ``table[key] = value`` takes the partition
        from the event being iterated, and an answer ends long after the agent moved on."""
        if event.charge is None:
            return
        usage = event.charge.apply_to(TenantUsage.from_dict(self.usage.get(tenant_id) or {})).to_dict()
        self.usage.data[tenant_id] = usage
        self.usage.send_changelog(partition, tenant_id, usage)

    async def _publish_request(self, asked: Asked, event: Dispatched) -> None:
        estimate = estimate_prompt_tokens(asked.request.messages)
        value = self.request_encoder.encode(request_record(asked, event, estimate))
        await self.requests.send(key=_key(asked), value=value)

    async def _reply(self, asked: Asked, record: dict[str, Any]) -> None:
        value = self.response_encoder.encode(record)
        await self.responses.send(key=_key(asked), value=value, partition=asked.reply_partition)


def _with_pending(usage: TenantUsage, streaming: int) -> TenantUsage:
    """The tenant's usage counting its answers still streaming as requests of this second:
    a burst of concurrent requests meets the RPM limit before any of them has finished
    (their tokens count once they are known)."""
    if not streaming:
        return usage
    return TenantUsage(usage.minute.add(streaming, 0, int(time.time() * 1000)), usage.day, usage.spent_usd)


def _key(asked: Asked) -> bytes:
    return (asked.action.get("conversation_id") or asked.request.request_id).encode()


