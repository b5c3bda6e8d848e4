"""The gateway as several worker processes on one port: load spread, metrics summed, clean stop."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from chatstream.settings import Settings
from tests.integration.platform import Component, bearer, wait_gateway_ready
from tests.integration.test_ingest import chat_events, consume_tenant


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def produced_total(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith('chatstream_gateway_events_produced_total{topic="chat.actions.v1"}'):
            return float(line.split()[-1])
    return 0.0


@pytest.fixture
def workers_settings(running_stack: Settings) -> Settings:
    return running_stack.model_copy(update={"gateway_port": running_stack.port_base + 85})


def start_workers(settings: Settings) -> Component:
    gateway = Component(settings, "gateway", "--workers", "2",
                        env={"CHATSTREAM_GATEWAY_PORT": str(settings.gateway_listen_port)}).start()  # fmt: skip
    wait_gateway_ready(settings, gateway)
    return gateway


def test_two_workers_share_the_port_and_the_load(workers_settings: Settings) -> None:
    settings = workers_settings
    gateway = start_workers(settings)
    try:
        assert gateway.process is not None
        workers = children(gateway.process.pid)
        assert len(workers) == 2, workers
        tenant = f"workers-{int(time.time() * 1000)}"
        events = chat_events(tenant, 1000, int(time.time() * 1000) - 10_000)
        for i in range(0, len(events), 25):  # a new connection each time: the kernel spreads them
            with httpx.Client(base_url=settings.gateway_url, timeout=30) as client:
                response = client.post("/v1/events", json={"events": events[i : i + 25]}, headers=bearer(settings, tenant))
            assert response.status_code == 202, response.text
        metrics_dir = settings.state_dir / "run" / "gateway-metrics"
        assert {int(p.stem.split("_")[-1]) for p in metrics_dir.glob("counter_*.db")} == set(workers)  # both served
        for _ in range(4):  # whichever worker answers, it reports both workers' counts
            scraped = httpx.get(f"{settings.gateway_url}/metrics", timeout=10).text
            assert produced_total(scraped) == 1000
        assert len({r["event_id"] for r in consume_tenant(settings, tenant, 1000)}) == 1000
    finally:
        assert gateway.stop() == 0, gateway.log_tail()
    assert not any(os.path.exists(f"/proc/{pid}") for pid in workers)


def test_a_worker_that_dies_stops_the_gateway_with_an_error(workers_settings: Settings) -> None:
    gateway = start_workers(workers_settings)
    assert gateway.process is not None
    first, second = children(gateway.process.pid)
    os.kill(first, signal.SIGKILL)
    assert gateway.process.wait(timeout=60) == 1
    assert "exited with status" in gateway.log_tail()
    assert not os.path.exists(f"/proc/{second}") or Path(f"/proc/{second}/stat").read_text().split()[2] == "Z"
