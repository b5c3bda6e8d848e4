"""What ``chatstream infra status`` reports for each component."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    local: bool
    running: bool
    endpoint: str
    pid: int | None = None
    log_file: Path | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "local": self.local,
            "running": self.running,
            "endpoint": self.endpoint,
            "pid": self.pid,
            "log_file": str(self.log_file) if self.log_file else None,
            "detail": self.detail,
        }
