"""``chatstream demo``: set up, run the platform, drive traffic through it, summarise.

Steps: the local stack up, migrations, topics, schemas; ``chatstream run`` (gateway, sinks, the
dispatch, engagement, anomaly and scaling jobs) as child processes; synthetic history through the real
gateway with a progress bar, in event-time order as a live product would produce it (a day of it
the first time; after that, from where the last run's left off to now, so a stream job's event
time never goes back), with a few floods injected (one tenant's messages, tens a minute: anomalies the
anomaly job must find); streaming chat completions through the gateway and the dispatch job (the default routing
config: simulated models), each answer read as it streams; a few deliberately bad requests, and a few corrupt records written straight to Kafka (they must land
in the dead-letter topic); wait until both sinks have committed everything and the engagement
job's closed windows have landed, and the anomaly job's anomalies; read the scaling job's newest
signals; stop the platform cleanly; count what each store holds and list the anomalies found and
the signals (every store query runs in a ``chatstream query`` child, as a user would type it).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from chatstream.cli.dashboard import dashboard_hint
from chatstream.cli.demo.chats import ChatStats, chat_requests, drive_chats
from chatstream.cli.demo.driver import DriveStats, drive_in_time_order, send_bad_requests
from chatstream.cli.demo.ops import opened_anomalies, plan_injections, scaling_signals, summarise_ops, wait_for_anomalies
from chatstream.cli.demo.traffic import DAY_MS, TrafficModel, bad_requests, in_time_order
from chatstream.cli.preparation import chatstream_command, prepare_platform
from chatstream.cli.supervisor import Supervisor
from chatstream.errors import ChatstreamError
from chatstream.lag import end_offsets, wait_caught_up
from chatstream.readiness import wait_ready
from chatstream.settings import Settings
from chatstream.topics import dead_letter_name
from gateway.auth import issue_token
from gateway.main import jwt_secret
from infra.local import stack
from jobs.engagement.config import EngagementSettings
from pipelines.sinks import CONSUMER_GROUPS
from pipelines.topics import CHAT_ACTIONS

TOPIC = CHAT_ACTIONS.name
DLQ = dead_letter_name(TOPIC)
ROGUE_RECORDS = 3
CHAT_ALIASES = ["chatstream-sim", "chatstream-sim-fast"]  # pipelines/models.toml
COMPONENTS = ["gateway", "sink-clickhouse", "sink-postgres", "dispatch", "engagement", "anomaly", "scaling"]  # as `chatstream run`
HISTORY_MS = DAY_MS + 3_600_000
ENGAGEMENT_WAIT_S = 180
ANOMALY_WAIT_S = 120
JOB_START_S = 240
LEAST_NEWEST_MS = 10 * 60_000  # how far before the history's end a partition's newest event can be (a quiet hour)


class DemoError(ChatstreamError):
    """A demo step failed."""


@dataclass
class Engagement:
    windows: int
    newest_window_end_ms: int
    sessions: int
    late: int


@dataclass
class Counts:
    kafka: int
    dlq: int
    clickhouse: int
    clickhouse_distinct: int
    postgres: int
    postgres_distinct: int
    engagement: Engagement


def prepare(settings: Settings, say: Any) -> None:
    say("starting the local stack")
    stack.up(settings)
    prepare_platform(settings, say)


def one(settings: Settings, store: str, sql: str) -> int:
    """The one number ``sql`` answers, as ``chatstream query STORE SQL --json`` prints it."""
    rows = json.loads(chatstream_command(settings, "query", store, sql, "--json"))
    return int(next(iter(rows[0].values())))


def count(settings: Settings) -> Counts:
    return Counts(
        kafka=sum(end_offsets(settings.kafka_bootstrap_servers, TOPIC).values()),
        dlq=sum(end_offsets(settings.kafka_bootstrap_servers, DLQ).values()),
        clickhouse=one(settings, "clickhouse", "SELECT count() FROM chat_events FINAL"),
        clickhouse_distinct=one(settings, "clickhouse", "SELECT uniqExact(event_id) FROM chat_events"),
        postgres=one(settings, "postgres", "SELECT count(*) FROM chat_events"),
        postgres_distinct=one(settings, "postgres", "SELECT count(DISTINCT event_id) FROM chat_events"),
        engagement=engagement_counts(settings),
    )


def engagement_counts(settings: Settings) -> Engagement:
    windows = one(settings, "clickhouse", "SELECT count() FROM engagement_windows FINAL")
    newest = one(settings, "clickhouse", "SELECT toUnixTimestamp64Milli(max(window_end)) FROM engagement_windows")
    sessions = one(settings, "clickhouse", "SELECT count() FROM engagement_sessions FINAL")
    late = one(settings, "clickhouse", "SELECT count() FROM late_events FINAL")
    return Engagement(windows, newest, sessions, late)


def history_start(settings: Settings, now_ms: int) -> int:
    """A day and an hour back, or just after the newest chat action already stored (a second
    run continues the first: the engagement job's event time has passed that history)."""
    newest = one(settings, "clickhouse", "SELECT toUnixTimestamp64Milli(max(occurred_at)) FROM chat_events")
    return max(now_ms - HISTORY_MS, newest + 1)


def wait_for_log(path: Path, text: str, timeout_s: float, alive: Callable[[], bool]) -> None:
    """Until a component's log says ``text`` (the engagement job: ``submitted``, so it reads the
    traffic live rather than as a backlog); ``DemoError`` if it stops or the time passes."""
    deadline = time.monotonic() + timeout_s
    while not (path.exists() and text in path.read_text(errors="replace")):
        if not alive():
            raise DemoError(f"a component stopped while the engagement job started; see {path.parent}")
        if time.monotonic() > deadline:
            raise DemoError(f"the engagement job did not start within {timeout_s:.0f} s; see {path}")
        time.sleep(1)


def least_newest_event_ms(settings: Settings, since_ms: int) -> int:
    """The least, over chat.actions.v1's partitions with events since ``since_ms``, of each one's
    newest event time (from ClickHouse, the sinks caught up): what the watermark gets to at least."""
    return one(settings, "clickhouse", "SELECT toUnixTimestamp64Milli(min(newest)) FROM (SELECT kafka_partition, "
               f"max(occurred_at) AS newest FROM chat_events WHERE occurred_at >= fromUnixTimestamp64Milli({int(since_ms)}) "
               "GROUP BY kafka_partition)")  # fmt: skip


def wait_windows(settings: Settings, closable_end_ms: int, alive: Any) -> Engagement:
    """Until ClickHouse holds the job's windows up to ``closable_end_ms`` (those the watermark
    has passed when traffic stops), or ``ENGAGEMENT_WAIT_S``; the counts then."""
    deadline = time.monotonic() + ENGAGEMENT_WAIT_S
    while True:
        counts = engagement_counts(settings)
        if counts.newest_window_end_ms >= closable_end_ms or time.monotonic() > deadline or not alive():
            return counts
        time.sleep(2)


def write_rogue_records(settings: Settings) -> None:
    """Records that are not Confluent Avro, as a misconfigured producer would write them."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers})
    for i in range(ROGUE_RECORDS):
        producer.produce(TOPIC, key=b"rogue", value=f'{{"not": "avro", "n": {i}}}'.encode())
    if producer.flush(30):
        raise DemoError("Kafka did not take the rogue records")


def run_demo(settings: Settings, *, events: int, concurrency: int, chats: int, console: Console) -> int:
    with console.status("setting up") as status:
        prepare(settings, lambda text: status.update(text))
        before = count(settings)
    engagement = EngagementSettings()
    # what is in flight at once spans less than the job's watermark delay: none of it is late
    skew_ms = max(1_000, engagement.watermark_delay_ms - 1_000)
    env = {**os.environ, "CHATSTREAM_STATE_DIR": str(settings.state_dir)}
    supervisor = Supervisor(COMPONENTS, log_dir=settings.state_dir / "logs", env=env)
    supervisor.start()
    dispatch_url = f"http://{settings.gateway_host}:{settings.dispatch_port}"
    try:
        if not wait_ready(settings.gateway_url, timeout_s=60, alive=supervisor.running):
            raise DemoError(f"the gateway at {settings.gateway_url} did not get ready; see {settings.state_dir / 'logs'}")
        if chats and not wait_ready(dispatch_url, timeout_s=60, alive=supervisor.running):
            raise DemoError(f"the dispatch job at {dispatch_url} did not get ready; see {settings.state_dir / 'logs'}")
        with console.status("starting the engagement job (Flink)"):
            wait_for_log(supervisor.log_dir / "engagement.log", "submitted", JOB_START_S, supervisor.running)
        console.print(f"Watch it live while the demo runs: {dashboard_hint(settings)}", soft_wrap=True)
        secret = jwt_secret(settings)
        if secret is None:
            raise DemoError("the demo issues local HS256 tokens; unset CHATSTREAM_JWKS_URL")
        tokens: dict[tuple[str, str], str] = {}

        def token_for(tenant: str, user: str) -> str:
            if (tenant, user) not in tokens:
                tokens[(tenant, user)] = issue_token(secret, tenant=tenant, user=user, audience=settings.jwt_audience,
                                                     issuer=settings.jwt_issuer, tenant_claim=settings.jwt_tenant_claim)  # fmt: skip
            return tokens[(tenant, user)]

        now_ms = int(time.time() * 1000)
        start_ms = history_start(settings, now_ms)
        model = TrafficModel(start_ms=start_ms, span_ms=max(now_ms - start_ms, 60_000))
        injections = plan_injections(start_ms, now_ms - engagement.watermark_delay_ms - LEAST_NEWEST_MS)
        floods = [model.flood(i.tenant, i.start_ms, i.minutes, i.per_minute) for i in injections]
        history = in_time_order([*model.sessions(events), *floods], until_ms=now_ms)
        columns = (TextColumn("[bold]demo traffic"), BarColumn(), MofNCompleteColumn(), TextColumn("events"), TimeRemainingColumn())
        started = time.monotonic()
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("events", total=len(history))
            stats = asyncio.run(drive_in_time_order(settings.gateway_url, history, token_for, skew_ms=skew_ms,
                                                    concurrency=concurrency, on_events=lambda n: progress.advance(task, n)))  # fmt: skip
        elapsed = time.monotonic() - started
        chat_stats = None
        if chats:
            requests = chat_requests(settings.gateway_host, settings.gateway_listen_port, model, CHAT_ALIASES, token_for, chats)
            columns = (TextColumn("[bold]streaming chats"), BarColumn(), MofNCompleteColumn(), TextColumn("answers"),
                       TimeRemainingColumn())  # fmt: skip
            with Progress(*columns, console=console) as progress:
                task = progress.add_task("chats", total=chats)
                chat_stats = drive_chats(settings.gateway_host, settings.gateway_listen_port, requests,
                                         concurrency=concurrency, metrics_url=f"{dispatch_url}/metrics",
                                         on_result=lambda _: progress.advance(task))  # fmt: skip
        traffic_end_ms = int(time.time() * 1000)
        ok_token = token_for("tenant-01", "tenant-01-user-001")
        forged = issue_token("a-well-formed-secret-that-is-not-ours-" * 2, tenant="tenant-01", user="x", audience=settings.jwt_audience, issuer=settings.jwt_issuer)
        rejected = asyncio.run(send_bad_requests(settings.gateway_url, bad_requests(), {"ok": ok_token, "forged": forged}))
        write_rogue_records(settings)
        with console.status("waiting for both sinks to commit everything"):
            lags = wait_caught_up(settings.kafka_bootstrap_servers, list(CONSUMER_GROUPS.values()), TOPIC, timeout_s=180)
        # the watermark passes at least the least of the partitions' newest events less the
        # job's delay (a partition idle longer than the job's idle timeout no longer holds it back,
        # and when they all fall idle together it stops right there): windows ending before it
        # are emitted; the newer ones close when later traffic comes
        closable_end_ms = (least_newest_event_ms(settings, start_ms) - engagement.watermark_delay_ms) // 60_000 * 60_000
        with console.status("waiting for the engagement job's closed windows to land in ClickHouse"):
            windows = wait_windows(settings, closable_end_ms, supervisor.running)
        with console.status("waiting for the anomaly job and the sinks to take the windows' anomalies"):
            ops_ok = wait_for_anomalies(settings, timeout_s=ANOMALY_WAIT_S)
        signals = scaling_signals(settings)
    finally:
        supervisor.stop()
        code = supervisor.wait()
    after = count(settings)
    summarise(console, settings, stats, elapsed, rejected, before, after, lags)
    if chat_stats is not None:
        summarise_chats(console, chat_stats)
    windows_ok = windows.newest_window_end_ms >= closable_end_ms
    summarise_engagement(console, before.engagement, after.engagement, closable_end_ms, engagement)
    found = summarise_ops(console, injections, opened_anomalies(settings, start_ms), signals)
    if not ops_ok:
        console.print(f"[red]the anomaly job or the sinks did not catch up within {ANOMALY_WAIT_S} s; see {settings.state_dir / 'logs'}")
    chats_ok = chat_stats is None or chat_stats.completed == len(chat_stats.results)
    return 0 if code == 0 and not any(lags.values()) and chats_ok and windows_ok and ops_ok and found == len(injections) else 1


def summarise(console: Console, settings: Settings, stats: DriveStats, elapsed: float, rejected: list[tuple[str, int, str]],
              before: Counts, after: Counts, lags: dict[str, int]) -> None:  # fmt: skip
    accepted = len(stats.accepted_events)
    table = Table(title="chatstream demo", show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("events accepted by the gateway (202)", f"{accepted:,}")
    table.add_row("  of which re-sent in retried batches", f"{stats.retried_batches:,} batches")
    table.add_row("  accepted rate", f"{accepted / max(elapsed, 1e-9):,.0f} events/s")
    table.add_row("new offsets in chat.actions.v1 (records and transaction markers)", f"{after.kafka - before.kafka:,}")
    table.add_row("new rows in ClickHouse chat_events (FINAL)", f"{after.clickhouse - before.clickhouse:,}")
    table.add_row("new rows in PostgreSQL chat_events", f"{after.postgres - before.postgres:,}")
    table.add_row("duplicate event_ids in ClickHouse / PostgreSQL",
                  f"{after.clickhouse - after.clickhouse_distinct} / {after.postgres - after.postgres_distinct}")  # fmt: skip
    sinks = len(CONSUMER_GROUPS)
    table.add_row(f"new dead letters in {DLQ}",
                  f"{after.dlq - before.dlq:,} ({ROGUE_RECORDS} rogue records x {sinks} sinks)")  # fmt: skip
    table.add_row("sink lag at the end", ", ".join(f"{g}: {n}" for g, n in lags.items()))
    console.print(table)
    bad = Table(title="deliberately bad requests")
    for column in ("request", "status", "error"):
        bad.add_column(column)
    for label, status, message in rejected:
        bad.add_row(label, str(status), message[:90])
    console.print(bad)
    console.print("Query the stores (the local stack keeps running; `chatstream infra down` stops it):")
    console.print('  chatstream query clickhouse "SELECT action, count() FROM chat_events FINAL GROUP BY action ORDER BY 2 DESC"')
    console.print('  chatstream query postgres "SELECT tenant_id, count(*) FROM chat_events GROUP BY 1 ORDER BY 2 DESC"')
    console.print(f"  kafka: {settings.kafka_bootstrap_servers}, topics {TOPIC} and {DLQ}; registry {settings.schema_registry_url}")
    console.print("Run the platform yourself: chatstream run   (gateway at " + settings.gateway_url + ")")


def summarise_engagement(console: Console, before: Engagement, after: Engagement, closable_end_ms: int,
                         job: EngagementSettings) -> None:  # fmt: skip
    def at(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC") if ms > 0 else "none yet"

    table = Table(title="engagement job (Flink: one-minute windows and sessions, in event time)")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("new window rows in ClickHouse engagement_windows (FINAL)", f"{after.windows - before.windows:,}")
    table.add_row("windows closed and landed up to", at(after.newest_window_end_ms))
    table.add_row(f"  expected at least up to (the least of the partitions' newest events less the watermark delay of "
                  f"{job.watermark_delay_ms / 1000:g} s)", at(closable_end_ms))  # fmt: skip
    table.add_row("new sessions in engagement_sessions (gap " f"{job.session_gap_s / 60:g} min)",
                  f"{after.sessions - before.sessions:,}")  # fmt: skip
    table.add_row("new late events (behind the watermark, counted apart)", f"{after.late - before.late:,}")
    console.print(table)
    console.print("The newest minute and open sessions close when later traffic moves event time past them "
                  "(`chatstream run` keeps them coming).")


def summarise_chats(console: Console, stats: ChatStats) -> None:
    table = Table(title="streaming chat completions (gateway -> Kafka -> dispatch job -> simulated models)")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("chat completions sent (stream: true)", f"{len(stats.results):,} in {stats.elapsed_s:.1f}s")
    table.add_row("completed / failed", f"{stats.completed:,} / {sum(stats.failed.values()):,}")
    for error, n in stats.failed.most_common():
        table.add_row(f"  failed: {error}", f"{n:,}")
    table.add_row("time to first token p50 / p99", f"{stats.ttft_ms(0.5):.0f} / {stats.ttft_ms(0.99):.0f} ms")
    fallbacks = "the job's /metrics did not answer" if stats.fallbacks is None else f"{stats.fallbacks:,.0f}"
    table.add_row("fallbacks (the job's chatstream_dispatch_fallbacks_total)", fallbacks)
    if stats.fallbacks is not None:
        counted = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(stats.outcomes.items())) or "none counted"
        table.add_row("the job's answers by outcome (chatstream_dispatch_answers_total)", counted)
    console.print(table)
    console.print(f"Chat with it yourself: the OpenAI API at <gateway>/v1 (models: {', '.join(CHAT_ALIASES)}), a token from "
                  "`chatstream token --tenant T --user U`")
