"""The dashboard in a real headless Chromium (Debian's, driven by Playwright) against the real
platform: demo traffic posted through the gateway, streamed chats answered by the dispatch job,
both landed in ClickHouse by the sink; the page reads the gateway's analytics API with an admin
token from its URL fragment. The page loads, its charts draw the data, a filter changes what it
shows, and screenshots land in ``test-output/`` (git-ignored; their paths are printed).

The engagement job (Flink) is not part of this branch: its windows are derived here from what
the sink landed, with SQL that follows the contract's ``engagement_windows`` and
``engagement_sessions`` (one-minute windows per tenant, model and user; sessions by session id).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Request, sync_playwright

from chatstream.cli.dashboard import dashboard_address, dashboard_link
from chatstream.cli.demo.chats import chat_requests, drive_chats
from chatstream.cli.demo.driver import drive
from chatstream.cli.demo.traffic import TrafficModel
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

BOUNDS = "[5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1000, 1500, 2000, 3000, 4000, 5000, 7500, " \
         "10000, 15000, 20000, 30000, 60000, 120000]"  # the contract's LATENCY_BOUNDS_MS  # fmt: skip


def hist(column: str) -> str:
    """Counts per bucket of the contract's bounds (the last bucket: larger values) of ``column``."""
    bucket = f"if(arrayFirstIndex(b -> {column} <= b, {BOUNDS}) = 0, 27, arrayFirstIndex(b -> {column} <= b, {BOUNDS}))"
    return f"sumForEach(if({column} IS NULL, arrayWithConstant(27, toUInt64(0)), arrayMap(i -> toUInt64(i = {bucket}), range(1, 28))))"


CHAT_COLUMNS = ("event_id, occurred_at, dimension, tenant_id, model, user_id, window_start, window_end, active_users, "
                "active_conversations, sessions_started, conversations_created, messages_sent, regenerations, "
                "generations_stopped, feedback_up, feedback_down")  # fmt: skip
CHAT_FIGURES = ("uniqExact(user_id), uniqExact(conversation_id), countIf(action = 'SESSION_STARTED'), "
                "countIf(action = 'CONVERSATION_CREATED'), countIf(action = 'MESSAGE_SENT'), "
                "countIf(action = 'REGENERATE_REQUESTED'), countIf(action = 'GENERATION_STOPPED'), "
                "countIf(action = 'FEEDBACK_GIVEN' AND rating = 'UP'), countIf(action = 'FEEDBACK_GIVEN' AND rating = 'DOWN')")  # fmt: skip
AI_COLUMNS = ("event_id, occurred_at, dimension, tenant_id, model, user_id, window_start, window_end, active_users, "
              "ai_requests, ai_completed, ai_failed, prompt_tokens, completion_tokens, cost_usd, latency_count, ttft_count, "
              "latency_sum_ms, ttft_sum_ms, latency_max_ms, ttft_max_ms, latency_hist, ttft_hist")  # fmt: skip
AI_FIGURES = ("uniqExact(user_id), countIf(status IN ('completed', 'failed')), countIf(status = 'completed'), "
              "countIf(status = 'failed'), sumIf(ifNull(prompt_tokens, 0), status = 'completed'), "
              "sumIf(ifNull(completion_tokens, 0), status = 'completed'), sumIf(ifNull(cost_usd, 0), status = 'completed'), "
              "count(latency_ms), count(time_to_first_token_ms), sum(ifNull(latency_ms, 0)), "
              "sum(ifNull(time_to_first_token_ms, 0)), max(ifNull(latency_ms, 0)), max(ifNull(time_to_first_token_ms, 0)), "
              f"{hist('latency_ms')}, {hist('time_to_first_token_ms')}")  # fmt: skip
WINDOW = "toStartOfMinute(occurred_at)"


