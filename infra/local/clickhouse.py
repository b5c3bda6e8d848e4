"""ClickHouse for chatstream: chDB in-process by default, a local server or a configured one.

chDB is a library, not a server: "up" means its data folder exists; it locks that folder, so
one process at a time opens it. With ``CHATSTREAM_CLICKHOUSE_SERVER`` the same folder is served
over ClickHouse's HTTP interface by a process of its own (``chdb_server.py``), so the sinks, ad
hoc queries and dashboards share it. A configured server (``CHATSTREAM_CLICKHOUSE_DSN``) is
only pinged.
"""

from __future__ import annotations

import fcntl
import os
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from chatstream.settings import Settings, redact_url
from infra.local.errors import ChdbBusyError
from infra.local.process import command_line, read_pid, start_daemon, stop_daemon, wait_until
from infra.local.status import ServiceStatus

SERVER_CONFIG = """<clickhouse>
    <listen_host>127.0.0.1</listen_host>
    <http_port>{port}</http_port>
</clickhouse>
"""


class ClickHouse:
    name = "clickhouse"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.path = settings.state_dir / "clickhouse"
        self.home = settings.state_dir / "clickhouse-server"  # the server's config, pid and log
        self.log_file = self.home / "clickhouse-server.log"
        self.pid_file = self.home / "clickhouse-server.pid"

    @property
    def serves(self) -> bool:
        """Whether this machine runs the ClickHouse server (not chDB in-process, not external)."""
        return self.settings.is_local("clickhouse") and self.settings.clickhouse_server

    def fetch(self) -> None:
        """Nothing to download: chDB is a Python dependency."""

    def start(self) -> None:
        if not self.settings.is_local("clickhouse"):
            return
        self.path.mkdir(parents=True, exist_ok=True)
        if self.serves and not self.running():
            self.home.mkdir(parents=True, exist_ok=True)
            (self.home / "config.xml").write_text(SERVER_CONFIG.format(port=self.settings.clickhouse_port))
            argv = [sys.executable, str(Path(__file__).with_name("chdb_server.py")), str(self.path)]
            pid = start_daemon(argv, log_file=self.log_file, pid_file=self.pid_file, cwd=self.home)
            wait_until(lambda: server_ping(self.settings.clickhouse_url), what="ClickHouse server (chDB)",
                       timeout_s=self.settings.start_timeout_s, log_file=self.log_file, pid=pid)  # fmt: skip

    def stop(self) -> bool:
        return stop_daemon(self.pid_file, timeout_s=30, expect=str(self.path))

    def running(self) -> bool:
        """The server process is alive (server mode); the data folder exists (embedded chDB)."""
        if self.serves:
            return read_pid(self.pid_file, expect=str(self.path)) is not None
        if self.settings.is_local("clickhouse"):
            return self.path.is_dir()
        return server_ping(self.settings.clickhouse_url)

    def healthy(self) -> bool:
        """The server answers ``/ping``; embedded chDB has nothing to answer."""
        if self.serves or not self.settings.is_local("clickhouse"):
            return server_ping(self.settings.clickhouse_url)
        return True

    def status(self) -> ServiceStatus:
        local = self.settings.is_local("clickhouse")
        if self.serves:
            detail = "ClickHouse server (chDB's engine)"
        else:
            detail = "embedded chDB (in-process)" if local else "ClickHouse server"
        return ServiceStatus(
            name=self.name,
            local=local,
            running=self.running() and (not self.serves or self.healthy()),
            endpoint=redact_url(self.settings.clickhouse_url),
            pid=read_pid(self.pid_file, expect=str(self.path)) if self.serves else None,
            log_file=self.log_file if self.serves else None,
            detail=detail,
        )


def server_ping(dsn: str) -> bool:
    """A ClickHouse server answers ``/ping`` on its HTTP interface."""
    parts = urlsplit(dsn)
    scheme = "https" if parts.scheme in ("https", "clickhouses") else "http"
    try:
        answer = httpx.get(f"{scheme}://{parts.hostname}:{parts.port or 8123}/ping", timeout=2)
    except httpx.HTTPError:
        return False
    return answer.status_code == 200


def status_file_pid(text: str) -> int | None:
    """The pid in the ``status`` file ClickHouse (and so chDB) writes into its data folder."""
    match = re.search(r"^PID: (\d+)$", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def chdb_holder(path: Path) -> str | None:
    """Who has the chDB folder ``path`` open, when another process does (else None).

    ClickHouse's server code, which chDB embeds, holds an exclusive ``flock`` on
    ``<path>/status`` for as long as the engine is open and writes its pid into that file; a
    second process that opens the folder fails with an unhelpful "Error initializing
    EmbeddedServer". Probing the lock (and letting go at once) names the holder instead.
    """
    try:
        fd = os.open(path / "status", os.O_RDONLY)
    except OSError:
        return None  # never opened (or gone): nobody holds it
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = status_file_pid(os.read(fd, 4096).decode(errors="replace"))
            if pid is None:
                return "another process"
            command = " ".join((command_line(pid) or "").split())
            return f"pid {pid}" + (f": {command[:120]}" if command else "")
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def require_chdb_free(settings: Settings) -> None:
    """Raise ``ChdbBusyError`` (one line: who, and what to do) when ``settings`` open embedded
    chDB and another process has its folder open; a no-op for a ClickHouse server."""
    if not settings.clickhouse_url.startswith("chdb://"):
        return
    path = Path(settings.clickhouse_url.removeprefix("chdb://"))
    holder = chdb_holder(path)
    if holder is not None:
        raise ChdbBusyError(
            f"the embedded ClickHouse (chDB) in {path} is open in another process ({holder}); "
            "chDB lets one process at a time open it: stop that process (`chatstream run` or its "
            "ClickHouse sink) and try again, or run everything with CHATSTREAM_CLICKHOUSE_SERVER=1 "
            "so `chatstream infra up` serves it to every process"
        )
