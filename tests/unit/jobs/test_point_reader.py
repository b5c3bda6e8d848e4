"""The minute-series jobs' stage 1 without Kafka: a batch of records to folded points, bad records
counted, and one message per series-topic partition."""

from __future__ import annotations

import json
from typing import Any

from jobs.anomaly.series import Kind, from_metric
from jobs.minute_series import decode_points, encode_points, partition_of
from jobs.point_reader import PointReader

T0 = 1_790_000_000_000 - 1_790_000_000_000 % 60_000


class Record:
    """What the reader reads of a confluent-kafka message."""

    def __init__(self, topic: str, value: bytes | None, error: object = None) -> None:
        self._topic, self._value, self._error = topic, value, error

    def topic(self) -> str:
        return self._topic

    def value(self) -> bytes | None:
        return self._value

    def error(self) -> object:
        return self._error


class Sent:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes, bytes, int]] = []

    def produce(self, topic: str, value: bytes, key: bytes, partition: int, on_delivery: Any) -> None:
        self.messages.append((topic, value, key, partition))
        on_delivery(None, None)

    def flush(self, _timeout: float) -> int:
        return 0


def reader(counts: dict[str, int]) -> PointReader:
    found = PointReader(bootstrap="127.0.0.1:1", group="g", sources={"ops.metrics.v1": from_metric},
                        decode=lambda raw: json.loads(raw), series_topic="s", partition=lambda s: partition_of(s, 3),
                        encode=encode_points, on_records=lambda t, n: counts.__setitem__(t, counts.get(t, 0) + n),
                        on_undecodable=lambda t: counts.__setitem__("bad", counts.get("bad", 0) + 1))  # fmt: skip
    found.producer = Sent()  # type: ignore[assignment]
    return found


def metric(service: str, instance: str, value: float, at: int = T0) -> Record:
    return Record("ops.metrics.v1", json.dumps({"service": service, "instance": instance, "name": "requests_per_s",
                                                 "value": value, "occurred_at": at}).encode())  # fmt: skip


def test_a_batch_becomes_folded_points_and_bad_records_are_counted() -> None:
    counts: dict[str, int] = {}
    points = reader(counts).points([metric("g", "a", 1), metric("g", "a", 3), metric("g", "b", 10), Record("ops.metrics.v1", b"{no"),
                                    Record("ops.metrics.v1", None), Record("other", b"{}")])  # fmt: skip
    assert [(p.series, p.instance, p.value, p.weight, p.kind) for p in points] == [
        ("service:g/requests_per_s", "a", 4.0, 2.0, Kind.INSTANCES_SUM), ("service:g/requests_per_s", "b", 10.0, 1.0, Kind.INSTANCES_SUM)]
    assert counts == {"ops.metrics.v1": 4, "bad": 1}  # the tombstone is no record; the other topic is not ours


def test_points_go_one_message_per_partition_each_series_to_its_own() -> None:
    found = reader({})
    points = found.points([metric(f"svc{i}", "a", float(i)) for i in range(12)])
    found.forward(points)
    sent = found.producer.messages  # type: ignore[attr-defined]
    assert sorted(p for *_, p in sent) == sorted({partition_of(p.series, 3) for p in points})
    for _topic, value, key, partition in sent:
        assert key == b"_points" and all(partition_of(p.series, 3) == partition for p in decode_points(json.loads(value)))
    assert sum(len(decode_points(json.loads(v))) for _t, v, _k, _p in sent) == 12
