"""A project-local PostgreSQL cluster from the machine's own server binaries.

The server refuses to run as root, so when we are root the cluster belongs to the unprivileged
``postgres`` user (created by Debian's packages) and every server command runs as that user.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from pathlib import Path

import psycopg

from chatstream.settings import Settings
from infra.local.errors import PrerequisiteError, ServiceStartError
from infra.local.prereqs import postgres_bindir
from infra.local.process import port_open, read_pid, tail
from infra.local.status import ServiceStatus

DATABASES = ("chatstream", "apicurio")


class LocalPostgres:
    """The cluster in ``<state>/postgres``: ``initdb`` once, then ``pg_ctl`` start and stop."""

    name = "postgres"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.state_dir / "postgres"
        self.data = self.home / "data"
        self.log_file = self.home / "postgres.log"

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
                raise ServiceStartError(
                    f"PostgreSQL did not start ({done.stderr.strip() or done.stdout.strip()}); "
                    f"see {self.log_file}:\n{tail(self.log_file)}"
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
            raise ServiceStartError(f"initdb failed: {done.stderr.strip()[-400:]}")

    def _ensure_databases(self) -> None:
        with psycopg.connect(self.settings.postgres_url("postgres"), autocommit=True) as conn:
            existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
            for name in DATABASES:
                if name not in existing:
                    conn.execute(f'CREATE DATABASE "{name}"')

    def stop(self) -> bool:
        if not self.running():
            return False
        owner = self._owner()
        done = self._run(
            [str(postgres_bindir() / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
            owner,
        )
        return done.returncode == 0

    def running(self) -> bool:
        return read_pid(self.data / "postmaster.pid") is not None

    def status(self) -> ServiceStatus:
        pid = read_pid(self.data / "postmaster.pid")
        return ServiceStatus(
            name=self.name,
            local=True,
            running=pid is not None and port_open(self.settings.postgres_port),
            pid=pid,
            endpoint=self.settings.redacted_postgres_url(),
            log_file=self.log_file,
        )
