"""What the Faust jobs share: their app's settings, their pages and how a worker runs.

``faust_app``: raw bytes in and out (the jobs decode Avro themselves), tables in memory restored
from their changelogs, a 10 s session, acks from every in-sync replica, the web server for the
pages; a job overrides what it needs.

``add_pages``: ``/healthz``, ``/readyz`` and ``/metrics`` on Faust's own web server. ``/readyz`` is 200 once the worker joined its group and holds partitions (and is not
rebalancing) and ``healthy`` says so (a job's own reader thread), with whatever ``details`` adds; ``/metrics`` is the job's Prometheus registry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faust
from faust.web import Request, Response, View
from prometheus_client import CollectorRegistry, generate_latest


def faust_app(app_id: str, *, bootstrap: str, partitions: int, web_host: str, web_port: int, **overrides: Any) -> faust.App:
    settings: dict[str, Any] = {
        "broker": f"kafka://{bootstrap}",
        "key_serializer": "raw",
        "value_serializer": "raw",
        "store": "memory://",
        "topic_partitions": partitions,  # of the tables' changelogs (and of topics Faust makes)
        "consumer_auto_offset_reset": "earliest",
        "broker_session_timeout": 10.0,
        "broker_heartbeat_interval": 2.0,
        "producer_acks": -1,
        "web_enabled": True,
        "web_bind": web_host,
        "web_port": web_port,
        "web_host": web_host,
        "worker_redirect_stdouts": False,
        "topic_allow_declare": True,  # the tables' changelogs (and a job's own topics)
    }
    return faust.App(app_id, **{**settings, **overrides})


def add_pages(app: faust.App, registry: CollectorRegistry, details: Callable[[], dict[str, Any]],
              healthy: Callable[[], bool] = lambda: True) -> None:  # fmt: skip
    async def healthz(view: View, _request: Request) -> Response:
        return view.json({"status": "ok"})

    async def readyz(view: View, _request: Request) -> Response:
        try:
            ready = bool(app.consumer.assignment()) and not app.rebalancing and healthy()
        except Exception:  # noqa: BLE001 - the consumer is not there before the worker started
            ready = False
        return view.json({"ready": ready, **details()}, status=200 if ready else 503)

    async def metrics(view: View, _request: Request) -> Response:
        return view.bytes(generate_latest(registry), content_type="text/plain; version=0.0.4")

    for path, handler in (("/healthz", healthz), ("/readyz", readyz), ("/metrics", metrics)):
        app.page(path)(handler)


def run_worker(app: faust.App, loglevel: str = "warn") -> None:
    """Run until SIGINT/SIGTERM (Faust's worker stops the agents and flushes the producer)."""
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.spinner = None  # a service's log, not a terminal: no progress spinner's escape codes
    worker.execute_from_commandline()
