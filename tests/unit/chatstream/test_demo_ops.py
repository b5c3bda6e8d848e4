"""The demo's injected anomalies: where the floods go in the history, and what a flood is."""

from __future__ import annotations

from chatstream.cli.demo.ops import FLOOD_MINUTES, MINUTE_MS, Injection, plan_injections
from chatstream.cli.demo.traffic import TrafficModel

NOW = 1_795_000_000_000 - 1_795_000_000_000 % MINUTE_MS
DAY = 24 * 60 * MINUTE_MS


def test_floods_go_in_the_last_45_minutes_that_close_after_the_warm_up_and_apart() -> None:
    first, second = plan_injections(NOW - DAY, closable_end_ms=NOW)
    assert NOW - 45 * MINUTE_MS <= first.start_ms < second.start_ms - FLOOD_MINUTES * MINUTE_MS
    assert second.start_ms + (FLOOD_MINUTES + 3) * MINUTE_MS <= NOW and first.start_ms % MINUTE_MS == 0
    assert (first.tenant, second.tenant) == ("tenant-02", "tenant-04")


def test_a_short_history_gets_no_flood() -> None:
    assert plan_injections(NOW - 30 * MINUTE_MS, closable_end_ms=NOW) == []
    assert len(plan_injections(NOW - 70 * MINUTE_MS, closable_end_ms=NOW)) == 2


def test_a_flood_is_its_tenants_messages_at_the_rate_and_covers_its_minutes() -> None:
    flood = TrafficModel(start_ms=NOW - DAY).flood("tenant-02", NOW, 5, 30)
    sent = [e for e in flood.events if e["type"] == "message_sent"]
    assert flood.tenant_id == "tenant-02" and len(sent) == 150 and flood.events[0]["type"] == "conversation_created"
    assert {e["occurred_at"] // MINUTE_MS for e in sent} == {NOW // MINUTE_MS + k for k in range(5)}
    injection = Injection("tenant-02", NOW, 5, 30)
    assert injection.series == "tenant:tenant-02/messages"
    assert injection.covers(NOW + 4 * MINUTE_MS) and not injection.covers(NOW + 6 * MINUTE_MS)