def derive_engagement(clickhouse: Callable[..., Any]) -> None:
    """What the engagement job would write for the landed events: per-minute windows by tenant,
    model and user (chat actions and AI answers in rows of their own: every figure is a sum or
    a distinct count over user rows), and one session row per session."""
    minute = "w, w + INTERVAL 1 MINUTE"
    chat = f"FROM chat_events FINAL WHERE tenant_id IN {TENANTS}"
    ai = (f"FROM (SELECT *, requested_at AS occurred_at FROM ai_requests FINAL WHERE tenant_id IN {TENANTS} "
          "AND status IN ('completed', 'failed'))")  # fmt: skip
    clickhouse(
        ("command", f"INSERT INTO engagement_windows ({CHAT_COLUMNS}) SELECT generateUUIDv4(), w + INTERVAL 1 MINUTE, "
                    f"'tenant', tenant_id, NULL, '', {minute}, {CHAT_FIGURES} {chat} GROUP BY tenant_id, {WINDOW} AS w", None),
        ("command", f"INSERT INTO engagement_windows ({CHAT_COLUMNS}) SELECT generateUUIDv4(), w + INTERVAL 1 MINUTE, "
                    f"'user', tenant_id, NULL, user_id, {minute}, {CHAT_FIGURES} {chat} GROUP BY tenant_id, user_id, {WINDOW} AS w", None),
        ("command", f"INSERT INTO engagement_windows ({AI_COLUMNS}) SELECT generateUUIDv4(), w + INTERVAL 1 MINUTE, "
                    f"'tenant', tenant_id, NULL, '', {minute}, {AI_FIGURES} {ai} GROUP BY tenant_id, {WINDOW} AS w", None),
        ("command", f"INSERT INTO engagement_windows ({AI_COLUMNS}) SELECT generateUUIDv4(), w + INTERVAL 1 MINUTE, "
                    f"'model', tenant_id, model, '', {minute}, {AI_FIGURES} {ai} GROUP BY tenant_id, model, {WINDOW} AS w", None),
        ("command", f"INSERT INTO engagement_windows ({AI_COLUMNS}) SELECT generateUUIDv4(), w + INTERVAL 1 MINUTE, "
                    f"'user', tenant_id, NULL, user_id, {minute}, {AI_FIGURES} {ai} GROUP BY tenant_id, user_id, {WINDOW} AS w", None),
        ("command", "INSERT INTO engagement_sessions (event_id, occurred_at, tenant_id, user_id, session_start, session_end, "
                    "duration_ms, turns, events, conversations, models) SELECT generateUUIDv4(), max(occurred_at), tenant_id, "
                    "user_id, min(occurred_at), max(occurred_at), toUInt64(dateDiff('millisecond', min(occurred_at), max(occurred_at))), "
                    "countIf(action IN ('MESSAGE_SENT', 'REGENERATE_REQUESTED')), count(), uniqExact(conversation_id), "
                    f"groupUniqArrayIf(assumeNotNull(model), model IS NOT NULL) {chat} AND session_id IS NOT NULL "
                    "GROUP BY tenant_id, user_id, session_id", None),
    )  # fmt: skip


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
    """The gateway, the ClickHouse sink and the dispatch job, with the demo's traffic landed:
    ~1,500 chat actions of three tenants over the last 50 minutes and 30 streamed chats now."""
    settings = running_stack
    components = [Component(settings, "sink", "clickhouse").start(), Component(settings, "job", "dispatch").start()]
    try:
        dispatch_url = f"http://127.0.0.1:{settings.dispatch_port}"
        assert wait_ready(dispatch_url, timeout_s=90, alive=components[1].running), components[1].log_tail()
        secret = local_secret(settings.state_dir)

        def token_for(tenant: str, user: str) -> str:
            return issue_token(secret, tenant=tenant, user=user, audience=settings.jwt_audience, issuer=settings.jwt_issuer)

        now_ms = int(time.time() * 1000)
        model = TrafficModel(seed=3, tenants=3, users_per_tenant=12, start_ms=now_ms - 50 * 60_000, span_ms=45 * 60_000)
        stats = asyncio.run(drive(settings.gateway_url, model.sessions(1_500), token_for, concurrency=4, retry_fraction=0))
        assert stats.failed_events == 0 and len(stats.accepted_events) >= 1_500
        requests = chat_requests(settings.gateway_host, settings.gateway_listen_port, model, CHAT_ALIASES, token_for, 30)
        chats = drive_chats(settings.gateway_host, settings.gateway_listen_port, requests, concurrency=4,
                            metrics_url=f"{dispatch_url}/metrics")  # fmt: skip
        assert chats.completed >= 25, chats.failed
        for topic in (CHAT_ACTIONS.name, AI_RESPONSES.name):
            lags = wait_caught_up(settings.kafka_bootstrap_servers, [CONSUMER_GROUPS["clickhouse"]], topic, timeout_s=120)
            assert not any(lags.values()), (topic, lags, components[0].log_tail())
        derive_engagement(clickhouse)
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
    platform: Settings, page: Page, capsys: pytest.CaptureFixture[str]
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
    assert len(models) == len(CHAT_ALIASES), models  # one deployment model per alias
    page.select_option("#f-model", models[0])
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
