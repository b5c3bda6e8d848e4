"""The command line as a user meets it: help everywhere, one-line errors, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chatstream.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["infra"],
        ["infra", "up"],
        ["infra", "status"],
        ["topics", "apply"],
        ["schemas", "check"],
        ["schemas", "register"],
        ["db", "migrate"],
    ],
)
def test_help(args: list[str]) -> None:
    result = runner.invoke(app, [*args, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_missing_prerequisites_are_reported_before_anything_starts(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {
        **os.environ,
        "CHATSTREAM_JAVA": "/no/such/java",
        "CHATSTREAM_MAVEN": "no-such-mvn",
        "CHATSTREAM_STATE_DIR": str(state),
    }
    done = subprocess.run(
        [sys.executable, "-m", "chatstream", "infra", "up"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("error: Java 17+ not found: no '/no/such/java' on PATH")
    assert lines[1].startswith("error: Maven not found")
    assert "Traceback" not in done.stderr
    assert not state.exists()


def test_schemas_docs_check_passes_on_the_committed_docs() -> None:
    result = runner.invoke(app, ["schemas", "docs", "--check"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
