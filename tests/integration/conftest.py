"""The real local services for the integration tests, started through ``infra up``'s own code.

The test stack has its own state directory and ports (``.chatstream/test-stack``, port base
29000, or ``CHATSTREAM_TEST_PORT_BASE``), so a developer's running stack is never touched.
ClickHouse is the stack's server (chDB's engine in a process of its own): tests are its clients.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chatstream.settings import REPO_ROOT, Settings
from infra.local import stack
from tests.integration.platform import cli_env


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings(
        state_dir=REPO_ROOT / ".chatstream" / "test-stack",
        port_base=int(os.environ.get("CHATSTREAM_TEST_PORT_BASE", "29000")),
    )


def chatstream(settings: Settings, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real ``chatstream`` command against the test stack."""
    done = subprocess.run(
        [sys.executable, "-m", "chatstream", *args],
        capture_output=True, text=True, env=cli_env(settings), timeout=300, check=False,
    )  # fmt: skip
    if check and done.returncode != 0:
        raise AssertionError(f"chatstream {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="session")
def running_stack(settings: Settings) -> Iterator[Settings]:
    """A fresh test stack per session: earlier runs' data never leaks into assertions."""
    stack.down(settings)
    shutil.rmtree(settings.state_dir, ignore_errors=True)
    stack.up(settings)
    chatstream(settings, "db", "migrate")
    chatstream(settings, "topics", "apply")
    chatstream(settings, "schemas", "register")
    try:
        yield settings
    finally:
        stack.down(settings)


@pytest.fixture(scope="session")
def clickhouse(running_stack: Settings) -> Callable[..., Any]:
    """Run ClickHouse statements (``("command", sql, None)``, ``("insert", table, {"columns",
    "rows"})``, ``("query", sql, None)``) on the stack's server; returns the last query's rows,
    as JSON would carry them (times and ids as text)."""
    import clickhouse_connect

    def run(*statements: tuple[str, str, Any]) -> Any:
        client = clickhouse_connect.get_client(dsn=running_stack.clickhouse_url)
        result = None
        try:
            for kind, sql, data in statements:
                if kind == "command":
                    client.command(sql)
                elif kind == "insert":
                    client.insert(sql, data["rows"], column_names=data["columns"])
                else:
                    result = [list(r) for r in client.query(sql).result_rows]
        finally:
            client.close()
        return json.loads(json.dumps(result, default=str))

    return run


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topics, subjects and tables a test creates."""
    return uuid.uuid4().hex[:10]
