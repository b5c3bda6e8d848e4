"""The dashboard in a real headless Chromium (Debian's, driven by Playwright) against the real
platform: demo traffic posted through the gateway, streamed chats answered by the dispatch job,
both landed in ClickHouse by the sink; the page reads the gateway's analytics API with an admin
token from its URL fragment. The page loads, its charts draw the data, a filter changes what it
shows, and screenshots land in ``test-output/`` (git-ignored; their paths are printed).

The engagement job (Flink, a MiniCluster) aggregates the same traffic into the windows and
sessions the page draws; the sink lands them too.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request, sync_playwright

from chatstream.cli.dashboard import dashboard_address, dashboard_link
from chatstream.cli.demo.chats import chat_requests, drive_chats
from chatstream.cli.demo.driver import drive
from chatstream.cli.demo.traffic import Session, TrafficModel
from chatstream.lag import wait_caught_up
from chatstream.readiness import wait_ready
from chatstream.settings import REPO_ROOT, Settings
from gateway.auth import issue_token, local_secret
from pipelines.sinks import CONSUMER_GROUPS
from pipelines.topics import AI_RESPONSES, CHAT_ACTIONS
from tests.integration.platform import Component, wait_gateway_ready

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
OUTPUT = REPO_ROOT / "test-output"
CHARTS = ["active_users", "conversations", "messages", "sessions", "regenerations", "model_mix", "tokens_by_model",
          "cost_by_model", "cost_by_tenant", "latency", "ttft", "ai_requests"]  # fmt: skip
CHAT_ALIASES = ["chatstream-sim", "chatstream-sim-fast"]  # pipelines/models.toml, as the demo
TENANTS = "('tenant-01', 'tenant-02', 'tenant-03')"  # the TrafficModel's, three tenants

# The traffic below is an hour of history sent in seconds, its sessions' events in session order,
# not in event-time order: with the default lateness (seconds) much of it would be late. As for
# any backfill, the job runs with an allowed lateness that covers it; sessions close after 60 s.
ALLOWED_LATENESS_S = 3600
ENGAGEMENT_ENV = {
    "CHATSTREAM_ENGAGEMENT_IDLE_TIMEOUT_S": "1",
    "CHATSTREAM_ENGAGEMENT_ALLOWED_LATENESS_S": str(ALLOWED_LATENESS_S),
    "CHATSTREAM_ENGAGEMENT_SESSION_GAP_S": "60",
    "CHATSTREAM_ENGAGEMENT_CHECKPOINT_INTERVAL_S": "2",
    "CHATSTREAM_ENGAGEMENT_STARTUP_MODE": "timestamp",
}


def engagement_job(settings: Settings) -> Component:
    """The engagement job (Flink MiniCluster) with a consumer group and checkpoints of its own,
    reading what is produced from now on."""
    run = uuid.uuid4().hex[:8]
    return Component(settings, "job", "engagement", "--no-restore", env={
        **ENGAGEMENT_ENV, "CHATSTREAM_ENGAGEMENT_GROUP_ID": f"test-dashboard-{run}",
        "CHATSTREAM_ENGAGEMENT_STARTUP_TIMESTAMP_MS": str(int(time.time() * 1000)),
        "CHATSTREAM_ENGAGEMENT_CHECKPOINT_DIR": (settings.state_dir / "flink" / f"test-dashboard-{run}").as_uri(),
    }).start()  # fmt: skip


def tick(settings: Settings, token: str) -> None:
    """One chat action far enough ahead of now that event time moves past the last windows' end
    plus the watermark delay, so the job closes them (live traffic does this by itself)."""
    at = int(time.time() * 1000) + (2 * ALLOWED_LATENESS_S) * 1000
    event = {"type": "session_started", "event_id": str(uuid.uuid4()), "occurred_at": at, "session_id": "tick",
             "session_started": {}}  # fmt: skip
    answer = httpx.post(f"{settings.gateway_url}/v1/events", json=event, timeout=30,
                        headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert answer.status_code == 202, answer.text


def wait_engagement(clickhouse: Callable[..., Any], answers: int, job: Component, timeout_s: float = 180) -> None:
    """Until ClickHouse holds the job's windows for every answered chat and some sessions."""
    query = (f"SELECT sumIf(ai_requests, dimension = 'model'), countIf(dimension = 'user') FROM engagement_windows FINAL "
             f"WHERE tenant_id IN {TENANTS}")  # fmt: skip
    sessions = f"SELECT count() FROM engagement_sessions FINAL WHERE tenant_id IN {TENANTS}"
    deadline = time.monotonic() + timeout_s
    while True:
        assert job.running(), job.log_tail()
        ((requests, users),) = clickhouse(("query", query, None))
        ((count,),) = clickhouse(("query", sessions, None))
        if (requests >= answers and users and count) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert requests >= answers and users and count, (requests, answers, users, count, job.log_tail())


