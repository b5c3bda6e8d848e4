"""ClickHouse for chatstream: chDB's engine served locally, or a configured server.

chDB is ClickHouse's engine as a library, and it locks its data folder: one process at a time
may open it. So the local stack gives the folder one owner, a process of its own
(``chdb_server.py``) that serves ClickHouse's own HTTP interface on port base + 123, and every
other process (the sinks writing, the analytics API, ``chatstream query``, Grafana) is a client
of it over HTTP, exactly as with a ClickHouse server. A configured server
(``CHATSTREAM_CLICKHOUSE_DSN``) is only pinged: the same client code, no change.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from chatstream.settings import Settings, redact_url
from infra.local.process import read_pid, start_daemon, stop_daemon, wait_until
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
        """Whether this machine serves ClickHouse (chDB's engine) rather than an external server."""
        return self.settings.is_local("clickhouse")

    def fetch(self) -> None:
        """Nothing to download: chDB is a Python dependency."""

    def start(self) -> None:
        if not self.serves:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        if not self.running():
            self.home.mkdir(parents=True, exist_ok=True)
            (self.home / "config.xml").write_text(SERVER_CONFIG.format(port=self.settings.clickhouse_port))
            argv = [sys.executable, str(Path(__file__).with_name("chdb_server.py")), str(self.path)]
            pid = start_daemon(argv, log_file=self.log_file, pid_file=self.pid_file, cwd=self.home)
            wait_until(lambda: server_ping(self.settings.clickhouse_url), what="ClickHouse server (chDB)",
                       timeout_s=self.settings.start_timeout_s, log_file=self.log_file, pid=pid)  # fmt: skip

    def stop(self) -> bool:
        return stop_daemon(self.pid_file, timeout_s=30, expect=str(self.path))

    def running(self) -> bool:
        """The local server process is alive; an external server answers ``/ping``."""
        if self.serves:
            return read_pid(self.pid_file, expect=str(self.path)) is not None
        return server_ping(self.settings.clickhouse_url)

    def healthy(self) -> bool:
        """The server answers ``/ping``."""
        return server_ping(self.settings.clickhouse_url)

    def status(self) -> ServiceStatus:
        local = self.serves
        return ServiceStatus(
            name=self.name,
            local=local,
            running=self.running() and (not self.serves or self.healthy()),
            endpoint=redact_url(self.settings.clickhouse_url),
            pid=read_pid(self.pid_file, expect=str(self.path)) if self.serves else None,
            log_file=self.log_file if self.serves else None,
            detail="chDB's engine, serving ClickHouse's HTTP interface" if local else "ClickHouse server",
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
