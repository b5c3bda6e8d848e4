"""``chatstream run``: the gateway and the sinks as child processes of one command.

Each component is its own process (``chatstream gateway``, ``chatstream sink clickhouse``,
``chatstream sink postgres``), as in production, so a Python process's GIL never couples them.
SIGINT/SIGTERM is passed to every child, which stops accepting, flushes and commits, and exits;
the supervisor exits 0 when all did. A child that dies on its own stops the others (exit 1).
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
}


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_file: Path


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
        self._failed = False

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in self.components:
            log_file = self.log_dir / f"{name}.log"
            with open(log_file, "ab") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "chatstream", *COMPONENTS[name]],
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
                    start_new_session=True,  # a terminal's Ctrl-C reaches us only; we pass it on once
                )  # fmt: skip
            self.children.append(Child(name, process, log_file))

    def stop(self, *_: object) -> None:
        self._stopping = True
        for child in self.children:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)

    def wait(self, grace_s: float = 60.0) -> int:
        """Block until every child exits; 0 when all exited cleanly after a stop."""
        while not self._stopping:
            dead = [c for c in self.children if c.process.poll() is not None]
            if dead:
                self._failed = True
                for child in dead:
                    log.error("%s exited with %s; see %s", child.name, child.process.returncode, child.log_file)
                self.stop()
                break
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
        clean = all(c.process.returncode == 0 for c in self.children)
        return 0 if clean and not self._failed else 1

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
