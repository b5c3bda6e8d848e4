"""ClickHouse for chatstream: chDB in-process by default, a ClickHouse server when configured.

chDB is a library, not a server: "up" means its data folder exists; it locks that folder, so
one process at a time opens it. A configured server is only pinged.
"""

from __future__ import annotations

import httpx

from chatstream.settings import Settings, redact_url
from infra.local.status import ServiceStatus


class ClickHouse:
    name = "clickhouse"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.path = settings.state_dir / "clickhouse"

    def fetch(self) -> None:
        """Nothing to download: the server binaries come from the machine."""

    def start(self) -> None:
        if self.settings.is_local("clickhouse"):
            self.path.mkdir(parents=True, exist_ok=True)

    def stop(self) -> bool:
        return False

    def running(self) -> bool:
        if self.settings.is_local("clickhouse"):
            return self.path.is_dir()
        return server_ping(self.settings.clickhouse_url)

    def status(self) -> ServiceStatus:
        local = self.settings.is_local("clickhouse")
        return ServiceStatus(
            name=self.name,
            local=local,
            running=self.running(),
            endpoint=redact_url(self.settings.clickhouse_url),
            detail="embedded chDB (in-process)" if local else "ClickHouse server",
        )


def server_ping(dsn: str) -> bool:
    """A ClickHouse server answers ``/ping`` on its HTTP interface."""
    from urllib.parse import urlsplit

    parts = urlsplit(dsn)
    scheme = "https" if parts.scheme in ("https", "clickhouses") else "http"
    try:
        answer = httpx.get(f"{scheme}://{parts.hostname}:{parts.port or 8123}/ping", timeout=2)
    except httpx.HTTPError:
        return False
    return answer.status_code == 200
