"""Errors reach the user as one line, never a traceback: bad SQL, ``infra up`` failing to start
a service."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from chatstream.settings import Settings
from tests.integration.conftest import chatstream


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_bad_sql_is_one_line_with_the_stores_own_message(running_stack: Settings) -> None:
    line = one_error_line(chatstream(running_stack, "query", "clickhouse", "SELEC 1", check=False))
    assert line.startswith("error: ClickHouse: Code: 62.") and "Syntax error" in line

    line = one_error_line(chatstream(running_stack, "query", "postgres", "SELEC 1", check=False))
    assert line.startswith("error: PostgreSQL: ") and 'syntax error at or near "SELEC"' in line


def test_infra_up_that_cannot_start_a_service_is_one_line_naming_it_and_its_log(
    running_stack: Settings, unique: str
) -> None:
    # A stack of its own (free ports, Kafka and the registry borrowed from the session's) whose
    # PostgreSQL data folder is no cluster at all.
    state = running_stack.state_dir / f"broken-{unique}"
    (state / "postgres" / "data").mkdir(parents=True)
    (state / "postgres" / "data" / "PG_VERSION").write_text("15\n")
    env = {
        **os.environ,
        "CHATSTREAM_STATE_DIR": str(state),
        "CHATSTREAM_PORT_BASE": str(running_stack.port_base + 500),
        "CHATSTREAM_KAFKA_BOOTSTRAP": running_stack.kafka_bootstrap_servers,
        "CHATSTREAM_REGISTRY_URL": running_stack.schema_registry_url,
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "chatstream", "infra", "up"],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        )  # fmt: skip
    finally:
        shutil.rmtree(state, ignore_errors=True)
    line = one_error_line(done)
    assert line.startswith("error: PostgreSQL did not start")
    assert str(state / "postgres" / "postgres.log") in line
    assert "postgresql.conf" in line  # what the server said, from its log
    assert "then run `chatstream infra up` again" in line