@pytest.fixture(scope="module")
def gateway(running_stack: Settings) -> Iterator[Component]:
    component = Component(running_stack, "gateway").start()
    try:
        wait_gateway_ready(running_stack, component)
        yield component
    finally:
        if component.running():
            component.stop()


@pytest.fixture(scope="module")
def platform(running_stack: Settings, gateway: Component, clickhouse: Callable[..., Any]) -> Iterator[Settings]:
    """The gateway, the ClickHouse sink, the dispatch job and the engagement job, with the demo's
    traffic landed: ~1,500 chat actions of three tenants over the last 50 minutes and 30 streamed
    chats now, aggregated by the engagement job into windows and sessions."""
    settings = running_stack
    job = engagement_job(settings)
    components = [Component(settings, "sink", "clickhouse").start(), Component(settings, "job", "dispatch").start(), job]
    try:
        dispatch_url = f"http://127.0.0.1:{settings.dispatch_port}"
        assert wait_ready(dispatch_url, timeout_s=90, alive=components[1].running), components[1].log_tail()
        secret = local_secret(settings.state_dir)

        def token_for(tenant: str, user: str) -> str:
            return issue_token(secret, tenant=tenant, user=user, audience=settings.jwt_audience, issuer=settings.jwt_issuer)

        now_ms = int(time.time() * 1000)
        model = TrafficModel(seed=3, tenants=3, users_per_tenant=12, start_ms=now_ms - 50 * 60_000, span_ms=45 * 60_000)
        # history ends now: a session still going on has no events in the future, so a range
        # ending "now" holds the same rows on every later refresh
        sessions = [Session(s.tenant_id, s.user_id, [e for e in s.events if e["occurred_at"] <= now_ms])
                    for s in model.sessions(1_500)]  # fmt: skip
        stats = asyncio.run(drive(settings.gateway_url, sessions, token_for, concurrency=4, retry_fraction=0))
        assert stats.failed_events == 0 and len(stats.accepted_events) == sum(len(s.events) for s in sessions)
        requests = chat_requests(settings.gateway_host, settings.gateway_listen_port, model, CHAT_ALIASES, token_for, 30)
        chats = drive_chats(settings.gateway_host, settings.gateway_listen_port, requests, concurrency=4,
                            metrics_url=f"{dispatch_url}/metrics")  # fmt: skip
        assert chats.completed >= 25, chats.failed
        for topic in (CHAT_ACTIONS.name, AI_RESPONSES.name):
            lags = wait_caught_up(settings.kafka_bootstrap_servers, [CONSUMER_GROUPS["clickhouse"]], topic, timeout_s=120)
            assert not any(lags.values()), (topic, lags, components[0].log_tail())
        tick(settings, token_for("tenant-01", "tick"))
        wait_engagement(clickhouse, chats.completed, job)
        yield settings
    finally:
        for component in components:
            if component.running():
                component.stop()


def kpi(page: Page, key: str) -> float:
    raw = page.locator(f'[data-kpi="{key}"] .value').get_attribute("data-raw")
    return float(raw) if raw else 0.0


def wait_kpi(page: Page, key: str, done: Callable[[float], bool], timeout_s: float = 30) -> float:
    """Poll a KPI tile from here: the page's CSP (no eval) refuses Playwright's wait_for_function."""
    deadline = time.monotonic() + timeout_s
    while not done(value := kpi(page, key)) and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    return value


