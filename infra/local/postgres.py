"""A project-local PostgreSQL cluster from the machine's own server binaries.

The server refuses to run as root, so when we are root the cluster belongs to the unprivileged
``postgres`` user (created by Debian's packages) and every server command runs as that user.
"""

from __future__ import annotations

import logging
import math
import os
import pwd
import signal
import stat
import subprocess
from pathlib import Path

import psycopg

from chatstream.settings import Settings
from infra.local.errors import PrerequisiteError, ServiceStartError
from infra.local.prereqs import postgres_bindir
from infra.local.process import child_pids, log_hint, pid_alive, port_open, read_pid, stop_pid, wait_gone
from infra.local.status import ServiceStatus

logger = logging.getLogger(__name__)

DATABASES = ("chatstream", "apicurio")

# A fast shutdown (clients disconnected, then a checkpoint) that takes longer than this is cut
# short by an immediate one (SIGQUIT: recovery from the WAL at the next start), then SIGKILL.
FAST_STOP_TIMEOUT_S = 10.0
IMMEDIATE_STOP_TIMEOUT_S = 3.0


class LocalPostgres:
    """The cluster in ``<state>/postgres``: ``initdb`` once, then ``pg_ctl`` start and stop."""

    name = "postgres"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.state_dir / "postgres"
        self.data = self.home / "data"
        self.log_file = self.home / "postgres.log"
        self.pid_file = self.data / "postmaster.pid"

    # -- who runs the server -------------------------------------------------------------------
    def _owner(self) -> pwd.struct_passwd | None:
        """The account the server runs as: ``postgres`` when we are root, else ourselves."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam("postgres")
        except KeyError as exc:
            raise PrerequisiteError(
                "PostgreSQL cannot run as root and there is no 'postgres' user: "
                "install Debian's postgresql package or run chatstream as another user"
            ) from exc

    def _run(self, argv: list[str], owner: pwd.struct_passwd | None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            check=False,
            user=owner.pw_uid if owner else None,
            group=owner.pw_gid if owner else None,
            cwd=self.home,
        )

    def _check_reachable(self, owner: pwd.struct_passwd) -> None:
        """Every parent folder of the state directory must let ``postgres`` pass through."""
        for folder in [self.home, *self.home.parents]:
            mode = folder.stat()
            if mode.st_uid == owner.pw_uid:
                continue
            if not mode.st_mode & stat.S_IXOTH:
                raise PrerequisiteError(
                    f"PostgreSQL runs as user 'postgres', which cannot enter {folder}: "
                    f"chmod o+x {folder}, or set CHATSTREAM_STATE_DIR to a path it can reach"
                )

    # -- lifecycle ------------------------------------------------------------------------------
    def fetch(self) -> None:
        """Nothing to download: the server binaries come from the machine."""

    def start(self) -> None:
        bindir = postgres_bindir()
        owner = self._owner()
        self.home.mkdir(parents=True, exist_ok=True)
        if owner is not None:
            self._check_reachable(owner)
            os.chown(self.home, owner.pw_uid, owner.pw_gid)
        if not (self.data / "PG_VERSION").exists():
            self._initdb(bindir, owner)
        if not self.running():
            done = self._run(
                [
                    str(bindir / "pg_ctl"),
                    "-D", str(self.data),
                    "-l", str(self.log_file),
                    "-w", "-t", str(int(self.settings.start_timeout_s)),
                    "-o", f"-p {self.settings.postgres_port} -k {self.home} "
                    "-c listen_addresses=127.0.0.1",
                    "start",
                ],
                owner,
            )  # fmt: skip
            if done.returncode != 0:
                said = " ".join((done.stderr.strip() or done.stdout.strip()).split())
                raise ServiceStartError(
                    f"PostgreSQL did not start ({said}); {log_hint(self.log_file)}; "
                    "fix what it reports, then run `chatstream infra up` again"
                )
        self._ensure_databases()

    def _initdb(self, bindir: Path, owner: pwd.struct_passwd | None) -> None:
        pwfile = self.home / "initdb.pw"
        pwfile.write_text(self.settings.postgres_password.get_secret_value() + "\n")
        if owner is not None:
            os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        try:
            done = self._run(
                [
                    str(bindir / "initdb"),
                    "-D", str(self.data),
                    "-U", "chatstream",
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "-E", "UTF8",
                    "--locale=C",
                ],
                owner,
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            said = " ".join(done.stderr.strip()[-400:].split())
            raise ServiceStartError(f"PostgreSQL's initdb failed in {self.data}: {said}")

    def _ensure_databases(self) -> None:
        try:
            with psycopg.connect(self.settings.postgres_url("postgres"), autocommit=True, connect_timeout=10) as conn:
                existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
                for name in DATABASES:
                    if name not in existing:
                        conn.execute(f'CREATE DATABASE "{name}"')
        except psycopg.Error as exc:
            said = " ".join(str(exc).split())
            raise ServiceStartError(
                f"PostgreSQL started but chatstream could not create its databases there ({said}); "
                f"{log_hint(self.log_file)}; run `chatstream infra up` again, "
                "or `chatstream infra down` first if it persists"
            ) from exc

    def stop(self, timeout_s: float = FAST_STOP_TIMEOUT_S) -> bool:
        """Fast shutdown (connected clients are disconnected, not waited for), bounded: after
        ``timeout_s`` an immediate shutdown, then SIGKILL of the server and its children."""
        pid = self._pid()
        if pid is None:
            return False
        children = child_pids(pid)
        done = self._run(
            [str(postgres_bindir() / "pg_ctl"), "-D", str(self.data), "-m", "fast",
             "-w", "-t", str(math.ceil(timeout_s)), "stop"],
            self._owner(),
        )  # fmt: skip
        if done.returncode != 0 and pid_alive(pid):
            logger.warning("PostgreSQL (pid %d) did not stop within %.0fs; stopping it immediately", pid, timeout_s)
            stop_pid(pid, signum=signal.SIGQUIT, timeout_s=IMMEDIATE_STOP_TIMEOUT_S)
            # Children left by a killed server keep its shared memory, which a new server refuses.
            for child in wait_gone(children, IMMEDIATE_STOP_TIMEOUT_S):
                stop_pid(child, signum=signal.SIGKILL, timeout_s=IMMEDIATE_STOP_TIMEOUT_S)
        return True

    def _pid(self) -> int | None:
        return read_pid(self.pid_file, expect=str(self.data))

    def running(self) -> bool:
        return self._pid() is not None

    def healthy(self) -> bool:
        """The server accepts a connection and answers a query now."""
        try:
            with psycopg.connect(self.settings.postgres_url("postgres"), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def status(self) -> ServiceStatus:
        pid = self._pid()
        return ServiceStatus(
            name=self.name,
            local=True,
            running=pid is not None and port_open(self.settings.postgres_port),
            pid=pid,
            endpoint=self.settings.redacted_postgres_url(),
            log_file=self.log_file,
        )
