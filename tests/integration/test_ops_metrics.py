"""Every component publishes its load to ops.metrics.v1, and the sinks land it in both stores:
a gateway worker under a little traffic, and the two sinks themselves."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import psycopg

from chatstream.lag import wait_caught_up
from chatstream.settings import Settings
from pipelines.sinks import CONSUMER_GROUPS
from pipelines.topics import METRICS
from tests.integration.platform import Component, bearer, wait_gateway_ready
from tests.integration.test_ingest import chat_events


def test_the_gateway_and_the_sinks_publish_their_load_to_both_stores(
    running_stack: Settings, clickhouse: Callable[..., Any], unique: str
) -> None:
    settings = running_stack.model_copy(update={"gateway_port": running_stack.port_base + 89})
    fast = {"CHATSTREAM_OPS_METRICS_INTERVAL_S": "1"}
    sinks = [Component(settings, "sink", kind, env=fast).start() for kind in CONSUMER_GROUPS]
    gateway = Component(settings, "gateway", "--workers", "1",
                        env={**fast, "CHATSTREAM_GATEWAY_PORT": str(settings.gateway_listen_port)}).start()  # fmt: skip
    started_ms = int(time.time() * 1000)
    try:
        wait_gateway_ready(settings, gateway)
        tenant = f"ops-{unique}"
        events = chat_events(tenant, 200, started_ms - 10_000)
        with httpx.Client(base_url=settings.gateway_url, timeout=30) as client:
            for i in range(0, len(events), 20):
                answer = client.post("/v1/events", json={"events": events[i : i + 20]}, headers=bearer(settings, tenant))
                assert answer.status_code == 202, answer.text
                time.sleep(0.2)
        time.sleep(2.5)  # the publishing interval after the last request
        assert gateway.stop() == 0, gateway.log_tail()
        lags = wait_caught_up(settings.kafka_bootstrap_servers, list(CONSUMER_GROUPS.values()), METRICS.name, timeout_s=60)
        assert not any(lags.values()), lags
    finally:
        codes = [s.stop() for s in sinks]
    assert codes == [0, 0], [s.log_tail() for s in sinks]

    since = f"occurred_at >= fromUnixTimestamp64Milli({started_ms})"
    query = (f"SELECT service, name, value FROM ops_metrics FINAL WHERE {since} AND service = 'gateway'"
             f" AND JSONExtractString(labels, 'port') = '{settings.gateway_listen_port}' ORDER BY occurred_at")  # fmt: skip
    ch = [tuple(r) for r in clickhouse(("query", query, None))]
    with psycopg.connect(settings.postgres_url()) as conn:
        pg = [tuple(r) for r in conn.execute(
            "SELECT service, name, value FROM ops_metrics WHERE occurred_at >= to_timestamp(%s / 1000.0)"
            " AND service = 'gateway' AND labels->>'port' = %s ORDER BY occurred_at, name",
            (started_ms, str(settings.gateway_listen_port))).fetchall()]  # fmt: skip
    assert sorted(ch) == sorted(pg) and ch, (ch, pg)
    names = {name for _, name, _ in ch}
    assert {"requests_per_s", "events_per_s", "latency_p50_s", "latency_p95_s", "cpu_cores", "memory_bytes", "replicas"} <= names
    assert max(v for _, name, v in ch if name == "events_per_s") > 0  # the traffic shows
    assert all(v == 1.0 for _, name, v in ch if name == "replicas")
    sink_rows = clickhouse(("query", f"SELECT DISTINCT service FROM ops_metrics FINAL WHERE {since} AND service LIKE 'sink-%'", None))
    assert {r[0] for r in sink_rows} == {"sink-clickhouse", "sink-postgres"}
