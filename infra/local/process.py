"""Start, watch and stop the long-running processes of the local stack.

Each service keeps a pid file and a log file in its own folder of the state directory; only
processes named by our own pid files (and still running the command we started) are ever
signalled. Every stop is bounded: a polite signal, then SIGKILL after a timeout.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from infra.local.errors import ServiceStartError

# A log line worth quoting when a service fails to start.
_ERROR_LINE = re.compile(r"\b(ERROR|FATAL|PANIC|SEVERE)\b|Exception\b|[Ee]rror:")


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


def command_line(pid: int) -> str | None:
    """The command line of ``pid`` (arguments joined by spaces), None if unreadable."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")


def read_pid(pid_file: Path, expect: str | None = None) -> int | None:
    """The pid recorded in ``pid_file`` if that process is still alive.

    With ``expect``, the process must also still run a command line containing it: a pid file
    left by a process that died (say, before a reboot) may name a pid the system has since
    given to an unrelated program, which must be neither taken for our service nor signalled.
    """
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if not pid_alive(pid):
        return None
    if expect is not None:
        command = command_line(pid)
        if command is not None and expect not in command:
            return None
    return pid


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (read from ``/proc``)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(") ", 1)[1].split()[1]) == pid:
            children.append(int(entry.name))
    return children


def _trimmed(line: str, limit: int) -> str:
    line = " ".join(line.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def last_error_line(log_text: str, limit: int = 300) -> str | None:
    """The last line of a log that reports an error, trimmed to ``limit`` characters."""
    for line in reversed(log_text.splitlines()):
        if _ERROR_LINE.search(line):
            return _trimmed(line, limit)
    return None


def log_hint(log_file: Path) -> str:
    """``see <log>``, with the log's last error line (else its last line): one line, for messages."""
    try:
        text = log_file.read_text(errors="replace")[-200_000:]
    except OSError:
        return f"see {log_file}"
    found = last_error_line(text)
    if found is not None:
        return f"see {log_file} (last error: {found})"
    lines = [line for line in text.splitlines() if line.strip()]
    return f"see {log_file}" + (f" (last line: {_trimmed(lines[-1], 300)})" if lines else "")


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


def poll(check: Callable[[], bool], *, timeout_s: float, interval_s: float = 0.25) -> bool:
    """Call ``check`` until it is true (True) or ``timeout_s`` has passed (False)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


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
                f"{what} exited during start-up; {log_hint(log_file)}; "
                "fix what it reports, then run `chatstream infra up` again"
            )
        time.sleep(interval_s)
    raise ServiceStartError(
        f"{what} was not ready after {timeout_s:.0f}s; {log_hint(log_file)}; "
        "run `chatstream infra up` again (or raise CHATSTREAM_START_TIMEOUT_S on a slow machine)"
    )


def wait_gone(pids: Iterable[int], timeout_s: float) -> list[int]:
    """Wait up to ``timeout_s`` for ``pids`` to exit; returns those still alive."""
    alive = list(pids)
    deadline = time.monotonic() + timeout_s
    while alive:
        alive = [pid for pid in alive if pid_alive(pid)]
        if not alive or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    return alive


def stop_pid(pid: int, *, timeout_s: float, signum: signal.Signals = signal.SIGTERM) -> None:
    """Send ``signum`` (and SIGCONT, so a stopped process acts on it), SIGKILL after ``timeout_s``.

    Returns once the process is gone.
    """
    for sig in (signum, signal.SIGCONT):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
    if wait_gone([pid], timeout_s):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        wait_gone([pid], 30)


def stop_daemon(pid_file: Path, *, timeout_s: float = 30.0, expect: str | None = None) -> bool:
    """Stop the process of ``pid_file`` (``stop_pid``) and remove the file. False if none ran."""
    pid = read_pid(pid_file, expect)
    if pid is not None:
        stop_pid(pid, timeout_s=timeout_s)
    pid_file.unlink(missing_ok=True)
    return pid is not None
