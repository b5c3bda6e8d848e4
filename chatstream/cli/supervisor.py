"""``chatstream run``: the gateway and the sinks as child processes of one command.

Each component is its own process (``chatstream gateway``, ``chatstream sink clickhouse``,
``chatstream sink postgres``), as in production, so a Python process's GIL never couples them.
SIGINT/SIGTERM is passed to every child, which stops accepting, flushes and commits, and exits;
the supervisor exits 0 when all did. A child that dies on its own is started again after a
back-off (1 s, doubling to 30 s; back to 1 s once it has run for a minute) while the others keep
serving.
While they run, each child's ``/readyz`` is polled and every change is printed (a sink that
stopped making progress says why).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from chatstream.readiness import probe

log = logging.getLogger(__name__)

COMPONENTS: dict[str, list[str]] = {
    "gateway": ["gateway"],
    "sink-clickhouse": ["sink", "clickhouse"],
    "sink-postgres": ["sink", "postgres"],
    "dispatch": ["job", "dispatch"],
    "engagement": ["job", "engagement"],
    "anomaly": ["job", "anomaly"],
    "scaling": ["job", "scaling"],
}


RESTART_FIRST_S = 1.0
RESTART_MAX_S = 30.0
STABLE_AFTER_S = 60.0


def restart_delay(crashes: int) -> float:
    """Seconds before the restart after ``crashes`` crashes in a row (1 s, 2 s, 4 s ... 30 s)."""
    return min(RESTART_MAX_S, RESTART_FIRST_S * 2 ** max(0, crashes - 1))


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_file: Path
    started_at: float = 0.0
    crashes: int = 0  # in a row
    restart_at: float | None = None


class Supervisor:
    def __init__(self, components: Sequence[str], *, log_dir: Path, env: Mapping[str, str],
                 readiness: Mapping[str, str] | None = None) -> None:  # fmt: skip
        self.components = list(components)
        self.readiness = dict(readiness or {})  # component -> its /readyz URL
        self._ready: dict[str, bool] = {}
        self.log_dir = log_dir
        self.env = dict(env)
        self.children: list[Child] = []
        self._stopping = False

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in self.components:
            log_file = self.log_dir / f"{name}.log"
            self.children.append(Child(name, self._spawn(name, log_file), log_file, time.monotonic()))

    def _spawn(self, name: str, log_file: Path) -> subprocess.Popen[bytes]:
        with open(log_file, "ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "chatstream", *COMPONENTS[name]],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
                start_new_session=True,  # a terminal's Ctrl-C reaches us only; we pass it on once
            )  # fmt: skip

    def _restart_crashed(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.process.poll() is None:
                if child.crashes and now - child.started_at >= STABLE_AFTER_S:
                    child.crashes = 0
                continue
            if child.restart_at is None:
                child.crashes += 1
                delay = restart_delay(child.crashes)
                child.restart_at = now + delay
                self._ready.pop(child.name, None)
                print(f"{child.name}: exited with status {child.process.returncode}; restarting in {delay:g}s "
                      f"(log: {child.log_file})", flush=True)  # fmt: skip
            elif now >= child.restart_at:
                child.process = self._spawn(child.name, child.log_file)
                child.started_at, child.restart_at = now, None
                print(f"{child.name}: restarted", flush=True)

    def stop(self, *_: object) -> None:
        self._stopping = True
        for child in self.children:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)

    def wait(self, grace_s: float = 60.0) -> int:
        """Block until every child exits; 0 when all exited cleanly after a stop."""
        while not self._stopping:
            self._restart_crashed()
            self._watch_readiness()
            time.sleep(0.2)
        deadline = time.monotonic() + grace_s
        for child in self.children:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("%s did not stop within %.0fs; killing it", child.name, grace_s)
                child.process.kill()
                child.process.wait()
        # a child waiting for its restart when the stop came had crashed: not a clean stop
        clean = all(c.process.returncode == 0 and c.restart_at is None for c in self.children)
        return 0 if clean else 1

    def _watch_readiness(self, every_s: float = 2.0) -> None:
        now = time.monotonic()
        if now - getattr(self, "_last_watch", 0.0) < every_s:
            return
        self._last_watch = now
        for name, url in self.readiness.items():
            ready, reason = probe(url)
            if ready is None:
                continue  # not listening yet, or going away: the exit check speaks for it
            if self._ready.get(name) != ready:
                print(f"{name}: ready" if ready else f"{name}: NOT READY: {reason}", flush=True)
                self._ready[name] = ready

    def running(self) -> bool:
        return all(c.process.poll() is None for c in self.children)


def run_platform(components: Sequence[str], *, log_dir: Path, env: Mapping[str, str] | None = None,
                 readiness: Mapping[str, str] | None = None) -> int:  # fmt: skip
    supervisor = Supervisor(components, log_dir=log_dir, env=env if env is not None else os.environ, readiness=readiness)
    signal.signal(signal.SIGINT, supervisor.stop)
    signal.signal(signal.SIGTERM, supervisor.stop)
    supervisor.start()
    return supervisor.wait()