@pytest.fixture(scope="module")
def browser(platform: Settings) -> Iterator[Browser]:
    if CHROMIUM is None:
        pytest.fail("Debian's chromium is not installed: run `make setup` (infra/bootstrap/system-deps.sh installs it)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab (its own sessionStorage); the page's script errors fail the test."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert errors == []


def test_the_dashboard_draws_the_demo_data_and_its_filters_change_it(
    platform: Settings, page: Page, capsys: pytest.CaptureFixture[str], clickhouse: Callable[..., Any]
) -> None:
    link = dashboard_link(platform)  # an admin link: every tenant
    assert "#token=" in link
    in_flight, most_in_flight, overviews = [0], [0], [0]

    def started(request: Request) -> None:
        if "/v1/analytics/overview" in request.url:
            in_flight[0] += 1
            most_in_flight[0] = max(most_in_flight[0], in_flight[0])

    def ended(request: Request) -> None:
        if "/v1/analytics/overview" in request.url:
            in_flight[0] -= 1
            overviews[0] += 1

    page.on("request", started)
    page.on("requestfinished", ended)
    page.on("requestfailed", ended)
    page.goto(link)
    # the token left the address bar for the tab's sessionStorage
    assert "token=" not in page.url
    assert page.evaluate("sessionStorage.getItem('chatstream.dashboard.token')")

    for chart in CHARTS:
        card = page.wait_for_selector(f'#chart-{chart}:not([data-state="loading"])', timeout=60_000)
        assert card is not None
        assert card.get_attribute("data-state") == "ready", (chart, card.inner_text())
        assert int(card.get_attribute("data-points") or 0) > 0, chart
        assert page.locator(f"#chart-{chart} canvas").count() >= 1, chart
    page.wait_for_selector('#kpis[data-state="ready"]', timeout=30_000)
    for table in ("top-users", "top-models", "top-tenants", "retention"):
        page.wait_for_selector(f'#{table}[data-state="ready"] tbody tr', timeout=30_000)
    page.wait_for_selector('#funnel[data-state="ready"]', timeout=30_000)
    all_messages = kpi(page, "messages")
    assert all_messages > 0
    assert page.locator("#f-tenant option").count() == 1 + 3  # all tenants, then each
    OUTPUT.mkdir(exist_ok=True)
    shot = OUTPUT / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)

    # live: it refreshes by itself, one refresh at a time
    seen = overviews[0]
    page.wait_for_timeout(12_000)
    assert overviews[0] >= seen + 2 and most_in_flight[0] == 1, (seen, overviews[0], most_in_flight[0])

    all_requests = kpi(page, "ai_requests")
    models = [o for o in page.locator("#f-model option").evaluate_all("os => os.map(o => o.value)") if o]
    # the filter lists every model the windows name: those of the chat actions and the answering ones
    answering = [m for (m,) in clickhouse(("query", f"SELECT DISTINCT model FROM ai_requests FINAL WHERE tenant_id IN {TENANTS} "
                                                    "ORDER BY model", None))]  # fmt: skip
    assert len(answering) == len(CHAT_ALIASES) and set(answering) <= set(models), (answering, models)
    page.select_option("#f-model", answering[0])
    one_model = wait_kpi(page, "ai_requests", lambda v: v < all_requests)
    assert 0 < one_model < all_requests
    page.select_option("#f-model", "")
    assert wait_kpi(page, "ai_requests", lambda v: v == all_requests) == all_requests

    page.select_option("#f-tenant", "tenant-01")
    one_tenant = wait_kpi(page, "messages", lambda v: v < all_messages)
    assert 0 < one_tenant < all_messages
    assert "tenant=tenant-01" in page.url
    page.wait_for_selector('#chart-messages[data-state="ready"]', timeout=30_000)
    tenant_shot = OUTPUT / "dashboard-tenant-01.png"
    page.screenshot(path=str(tenant_shot), full_page=True)

    page.select_option("#f-range", "15m")  # the traffic spans the last 50 minutes
    assert wait_kpi(page, "messages", lambda v: v < one_tenant) < one_tenant

    page.reload()  # the filters from the address, the token from sessionStorage
    assert page.input_value("#f-tenant") == "tenant-01" and page.input_value("#f-range") == "15m"
    page.wait_for_selector('#kpis[data-state="ready"]', timeout=30_000)
    assert page.locator("#token-form").is_hidden()
    with capsys.disabled():
        print(f"\ndashboard screenshots: {shot} and {tenant_shot}")
    assert shot.stat().st_size > 10_000


def test_a_tenant_without_data_sees_the_empty_states(platform: Settings, page: Page) -> None:
    page.goto(dashboard_link(platform, tenant="tenant-without-traffic"))
    card = page.wait_for_selector('#chart-messages:not([data-state="loading"])', timeout=60_000)
    assert card is not None and card.get_attribute("data-state") == "empty"
    assert "no data in this range yet" in card.inner_text()
    page.wait_for_selector('#kpis[data-state="empty"]', timeout=30_000)
    page.wait_for_selector('#top-users[data-state="empty"]', timeout=30_000)
    assert page.locator("#banner").is_hidden()


def test_a_refused_token_asks_for_another(platform: Settings, page: Page) -> None:
    page.goto(f"{dashboard_address(platform)}#token=not-a-token")
    page.wait_for_selector("#token-form", state="visible", timeout=30_000)
    assert "refused the token" in page.inner_text("#banner")
    assert page.locator("#main").is_hidden()
    token = dashboard_link(platform).split("#token=", 1)[1]
    page.fill("#token-input", token)
    page.click("#token-form button[type=submit]")
    page.wait_for_selector('#kpis[data-state="ready"]', timeout=30_000)
    assert page.locator("#token-form").is_hidden()


def test_the_page_keeps_its_data_through_a_gateway_outage_and_recovers(platform: Settings, gateway: Component,
                                                                       page: Page) -> None:  # fmt: skip
    page.goto(dashboard_link(platform))
    page.wait_for_selector('#kpis[data-state="ready"]', timeout=60_000)
    messages = kpi(page, "messages")
    assert gateway.stop() == 0
    try:
        page.wait_for_selector('#live[data-state="error"]', timeout=30_000)
        assert "the gateway did not answer" in page.inner_text("#banner")
        assert kpi(page, "messages") == messages  # the last figures stay on screen
        assert page.get_attribute("#chart-messages", "data-state") == "error"
    finally:
        gateway.start()
        wait_gateway_ready(platform, gateway)
    page.wait_for_selector("#banner", state="hidden", timeout=30_000)  # the next refresh answers
    page.wait_for_selector('#chart-messages[data-state="ready"]', timeout=30_000)
    assert kpi(page, "messages") == messages
