"""The gateway serves the dashboard's build at /dashboard, and says how to build it when absent."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from gateway.dashboard import add_dashboard

DASHBOARD_DIR = Path(__file__).parents[3] / "gateway" / "dashboard"

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def client(dist: Path) -> httpx.AsyncClient:
    app = FastAPI()
    add_dashboard(app, dist)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>dash</title>")
    (tmp_path / "assets" / "dashboard.js").write_text("console.log(1)")
    return tmp_path


async def test_the_page_and_its_assets_are_served(dist: Path) -> None:
    async with client(dist) as c:
        page = await c.get("/dashboard")
        script = await c.get("/dashboard/assets/dashboard.js")
        slash = await c.get("/dashboard/")
    assert page.status_code == 200 and "<title>dash</title>" in page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]  # no CDN can be loaded
    assert script.status_code == 200 and script.text == "console.log(1)"
    assert slash.status_code == 308 and slash.headers["location"] == "/dashboard"


async def test_a_missing_build_says_how_to_make_it(tmp_path: Path) -> None:
    async with client(tmp_path / "nowhere") as c:
        page = await c.get("/dashboard")
        script = await c.get("/dashboard/assets/dashboard.js")
    assert page.status_code == 503
    assert "make setup" in page.text and "npm run build" in page.text
    assert script.status_code == 404


def test_the_built_page_loads_only_local_files() -> None:
    source = (DASHBOARD_DIR / "src" / "index.html").read_text()
    assert "/dashboard/assets/dashboard.js" in source and "/dashboard/assets/dashboard.css" in source
    assert "http://" not in source and "https://" not in source


async def test_assets_stay_inside_the_build(dist: Path) -> None:
    (dist.parent / "secret.txt").write_text("no")
    async with client(dist) as c:
        answer = await c.get("/dashboard/assets/..%2F..%2Fsecret.txt")
    assert answer.status_code == 404


def test_the_pages_own_modules_pass_their_node_tests() -> None:
    """Token handling, annotation parsing and number formats, under Node's test runner."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed (make setup installs it)")
    done = subprocess.run([node, "--test", "test/"], cwd=DASHBOARD_DIR, capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout
