"""A stack that survives its parts: PostgreSQL restarted under the registry, services that died
or stopped answering repaired by ``infra up``, a PostgreSQL that ignores its stop request
stopped anyway.

Each test breaks a service of the session's stack and leaves it healthy again (``repaired``
runs ``infra up``'s code at the end, whatever happened).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from chatstream.avro.catalog import load_catalog
from chatstream.settings import Settings
from infra.local import stack
from infra.local.postgres import LocalPostgres
from infra.local.process import pid_alive, read_pid, wait_gone
from infra.local.registry import LocalRegistry
from tests.integration.conftest import chatstream


@pytest.fixture
def repaired(running_stack: Settings) -> Iterator[Settings]:
    """The stack, brought back to health by ``infra up``'s code after the test."""
    try:
        yield running_stack
    finally:
        for pid_file in (LocalPostgres(running_stack).pid_file, LocalRegistry(running_stack).pid_file):
            pid = read_pid(pid_file)
            if pid is not None:
                os.kill(pid, signal.SIGCONT)  # a test that stopped a process and then failed
        stack.up(running_stack)


def postmaster_pid(settings: Settings) -> int:
    pid = read_pid(LocalPostgres(settings).pid_file)
    assert pid is not None
    return pid


def registry_pid(settings: Settings) -> int:
    pid = read_pid(LocalRegistry(settings).pid_file)
    assert pid is not None
    return pid


def lookup_statuses(settings: Settings, count: int) -> list[int]:
    """Statuses of ``count`` schema lookups, each a read of the registry's database."""
    subjects = [c.subject for c in load_catalog().values()]
    with httpx.Client(base_url=settings.schema_registry_url, timeout=30) as http:
        return [
            http.get(f"/subjects/{subjects[i % len(subjects)]}/versions/latest").status_code
            for i in range(count)
        ]


def register_status(settings: Settings, subject: str) -> int:
    schema = {"type": "record", "name": "Probe", "fields": [{"name": "a", "type": "string"}]}
    answer = httpx.post(
        f"{settings.schema_registry_url}/subjects/{subject}/versions",
        json={"schema": json.dumps(schema)},
        timeout=30,
    )
    return answer.status_code


def accepts_connections(settings: Settings) -> bool:
    try:
        with psycopg.connect(settings.postgres_url(), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


def test_the_registry_answers_as_soon_as_postgres_is_back_without_a_restart(
    repaired: Settings, unique: str
) -> None:
    settings = repaired
    registry_before = registry_pid(settings)
    assert lookup_statuses(settings, 5) == [200] * 5  # the pool holds live connections
    postmaster = postmaster_pid(settings)

    os.kill(postmaster, signal.SIGINT)  # a fast shutdown, what `pg_ctl stop -m fast` sends
    assert wait_gone([postmaster], 30) == []
    LocalPostgres(settings).start()  # infra up's code
    back_at = time.monotonic()

    # More lookups than the pool keeps connections (20): every one the old server closed would
    # have failed a request with a 500.
    statuses = lookup_statuses(settings, 30)
    statuses.append(register_status(settings, f"test-recovery-{unique}-value"))
    assert statuses == [200] * 31, statuses
    assert time.monotonic() - back_at < 15
    assert registry_pid(settings) == registry_before, "the registry was restarted"


def test_infra_up_restarts_a_postgres_stuck_in_a_smart_shutdown(repaired: Settings) -> None:
    settings = repaired
    postmaster = postmaster_pid(settings)
    client = psycopg.connect(settings.postgres_url())
    try:
        os.kill(postmaster, signal.SIGTERM)  # smart shutdown: waits for every client, forever
        time.sleep(0.5)
        assert not accepts_connections(settings)
        assert pid_alive(postmaster)

        done = chatstream(settings, "infra", "up", "--json", check=False)
    finally:
        client.close()

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    assert set(report["restarted"]) == {"postgres"}, report["restarted"]
    assert "did not answer" in report["restarted"]["postgres"]
    assert all(s["running"] for s in report["services"].values()), report["services"]
    assert not pid_alive(postmaster)
    assert accepts_connections(settings)
    assert lookup_statuses(settings, 3) == [200] * 3


def test_infra_up_restarts_a_registry_that_stopped_answering(repaired: Settings) -> None:
    settings = repaired
    hung = registry_pid(settings)
    os.kill(hung, signal.SIGSTOP)  # alive, holding its port, answering nothing
    try:
        done = chatstream(settings, "infra", "up", "--json", check=False)
    finally:
        if pid_alive(hung):
            os.kill(hung, signal.SIGCONT)

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report["restarted"]) == {"registry"}, report["restarted"]
    assert not pid_alive(hung)
    assert report["services"]["registry"]["pid"] not in (None, hung)
    assert lookup_statuses(settings, 3) == [200] * 3


def test_infra_up_starts_a_registry_whose_pid_file_names_another_process(repaired: Settings) -> None:
    settings = repaired
    registry = LocalRegistry(settings)
    dead = registry_pid(settings)
    os.kill(dead, signal.SIGKILL)
    assert wait_gone([dead], 30) == []
    # The pid file outlived its process and the system gave the pid to another program.
    stranger = subprocess.Popen(["sleep", "300"])
    try:
        registry.pid_file.write_text(f"{stranger.pid}\n")
        done = chatstream(settings, "infra", "up", "--json", check=False)
        assert stranger.poll() is None, "infra up signalled a process that is not the registry"
    finally:
        stranger.kill()
        stranger.wait()

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["restarted"] == {"registry": "its process had died"}
    assert report["services"]["registry"]["pid"] not in (None, stranger.pid)
    assert lookup_statuses(settings, 3) == [200] * 3


def test_postgres_stops_in_bounded_time_even_when_it_ignores_the_request(repaired: Settings) -> None:
    settings = repaired
    postgres = LocalPostgres(settings)
    hung = postmaster_pid(settings)
    os.kill(hung, signal.SIGSTOP)  # the fast shutdown's SIGINT will never be handled
    try:
        started = time.monotonic()
        assert postgres.stop()
        took_s = time.monotonic() - started
    finally:
        if pid_alive(hung):
            os.kill(hung, signal.SIGCONT)
    assert not pid_alive(hung)
    assert took_s < 25, f"stop took {took_s:.1f}s"

    postgres.start()  # after an unclean stop: recovery from the WAL
    assert accepts_connections(settings)
    assert lookup_statuses(settings, 25) == [200] * 25
