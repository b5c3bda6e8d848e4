"""What every benchmark needs around its measurements: its own stack, the platform's processes,
and the CPU they spend.

A benchmark runs on a stack of its own (``<state>/bench-stack``, port base 24000) so a
developer's stack and data are never touched, and starts the platform's components as the
user does (``chatstream gateway``, ``chatstream job dispatch``), each a process of its own.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from chatstream.avro.catalog import Contract, load_catalog
from chatstream.avro.registry import ContractRegistry
from chatstream.readiness import wait_ready
from chatstream.settings import Settings
from infra.local import stack
from pipelines.topics import CHAT_ACTIONS

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def bench_settings(base: Settings) -> Settings:
    return base.model_copy(update={"state_dir": base.state_dir / "bench-stack", "port_base": 24000})


def bench_stack_up(base: Settings, say: Callable[[str], object]) -> tuple[Settings, Contract, int]:
    """The bench stack up, migrated, its topics made; ``chat.actions.v1``'s contract and the
    registry's id of its schema (registered if new)."""
    settings = bench_settings(base)
    say(f"bringing up the bench stack in {settings.state_dir}")
    stack.up(settings)
    cli(settings, "db", "migrate")
    cli(settings, "topics", "apply")
    contract = load_catalog()[CHAT_ACTIONS.name]
    with ContractRegistry(settings.schema_registry_url) as registry:
        return settings, contract, registry.register(contract).schema_id


def stack_env(settings: Settings, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a ``chatstream`` child working on ``settings``' stack."""
    return {**os.environ, "CHATSTREAM_STATE_DIR": str(settings.state_dir),
            "CHATSTREAM_PORT_BASE": str(settings.port_base), **(extra or {})}  # fmt: skip


def cli(settings: Settings, *args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run([sys.executable, "-m", "chatstream", *args], check=True, capture_output=True,
                   env=stack_env(settings, env))  # fmt: skip


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the gateway's workers)."""
    tree = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            tree += process_tree(int(child))
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU time ``pid`` has used so far (``/proc/<pid>/stat``)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores (``/proc/stat``)."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already in user
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


def settle_heap() -> None:
    """The benchmark's own data (events, requests: millions of objects) out of the garbage
    collector's way, so it does not slow the raw loop and the load generator of this process."""
    gc.collect()
    gc.freeze()


@contextmanager
def no_ctrl_c() -> Iterator[None]:
    """Ignore SIGINT while the benchmark stops what it started (each stop is bounded in time), so
    a second Ctrl-C cannot leave processes or the stack running."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class PlatformProcess:
    """One platform command (``chatstream <args>``) run by a benchmark: started in a session of
    its own (a terminal's Ctrl-C reaches the benchmark, which stops it), output to a log file
    (this run's only)."""

    def __init__(self, name: str, settings: Settings, args: list[str], env: dict[str, str], log_file: Path) -> None:
        self.name = name
        self.log_file = log_file
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "wb") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "chatstream", *args], env=stack_env(settings, env),
                                            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)  # fmt: skip

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, url: str, timeout_s: float = 90) -> None:
        """Until ``{url}/readyz`` answers 200; RuntimeError naming the log if it never does."""
        if not wait_ready(url, timeout_s=timeout_s, alive=self.alive):
            state = "exited" if not self.alive() else f"not ready after {timeout_s:.0f}s"
            raise RuntimeError(f"the bench's {self.name} {state}; see {self.log_file}")

    def cpu_s(self) -> float:
        """CPU seconds of the process and its children (a gateway's workers)."""
        return sum(cpu_seconds(pid) for pid in process_tree(self.pid))

    def stop(self, timeout_s: float = 30) -> None:
        """SIGTERM (the component flushes and exits), SIGKILL after ``timeout_s``."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
