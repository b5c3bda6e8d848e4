"""Pid files, bounded stops and log excerpts, on real (tiny) processes of our own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.local.process import (
    child_pids,
    command_line,
    last_error_line,
    log_hint,
    pid_alive,
    read_pid,
    stop_daemon,
    stop_pid,
)

IGNORES_SIGTERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"


@pytest.fixture
def stubborn() -> Iterator[subprocess.Popen[str]]:
    """A child that ignores SIGTERM."""
    with subprocess.Popen([sys.executable, "-c", IGNORES_SIGTERM], stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        yield child
        child.kill()


def test_read_pid_names_a_live_process_only_if_it_runs_what_we_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "x.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    assert read_pid(pid_file) == os.getpid()
    assert read_pid(pid_file, expect="pytest") == os.getpid()
    assert read_pid(pid_file, expect=str(tmp_path / "not-this-command")) is None  # a pid reused by another program


def test_read_pid_of_a_missing_garbled_or_dead_pid_file_is_none(tmp_path: Path) -> None:
    assert read_pid(tmp_path / "missing.pid") is None
    (tmp_path / "garbled.pid").write_text("not a pid\n")
    assert read_pid(tmp_path / "garbled.pid") is None
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / "dead.pid").write_text(f"{dead.pid}\n")
    assert read_pid(tmp_path / "dead.pid") is None


def test_stop_pid_kills_what_ignores_sigterm_after_the_timeout(stubborn: subprocess.Popen[str]) -> None:
    started = time.monotonic()
    stop_pid(stubborn.pid, timeout_s=0.5)
    assert stubborn.wait(timeout=5) == -9
    assert 0.5 <= time.monotonic() - started < 5


def exec_done(pid: int, command: str, timeout_s: float = 10) -> None:
    """Until ``pid`` runs ``command``: just after fork its command line is still pytest's (a
    daemon writes its pid file once it runs; a test that writes it at once must wait)."""
    deadline = time.monotonic() + timeout_s
    while command not in (command_line(pid) or "") and time.monotonic() < deadline:
        time.sleep(0.01)


def test_stop_daemon_stops_and_forgets_the_pid_file(tmp_path: Path) -> None:
    with subprocess.Popen(["sleep", "60"]) as child:
        exec_done(child.pid, "sleep")
        pid_file = tmp_path / "sleep.pid"
        pid_file.write_text(f"{child.pid}\n")
        assert stop_daemon(pid_file, timeout_s=5, expect="sleep")
        assert child.wait(timeout=5) == -15
    assert not pid_file.exists()
    assert not stop_daemon(pid_file)


def test_stop_daemon_never_signals_a_process_that_is_not_ours(tmp_path: Path) -> None:
    with subprocess.Popen(["sleep", "60"]) as stranger:
        pid_file = tmp_path / "service.pid"
        pid_file.write_text(f"{stranger.pid}\n")
        assert not stop_daemon(pid_file, timeout_s=1, expect=str(tmp_path / "service-home"))
        assert pid_alive(stranger.pid) and stranger.poll() is None
        stranger.kill()


def test_child_pids_lists_our_children() -> None:
    with subprocess.Popen(["sleep", "60"]) as child:
        assert child.pid in child_pids(os.getpid())
        child.kill()


@pytest.mark.parametrize(
    ("log", "line"),
    [
        ("INFO up\nERROR [pool] connection refused\nINFO retrying\n", "ERROR [pool] connection refused"),
        ("2025 FATAL:  data directory has wrong ownership\n", "2025 FATAL: data directory has wrong ownership"),
        ("org.apache.kafka.common.KafkaException: boom\n\tat x.y(Z.java:1)\n", "org.apache.kafka.common.KafkaException: boom"),
        ("INFO all good\n", None),
    ],
)
def test_last_error_line(log: str, line: str | None) -> None:
    assert last_error_line(log) == line


def test_log_hint_is_one_line_with_the_last_error_or_else_the_last_line(tmp_path: Path) -> None:
    log = tmp_path / "service.log"
    assert log_hint(log) == f"see {log}"
    log.write_text("starting\npostgres: could not access the server configuration file\n\n")
    assert log_hint(log) == f"see {log} (last line: postgres: could not access the server configuration file)"
    log.write_text("ERROR " + "x" * 1000 + "\nINFO shutting down\n")
    hint = log_hint(log)
    assert "\n" not in hint and hint.startswith(f"see {log} (last error: ERROR xxx") and len(hint) < 400
