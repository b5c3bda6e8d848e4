"""Start, watch and stop the long-running processes of the local stack.

Each service keeps a pid file and a log file in its own folder of the state directory; only
processes named by our own pid files are ever signalled.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from infra.local.errors import ServiceStartError


def port_open(port: int, host: str = "127.0.0.1", timeout_s: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


def read_pid(pid_file: Path) -> int | None:
    """The pid recorded in ``pid_file`` if that process is still alive."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid_alive(pid) else None


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log yet)"


def start_daemon(
    argv: Sequence[str],
    *,
    log_file: Path,
    pid_file: Path,
    extra_env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start ``argv`` detached in its own session, output appended to ``log_file``.

    A short-lived shell forks the service and exits, so the service is not our child: it
    outlives this process and never lingers as our zombie.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    launcher = '"$@" >>"$0" 2>&1 </dev/null & echo $!'
    done = subprocess.run(
        ["/bin/sh", "-c", launcher, str(log_file), *argv],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
        env={**os.environ, **extra_env} if extra_env else None,
        start_new_session=True,
    )
    pid = int(done.stdout.strip())
    pid_file.write_text(f"{pid}\n")
    return pid


def wait_until(
    ready: Callable[[], bool],
    *,
    what: str,
    timeout_s: float,
    log_file: Path,
    pid: int | None = None,
    interval_s: float = 0.25,
) -> None:
    """Poll ``ready`` until true; fail early if ``pid`` dies, late after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        if pid is not None and not pid_alive(pid):
            raise ServiceStartError(
                f"{what} exited during start-up; see {log_file}:\n{tail(log_file)}"
            )
        time.sleep(interval_s)
    raise ServiceStartError(
        f"{what} was not ready after {timeout_s:.0f}s; see {log_file}:\n{tail(log_file)}"
    )


def stop_daemon(pid_file: Path, *, timeout_s: float = 30.0) -> bool:
    """SIGTERM the process of ``pid_file``, SIGKILL after ``timeout_s``. False if none ran."""
    pid = read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
        while pid_alive(pid):
            time.sleep(0.1)
    pid_file.unlink(missing_ok=True)
    return True
