"""Client traffic through the gateway and exact accounting of it by client-supplied event id,
for the fault tests: every event of a 202 is stored exactly once in both stores, no event of a
503 is stored anywhere, and a 504 (outcome unknown) is retried with the same ids, as clients are
told to, and then stored exactly once too."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import psycopg

from chatstream.ids import uuid7
from chatstream.settings import Settings
from pipelines.sinks import CONSUMER_GROUPS
from tests.integration.platform import bearer
from tests.integration.test_dead_letters import run_sink_until_caught_up

Answer = tuple[float, int, list[dict[str, Any]], str | None]  # when, status, events, Retry-After


@dataclass
class Traffic:
    settings: Settings
    tenant: str
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self, posters: int) -> Traffic:
        self.threads = [threading.Thread(target=self._post, args=(n,)) for n in range(posters)]
        for thread in self.threads:
            thread.start()
        return self

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def _post(self, poster: int) -> None:
        with httpx.Client(base_url=self.settings.gateway_url, timeout=30, headers=bearer(self.settings, self.tenant)) as client:
            while not self.stop.is_set():
                now = int(time.time() * 1000)
                events = [{"type": "session_started", "event_id": uuid7(now), "occurred_at": now,
                           "session_id": f"s{poster}-{i}"} for i in range(10)]  # fmt: skip
                try:
                    answer = client.post("/v1/events", content=orjson.dumps({"events": events}))
                except httpx.TransportError:  # the gateway restarting: nothing was answered
                    time.sleep(0.2)
                    continue
                self.answers.append((time.monotonic(), answer.status_code, events, answer.headers.get("retry-after")))
                time.sleep(0.01)

    def ids(self, status: int) -> set[str]:
        return {e["event_id"] for _, code, events, _ in self.answers if code == status for e in events}

    def statuses(self) -> Counter[int]:
        return Counter(status for _, status, _, _ in self.answers)

    def accepted_after(self, moment: float) -> bool:
        return any(t > moment and status == 202 for t, status, _, _ in self.answers)


def retry_unknown(traffic: Traffic) -> None:
    """What clients are told to do with a 504: send the same events again."""
    settings = traffic.settings
    with httpx.Client(base_url=settings.gateway_url, timeout=30, headers=bearer(settings, traffic.tenant)) as client:
        for _, status, events, _ in traffic.answers:
            if status == 504:
                assert client.post("/v1/events", content=orjson.dumps({"events": events})).status_code == 202


def assert_exactly_once_in_both_stores(traffic: Traffic, clickhouse: Callable[..., Any], *, drain: bool = True) -> None:
    """Every accepted event once in PostgreSQL and ClickHouse, no refused one anywhere."""
    settings, tenant = traffic.settings, traffic.tenant
    assert set(traffic.statuses()) <= {202, 503, 504}, traffic.statuses()
    accepted = traffic.ids(202) | traffic.ids(504)
    if drain:
        for kind in CONSUMER_GROUPS:
            run_sink_until_caught_up(settings, kind)
    with psycopg.connect(settings.postgres_url()) as conn:
        pg = Counter(str(r[0]) for r in conn.execute("SELECT event_id FROM chat_events WHERE tenant_id = %s", (tenant,)))
    ch = Counter(str(r[0]) for r in clickhouse(
        ("query", f"SELECT event_id FROM chat_events FINAL WHERE tenant_id = '{tenant}'", None)))  # fmt: skip
    for store, rows in (("postgres", pg), ("clickhouse", ch)):
        missing, extra = accepted - set(rows), set(rows) - accepted
        assert not missing and not extra, f"{store}: {len(missing)} accepted events missing, {len(extra)} others stored"
        assert max(rows.values(), default=1) == 1, f"{store}: duplicates"
