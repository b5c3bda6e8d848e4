"""Where a chat completion's time to first token goes, hop by hop, from the records it left.

Every streamed request leaves timestamps on its way, all from the one machine's wall clock
(milliseconds): the client's send; the gateway's ``requested_at`` (its handler started, read
back from the job's records); the Kafka timestamp of the ``MESSAGE_SENT`` record (set when the
gateway produced it; found by its ``chatstream-request-id`` header, not decoded); the job's
``ai.requests.v1`` attempt (``occurred_at``: dispatch began, after Kafka, Faust and decoding);
the first ``CHUNK`` of ``ai.responses.v1`` (``occurred_at``: the first token in the job); and
the client's first content. The segments between them add up to the client's TTFT:

- ``client -> gateway handler``: HTTP, routing, auth (the client's send to ``requested_at``)
- ``gateway -> produce``: body parsing, Avro encoding, up to the produce call
- ``Kafka -> job dispatch``: the broker, the job's consumer and Faust, decoding, admission
- ``job: provider TTFT``: dispatch to the first token (the provider's wait plus the job's lag)
- ``first token -> client``: publishing, Kafka, the gateway's reply reader, SSE to the client

Read after a phase, when the platform is idle, so it costs the measurement nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient

from bench.sse_client import ChatResult, percentile
from chatstream.avro.registry import registry_fetcher
from chatstream.avro.serde import ConfluentDecoder
from chatstream.lag import end_offsets
from pipelines.topics import DISPATCH_HEADER, REQUEST_HEADER

SEGMENTS = ("client -> gateway handler", "gateway -> produce", "Kafka -> job dispatch", "job: provider TTFT",
            "first token -> client")  # fmt: skip

Offsets = dict[str, dict[int, int]]  # topic -> partition -> offset


def positions(bootstrap: str, topics: Iterable[str]) -> Offsets:
    """Each topic's end offsets now: where a phase's records will start."""
    return {topic: end_offsets(bootstrap, topic) for topic in topics}


def read_between(bootstrap: str, topic: str, start: dict[int, int], end: dict[int, int]) -> list[Message]:
    """The records of ``topic`` from ``start`` up to ``end`` (exclusive), every partition."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-trace-{uuid.uuid4()}",
                         "enable.auto.commit": False, "isolation.level": "read_uncommitted"})  # fmt: skip
    wanted = {p: (start.get(p, 0), stop) for p, stop in end.items() if stop > start.get(p, 0)}
    messages: list[Message] = []
    try:
        consumer.assign([TopicPartition(topic, p, first) for p, (first, _) in wanted.items()])
        left = dict(wanted)
        idle = 0
        while left and idle < 6:  # a few empty polls: nothing more is coming
            batch = consumer.consume(5000, 0.5)
            idle = 0 if batch else idle + 1
            for message in batch:
                if message.error():
                    continue
                p, offset = message.partition() or 0, message.offset() or 0
                if p in left and offset < left[p][1]:
                    messages.append(message)
                    if offset >= left[p][1] - 1:
                        del left[p]
    finally:
        consumer.close()
    return messages


def _ms(value: Any) -> float:
    return value.timestamp() * 1000 if isinstance(value, datetime) else float(value)


@dataclass
class Trace:
    """Per segment, the milliseconds of each traced request; ``traced`` requests in all."""

    segments: dict[str, list[float]]
    traced: int

    def stat(self, segment: str, q: float) -> float:
        return percentile(self.segments[segment], q)

    def mean(self, segment: str) -> float:
        values = self.segments[segment]
        return sum(values) / len(values) if values else float("nan")


def trace(bootstrap: str, registry_url: str, before: Offsets, after: Offsets, results: Sequence[ChatResult],
          actions_topic: str, requests_topic: str, responses_topic: str) -> Trace:  # fmt: skip
    """Join a phase's records (the topics from ``before`` to ``after``) with the client's results."""
    decoder = ConfluentDecoder(registry_fetcher(SchemaRegistryClient({"url": registry_url})))
    produced: dict[str, float] = {}
    for message in read_between(bootstrap, actions_topic, before[actions_topic], after[actions_topic]):
        headers = dict(message.headers() or [])
        request_id = headers.get(REQUEST_HEADER)
        if isinstance(request_id, bytes) and headers.get(DISPATCH_HEADER) == b"request":
            produced[request_id.decode()] = float(message.timestamp()[1])
    dispatched: dict[str, float] = {}
    for message in read_between(bootstrap, requests_topic, before[requests_topic], after[requests_topic]):
        record = decoder.decode(message.value())
        if record["attempt"] == 1:
            dispatched[str(record["request_id"])] = _ms(record["occurred_at"])
    first_token: dict[str, tuple[float, float]] = {}  # request id -> (requested_at, first token)
    for message in read_between(bootstrap, responses_topic, before[responses_topic], after[responses_topic]):
        record = decoder.decode(message.value())
        if record["kind"] == "CHUNK" and record["sequence"] == 0:
            first_token[str(record["request_id"])] = (_ms(record["requested_at"]), _ms(record["occurred_at"]))
    segments: dict[str, list[float]] = {name: [] for name in SEGMENTS}
    for result in results:
        rid = result.request_id
        if result.ttft_s is None or rid not in produced or rid not in dispatched or rid not in first_token:
            continue
        sent_ms = result.wall_sent_s * 1000
        client_first_ms = sent_ms + result.ttft_s * 1000
        requested_ms, token_ms = first_token[rid]
        for name, value in zip(SEGMENTS, (requested_ms - sent_ms, produced[rid] - requested_ms,
                                          dispatched[rid] - produced[rid], token_ms - dispatched[rid],
                                          client_first_ms - token_ms)):  # fmt: skip
            segments[name].append(value)
    return Trace(segments, len(segments[SEGMENTS[0]]))
