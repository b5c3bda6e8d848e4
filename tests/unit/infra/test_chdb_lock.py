"""Who holds embedded chDB's folder: ClickHouse's ``status`` file and its flock, imitated."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chatstream.settings import Settings
from infra.local.clickhouse import chdb_holder, require_chdb_free, status_file_pid
from infra.local.errors import ChdbBusyError

# What ClickHouse's StatusFile does: write the pid, hold an exclusive flock while open.
HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.write(fd, f"PID: {os.getpid()}\\nStarted at: 2026-01-01 00:00:00\\nRevision: 54515\\n".encode())
print("held", flush=True)
time.sleep(60)
"""


def test_status_file_pid() -> None:
    assert status_file_pid("PID: 18998\nStarted at: 2026-11-24 05:11:16\nRevision: 54515\n") == 18998
    assert status_file_pid("") is None


def test_a_folder_nobody_has_open_is_free(tmp_path: Path) -> None:
    assert chdb_holder(tmp_path) is None  # never opened: no status file
    (tmp_path / "status").write_text("PID: 1\n")  # left by a process that has exited
    assert chdb_holder(tmp_path) is None


def test_a_folder_another_process_holds_names_it_and_says_what_to_do(tmp_path: Path) -> None:
    data = tmp_path / "clickhouse"
    data.mkdir()
    with subprocess.Popen([sys.executable, "-c", HOLD, str(data / "status")], stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        try:
            assert (chdb_holder(data) or "").startswith(f"pid {holder.pid}: ")
            with pytest.raises(ChdbBusyError) as info:
                require_chdb_free(Settings(state_dir=tmp_path))
            message = str(info.value)
            assert "\n" not in message
            assert f"in {data} is open in another process (pid {holder.pid}: " in message
            assert "CHATSTREAM_CLICKHOUSE_SERVER=1" in message
            # A ClickHouse server is shared by design: nothing to check.
            require_chdb_free(Settings(state_dir=tmp_path, clickhouse_server=True))
        finally:
            holder.kill()
    assert chdb_holder(data) is None
