"""A sink's health, seen from outside: Prometheus metrics and readiness on a port of its own.

``Progress`` says whether the sink is getting anywhere: it moves when a flush lands and while
there is nothing to do; a sink with work waiting that has not moved for ``stall_after_s`` (a
store refusing forever, offsets it cannot read) is stalled, and ``/readyz`` answers 503 with the
reason, so ``chatstream run``, a process manager or Kubernetes sees it. ``serve`` runs the HTTP
endpoints (``/metrics``, ``/healthz``, ``/readyz``) on a daemon thread.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, make_wsgi_app
from socketserver import ThreadingMixIn

from chatstream.service_load import Measure

log = logging.getLogger(__name__)


class Progress:
    def __init__(self, stall_after_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_after_s = stall_after_s
        self.clock = clock
        self.last_moved = clock()
        self.last_flush: float | None = None
        self.last_error = ""

    def moved(self, *, flushed: bool = False) -> None:
        self.last_moved = self.clock()
        if flushed:
            self.last_flush = self.last_moved
            self.last_error = ""

    def failed(self, error: str) -> None:
        self.last_error = error

    def since_moved_s(self) -> float:
        return self.clock() - self.last_moved

    def stalled(self) -> bool:
        return self.since_moved_s() > self.stall_after_s

    def status(self) -> dict[str, Any]:
        stuck = self.stalled()
        return {
            "ready": not stuck,
            "seconds_since_progress": round(self.since_moved_s(), 1),
            "stall_after_s": self.stall_after_s,
            "seconds_since_flush": None if self.last_flush is None else round(self.clock() - self.last_flush, 1),
            "last_error": self.last_error,
            **({"reason": f"no progress for {self.since_moved_s():.0f}s: {self.last_error or 'waiting'}"} if stuck else {}),
        }


LOAD = (
    Measure("rows_per_s", "chatstream_sink_rows_written", "rate", "1/s"),
    Measure("consumer_lag", "chatstream_sink_lag_records", "gauge", "records"),
    Measure("errors_per_s", "chatstream_sink_write_retries", "rate", "1/s"),
    Measure("dead_letters_per_s", "chatstream_sink_dead_letters", "rate", "1/s"),
)
"""What a sink publishes to ops.metrics.v1 (``chatstream.ops_publisher``)."""


class SinkMetrics:
    """The sink's counters and gauges in a registry of its own (one sink per process)."""

    def __init__(self, sink: str, progress: Progress) -> None:
        self.registry = CollectorRegistry()
        labels = {"sink": sink}

        def counter(name: str, doc: str, extra: Iterable[str] = ()) -> Counter:
            return Counter(name, doc, ["sink", *extra], registry=self.registry)

        self.rows_written = counter("chatstream_sink_rows_written", "Rows the store took.")
        self.flushes = counter("chatstream_sink_flushes", "Flushes that landed.")
        self.retries = counter("chatstream_sink_write_retries", "Writes retried after a transient error.")
        self.dead_letters = counter("chatstream_sink_dead_letters", "Records parked in dlq.<topic>.", ["topic"])
        self.fallbacks = counter("chatstream_sink_decoder_fallbacks", "Flushes the engine could not read, decoded in Python.", ["topic"])
        self.lag = Gauge("chatstream_sink_lag_records", "Records in Kafka not consumed yet.", ["sink", "topic", "partition"], registry=self.registry)
        since = Gauge("chatstream_sink_seconds_since_progress", "Seconds since the sink last got somewhere.", ["sink"], registry=self.registry)
        since.labels(**labels).set_function(progress.since_moved_s)
        flush = Gauge("chatstream_sink_seconds_since_flush", "Seconds since the last flush landed (-1: none yet).", ["sink"], registry=self.registry)
        flush.labels(**labels).set_function(lambda: -1.0 if progress.last_flush is None else progress.clock() - progress.last_flush)
        ready = Gauge("chatstream_sink_ready", "1 when the sink is making progress.", ["sink"], registry=self.registry)
        ready.labels(**labels).set_function(lambda: 0.0 if progress.stalled() else 1.0)
        self.sink = sink

    def labels(self, metric: Counter, **extra: str) -> Any:
        return metric.labels(sink=self.sink, **extra)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        """Scrapes are not worth a log line."""


def serve(host: str, port: int, metrics: SinkMetrics, progress: Progress) -> WSGIServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` on ``host:port``, on a daemon thread."""
    metrics_app = make_wsgi_app(metrics.registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in ("/healthz", "/readyz"):
            status = progress.status() if path == "/readyz" else {"alive": True}
            ok = status.get("ready", True) or path == "/healthz"
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")])
            return [json.dumps(status).encode()]
        return metrics_app(environ, start_response)  # type: ignore[no-any-return]

    server = make_server(host, port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name=f"{metrics.sink}-health", daemon=True).start()
    return server
