"""The gateway's Prometheus metrics, in a registry of its own (one per app instance).

With several worker processes (``PROMETHEUS_MULTIPROC_DIR`` set before they start), each
worker's values live in files there and ``/metrics`` on any worker reports the sum of all.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

from chatstream.service_load import Measure

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

LOAD = (
    Measure("requests_per_s", "chatstream_gateway_requests", "rate", "1/s"),
    Measure("errors_per_s", "chatstream_gateway_requests", "rate", "1/s", {"status": "5*"}),
    Measure("events_per_s", "chatstream_gateway_events_produced", "rate", "1/s"),
    Measure("rejections_per_s", "chatstream_gateway_rejections", "rate", "1/s"),
    Measure("latency_p50_s", "chatstream_gateway_request_seconds", "p50", "s"),
    Measure("latency_p95_s", "chatstream_gateway_request_seconds", "p95", "s"),
)
"""What each gateway worker publishes to ops.metrics.v1 (``chatstream.ops_publisher``), from
its own values (not the workers' sum): each worker is an instance."""


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "chatstream_gateway_requests", "HTTP requests by route and status.",
            ["route", "status"], registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "chatstream_gateway_request_seconds", "Request latency by route.", ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )  # fmt: skip
        self.produced = Counter(
            "chatstream_gateway_events_produced", "Events Kafka acknowledged.",
            ["topic"], registry=self.registry,
        )  # fmt: skip
        self.transactions = Counter(
            "chatstream_gateway_kafka_transactions", "Kafka transactions by outcome (committed, aborted, unknown).",
            ["outcome"], registry=self.registry,
        )  # fmt: skip
        self.rejections = Counter(
            "chatstream_gateway_rejections", "Refused requests by reason.",
            ["reason"], registry=self.registry,
        )  # fmt: skip

    def exposition(self) -> bytes:
        """The text format: this process's metrics, or every worker's when there are several."""
        if os.environ.get(MULTIPROCESS_DIR):
            workers = CollectorRegistry()
            multiprocess.MultiProcessCollector(workers)
            return generate_latest(workers)
        return generate_latest(self.registry)
