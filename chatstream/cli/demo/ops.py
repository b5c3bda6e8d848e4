"""The demo's ops part: anomalies injected into the traffic, the ones the anomaly job found, and
the scaling job's newest signals.

An injection is a flood: one tenant's user sends tens of messages a minute for a few minutes
(``TrafficModel.flood``). The floods go into the history the demo drives, late enough that every
tenant's series is past its warm-up, early enough that the engagement job's windows of them
close before the traffic stops. The anomaly job reads those windows; the demo waits for it and
for the sinks, then lists the anomalies that opened in the history's span from ClickHouse, the
injected ones marked. The scaling signals come from ``GET /v1/scaling`` of the scaling job, as a
KEDA controller would read them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from chatstream.cli.preparation import chatstream_command
from chatstream.lag import data_end_offsets, end_offsets, wait_caught_up, wait_committed
from chatstream.settings import Settings
from jobs.anomaly.app import APP_ID as ANOMALY_APP
from jobs.anomaly.series import MINUTE_MS
from jobs.minute_series import points_group, series_topic_name
from pipelines.sinks import CONSUMER_GROUPS
from pipelines.topics import ANOMALIES, ENGAGEMENT

FLOODS = (("tenant-02", 30), ("tenant-04", 40))  # tenant, messages a minute
FLOOD_MINUTES = 5
LOOKBACK_MS = 45 * MINUTE_MS


@dataclass(frozen=True)
class Injection:
    tenant: str
    start_ms: int
    minutes: int
    per_minute: int

    @property
    def series(self) -> str:
        return f"tenant:{self.tenant}/messages"

    def covers(self, window_start_ms: int) -> bool:
        return self.start_ms - MINUTE_MS <= window_start_ms < self.start_ms + (self.minutes + 1) * MINUTE_MS


def plan_injections(history_start_ms: int, closable_end_ms: int) -> list[Injection]:
    """Floods in the last 45 minutes of history whose windows close (none when the history is
    too short: a run soon after the last one). Pure."""
    lo = max(history_start_ms + 40 * MINUTE_MS, closable_end_ms - LOOKBACK_MS)  # after the series' warm-up
    hi = closable_end_ms - 3 * MINUTE_MS
    room = hi - lo - FLOOD_MINUTES * MINUTE_MS
    if room < 10 * MINUTE_MS:
        return []
    starts = [lo, lo + room // 2]
    return [Injection(tenant, start - start % MINUTE_MS, FLOOD_MINUTES, rate) for (tenant, rate), start in zip(FLOODS, starts)]


def wait_for_anomalies(settings: Settings, timeout_s: float) -> bool:
    """Until the anomaly job has read the engagement windows there are now (the engagement job
    writes transactions: its partitions end with commit markers, never delivered) and what it
    sent itself up to then, and the sinks every anomaly; whether it all caught up in time."""
    bootstrap = settings.kafka_bootstrap_servers
    series = series_topic_name(ANOMALY_APP)
    step_s = timeout_s / 3
    windows = data_end_offsets(bootstrap, ENGAGEMENT.name)
    return (wait_committed(bootstrap, points_group(ANOMALY_APP), ENGAGEMENT.name, windows, step_s)
            and wait_committed(bootstrap, ANOMALY_APP, series, end_offsets(bootstrap, series), step_s)
            and not any(wait_caught_up(bootstrap, list(CONSUMER_GROUPS.values()), ANOMALIES.name, step_s).values()))  # fmt: skip


def opened_anomalies(settings: Settings, since_ms: int) -> list[dict[str, Any]]:
    sql = ("SELECT series_key, toUnixTimestamp64Milli(window_start) AS start_ms, observed, expected, score, severity "
           f"FROM anomalies FINAL WHERE status = 'OPEN' AND window_start >= fromUnixTimestamp64Milli({int(since_ms)}) "
           "ORDER BY window_start")  # fmt: skip
    return list(json.loads(chatstream_command(settings, "query", "clickhouse", sql, "--json")))


def scaling_signals(settings: Settings) -> list[dict[str, Any]]:
    """Every service's newest signal from the scaling job; none when it does not answer."""
    try:
        answer = httpx.get(f"http://{settings.gateway_host}:{settings.scaling_port}/v1/scaling", timeout=5)
        answer.raise_for_status()
    except httpx.HTTPError:
        return []
    return list(answer.json()["services"])


def _at(ms: int, day: bool = False) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%m-%d %H:%M" if day else "%H:%M")


def summarise_ops(console: Console, injections: list[Injection], anomalies: list[dict[str, Any]],
                  signals: list[dict[str, Any]]) -> int:  # fmt: skip
    """Tables of what was injected, what was found, what the scaling job asks for; how many
    injections were found."""
    found = 0
    table = Table(title="anomalies injected into the traffic")
    for column in ("series", "injected (UTC)", "detected"):
        table.add_column(column)
    for injection in injections:
        hits = [a for a in anomalies if a["series_key"] == injection.series and injection.covers(int(a["start_ms"]))]
        found += bool(hits)
        when = f"{_at(injection.start_ms)} for {injection.minutes} min, {injection.per_minute} messages/min"
        table.add_row(injection.series, when, f"yes, at {_at(int(hits[0]['start_ms']))}" if hits else "[red]no[/red]")
    if injections:
        console.print(table)
    else:
        console.print("No anomalies injected: the history since the last run is too short for them to close.")
    table = Table(title="anomalies the anomaly job opened in this run's history (ops.anomalies.v1 -> ClickHouse)")
    for column in ("minute (UTC)", "series", "observed (expected)", "severity", ""):
        table.add_column(column, no_wrap=column == "series")
    for a in anomalies:
        injected = any(i.series == a["series_key"] and i.covers(int(a["start_ms"])) for i in injections)
        expected = "" if a["expected"] is None else f" ({float(a['expected']):.1f})"
        table.add_row(_at(int(a["start_ms"]), day=True), a["series_key"], f"{float(a['observed']):.1f}{expected}", a["severity"],
                      "injected" if injected else "")  # fmt: skip
    console.print(table)
    table = Table(title="scaling signals (GET /v1/scaling: what KEDA reads)")
    for column in ("service", "desired", "current", "load now", "forecast (upper)", "rule"):
        table.add_column(column, no_wrap=column == "service")
    for s in signals:
        table.add_row(s["service"], str(s["desiredReplicas"]), str(s["currentReplicas"]), f"{s['observed']:.1f} {s['metric']}",
                      f"{s['forecast']:.1f} ({s['forecastUpper']:.1f})", s["reason"].partition(":")[0])  # fmt: skip
    console.print(table if signals else "No scaling signals yet (a service's first minute closes once the next one starts).")
    if signals:
        console.print("Rule 'reactive': a service scales on its load now until it has two days of history for the forecaster.")
    return found
