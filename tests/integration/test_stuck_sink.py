"""A sink whose store refuses it forever turns not ready within the configured time, and says so
in ``/metrics``, in ``chatstream run``'s output and in ``chatstream infra status``."""

from __future__ import annotations

import json
import time

import httpx

from chatstream.settings import Settings
from tests.integration.conftest import chatstream
from tests.integration.platform import Component

STALL_AFTER_S = 3


def test_a_sink_its_store_refuses_turns_not_ready_and_says_why(running_stack: Settings) -> None:
    settings = running_stack
    closed = "postgresql://chatstream:x@127.0.0.1:1/chatstream"  # nothing listens on port 1
    run = Component(settings, "run", "--no-setup", "--only", "sink-postgres",
                    env={"CHATSTREAM_POSTGRES_DSN": closed, "CHATSTREAM_SINK_STALL_AFTER_S": str(STALL_AFTER_S)})  # fmt: skip
    started = time.monotonic()
    run.start()
    try:
        run.wait_for_output("sink-postgres: NOT READY", timeout_s=60)
        took = time.monotonic() - started
        assert took < STALL_AFTER_S + 20, took  # start-up, the stall time, one poll of /readyz
        assert "Connection refused" in run.log_tail()

        port = settings.sink_port("postgres")
        answer = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert answer.status_code == 503
        assert "PostgreSQL" in answer.json()["reason"]
        exposition = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert 'chatstream_sink_ready{sink="postgres"} 0.0' in exposition

        status = json.loads(chatstream(settings, "infra", "status", "--json").stdout)
        sink = status["platform"]["sink-postgres"]
        assert sink["ready"] is False and "no progress" in sink["detail"]
        assert status["platform"]["sink-clickhouse"]["ready"] is None  # not started: not running
    finally:
        code = run.stop(timeout_s=60)
    assert code == 0, run.log_tail()  # Ctrl-C still stops it cleanly
