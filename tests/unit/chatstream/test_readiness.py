"""``probe`` reads a component's ``/readyz`` once: ready, not ready with its reason, or silent."""

from __future__ import annotations

import socket

from chatstream.readiness import probe
from connectors.health import Progress, SinkMetrics, serve


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_probe_tells_ready_stalled_and_silent_apart() -> None:
    now = [100.0]
    progress = Progress(stall_after_s=5, clock=lambda: now[0])
    port = free_port()
    server = serve("127.0.0.1", port, SinkMetrics("postgres", progress), progress)
    try:
        url = f"http://127.0.0.1:{port}/readyz"
        assert probe(url) == (True, "")
        progress.failed("PostgreSQL refused:\n\tconnection refused")
        now[0] += 9
        assert probe(url) == (False, "no progress for 9s: PostgreSQL refused: connection refused")
    finally:
        server.shutdown()
        server.server_close()
    ready, why = probe(f"http://127.0.0.1:{free_port()}/readyz")
    assert ready is None and "not answering" in why
