"""The platform's processes for integration tests: the real ``chatstream`` commands."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from chatstream.readiness import wait_ready
from chatstream.settings import Settings
from gateway.auth import issue_token, local_secret


def cli_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a ``chatstream`` process see ``settings``' stack."""
    env = {**os.environ, "CHATSTREAM_STATE_DIR": str(settings.state_dir), "CHATSTREAM_PORT_BASE": str(settings.port_base)}
    external = {
        "CHATSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "CHATSTREAM_REGISTRY_URL": settings.registry_url,
        "CHATSTREAM_POSTGRES_DSN": settings.postgres_dsn.get_secret_value() if settings.postgres_dsn else None,
        "CHATSTREAM_CLICKHOUSE_DSN": settings.clickhouse_dsn,
    }
    return env | {name: value for name, value in external.items() if value}


class Component:
    """One ``chatstream ...`` process with its own log file."""

    def __init__(self, settings: Settings, *args: str, env: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.args = args
        self.env = {**cli_env(settings), **(env or {})}
        self.log_file = settings.state_dir / "logs" / f"test-{'-'.join(args)}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log_start = 0

    def start(self) -> Component:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "chatstream", *self.args],
                stdout=log, stderr=subprocess.STDOUT, env=self.env,
            )  # fmt: skip
        return self

    def stop(self, timeout_s: float = 60) -> int:
        """SIGTERM, as an orchestrator would; returns the exit code (SIGKILL after the timeout)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_for_output(self, text: str, timeout_s: float = 60) -> Component:
        """Block until the process printed ``text`` (it is up and handles signals)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.running(), self.log_tail()
            if text in self.output():
                return self
            time.sleep(0.1)
        raise AssertionError(f"no {text!r} from chatstream {' '.join(self.args)}:\n{self.log_tail()}")

    def output(self) -> str:
        """Everything this run of the process printed."""
        with open(self.log_file, "rb") as log:
            log.seek(self._log_start)
            return log.read().decode(errors="replace")

    def log_tail(self) -> str:
        return "\n".join(Path(self.log_file).read_text(errors="replace").splitlines()[-30:])


def wait_gateway_ready(settings: Settings, gateway: Component, timeout_s: float = 60) -> None:
    assert wait_ready(settings.gateway_url, timeout_s=timeout_s, alive=gateway.running), gateway.log_tail()


def bearer(settings: Settings, tenant: str, user: str = "user-1", **kw: object) -> dict[str, str]:
    token = issue_token(local_secret(settings.state_dir), tenant=tenant, user=user,
                        audience=settings.jwt_audience, issuer=settings.jwt_issuer, **kw)  # type: ignore[arg-type]
    return {"Authorization": f"Bearer {token}"}
