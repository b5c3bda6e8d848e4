"""A standalone Flink session cluster (one JobManager, one TaskManager) from the distribution that
the apache-flink package ships (``pyflink/bin``), run in the foreground as the test's children."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import yaml


def flink_home() -> Path:
    import pyflink

    return Path(pyflink.__file__).parent


class SessionCluster:
    """``start()`` returns once a TaskManager has registered; ``stop()`` SIGTERMs both (SIGKILL after 30 s)."""

    def __init__(self, home: Path, rest_port: int, rpc_port: int) -> None:
        self.home = home
        self.rest_port, self.rpc_port = rest_port, rpc_port
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def rest(self) -> str:
        return f"127.0.0.1:{self.rest_port}"

    def _conf(self) -> Path:
        conf = self.home / "conf"
        shutil.rmtree(conf, ignore_errors=True)
        shutil.copytree(flink_home() / "conf", conf)
        config = yaml.safe_load((conf / "config.yaml").read_text())
        config["jobmanager"]["rpc"].update(address="localhost", port=self.rpc_port)
        config["jobmanager"]["memory"]["process"]["size"] = "768m"
        config["taskmanager"]["memory"]["process"]["size"] = "1280m"
        config["taskmanager"]["numberOfTaskSlots"] = 2
        config["rest"].update({"address": "localhost", "bind-address": "localhost", "port": self.rest_port})
        (conf / "config.yaml").write_text(yaml.safe_dump(config))
        return conf

    def start(self, timeout_s: float = 120) -> SessionCluster:
        env = {**os.environ, "FLINK_CONF_DIR": str(self._conf()), "FLINK_LOG_DIR": str(self.home / "log")}
        (self.home / "log").mkdir(parents=True, exist_ok=True)
        for script in ("jobmanager.sh", "taskmanager.sh"):
            with open(self.home / "log" / f"{script}.out", "ab") as out:
                self.processes.append(subprocess.Popen(
                    ["bash", str(flink_home() / "bin" / script), "start-foreground"],
                    stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True))  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://{self.rest}/overview", timeout=2).json().get("taskmanagers", 0) >= 1:
                    return self
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(1)
        raise AssertionError(f"the session cluster did not come up in {timeout_s:.0f} s; see {self.home / 'log'}")

    def jobs(self) -> list[dict[str, str]]:
        return list(httpx.get(f"http://{self.rest}/jobs/overview", timeout=5).json()["jobs"])

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
