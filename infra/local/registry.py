"""Apicurio Registry 3.x from its Maven Central archive, storing schemas in PostgreSQL.

It serves the Confluent schema registry API at ``/apis/ccompat/v7``; global rules VALIDITY=FULL
and COMPATIBILITY=BACKWARD_TRANSITIVE are set through its v3 admin API at every start.

Apicurio 3.0 reaches PostgreSQL through Quarkus' named datasource ``postgresql`` (an Agroal
pool). Agroal hands out pooled connections without checking them, so after PostgreSQL restarts
each connection the old server closed fails one request with a 500. ``POOL_PROPERTIES`` make
the pool validate a connection as it is borrowed (and idle ones in the background), so the
registry answers again as soon as its database does, without a restart.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import httpx

from chatstream.settings import Settings
from infra.local import maven
from infra.local.errors import ServiceStartError
from infra.local.prereqs import require_java, require_maven
from infra.local.process import port_open, read_pid, start_daemon, stop_daemon, wait_until
from infra.local.status import ServiceStatus

GLOBAL_RULES = {"VALIDITY": "FULL", "COMPATIBILITY": "BACKWARD_TRANSITIVE"}

POOL_PROPERTIES = {
    "quarkus.datasource.postgresql.jdbc.validate-on-borrow": "true",
    "quarkus.datasource.postgresql.jdbc.background-validation-interval": "30S",
}


def jdbc_settings(postgres_url: str) -> dict[str, str]:
    """Apicurio's datasource environment for a ``postgresql://`` URL."""
    parts = urlsplit(postgres_url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 5432
    return {
        "APICURIO_DATASOURCE_URL": f"jdbc:postgresql://{host}:{port}{parts.path}",
        "APICURIO_DATASOURCE_USERNAME": parts.username or "",
        "APICURIO_DATASOURCE_PASSWORD": parts.password or "",
    }


def jvm_options(heap_mb: int, properties: dict[str, str] = POOL_PROPERTIES) -> list[str]:
    """The JVM's options: its heap, and system properties (which override Apicurio's own
    ``application.properties``, unambiguously for a named datasource unlike environment names)."""
    return [f"-Xmx{heap_mb}m", *(f"-D{key}={value}" for key, value in properties.items())]


def ensure_global_rules(admin_url: str, rules: dict[str, str] = GLOBAL_RULES) -> None:
    """Create or correct each global rule (idempotent)."""
    with httpx.Client(base_url=admin_url, timeout=10) as http:
        existing = set(http.get("/admin/rules").raise_for_status().json())
        for rule, config in rules.items():
            body = {"ruleType": rule, "config": config}
            if rule in existing:
                current = http.get(f"/admin/rules/{rule}").raise_for_status().json()
                if current.get("config") != config:
                    http.put(f"/admin/rules/{rule}", json=body).raise_for_status()
            else:
                http.post("/admin/rules", json=body).raise_for_status()


class LocalRegistry:
    """Apicurio in ``<state>/registry``, its storage the ``apicurio`` database."""

    name = "registry"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.state_dir / "registry"
        self.dist = self.home / f"apicurio-{settings.apicurio_version}"
        self.log_file = self.home / "registry.log"
        self.pid_file = self.home / "registry.pid"

    @property
    def runner(self) -> Path:
        return self.dist / f"apicurio-registry-app-{self.settings.apicurio_version}-runner.jar"

    def fetch(self) -> None:
        if not self.runner.exists():
            coordinates = f"io.apicurio:apicurio-registry-app:{self.settings.apicurio_version}:tar.gz:all"
            maven.unpack(require_maven(self.settings.maven), coordinates, self.dist)
            if not self.runner.exists():
                raise ServiceStartError(f"the Apicurio archive has no {self.runner}")

    def start(self) -> None:
        if not self.running():
            self.fetch()
            env = {
                "APICURIO_STORAGE_KIND": "sql",
                "APICURIO_STORAGE_SQL_KIND": "postgresql",
                **jdbc_settings(self.settings.postgres_url("apicurio")),
                "QUARKUS_HTTP_HOST": "127.0.0.1",
                "QUARKUS_HTTP_PORT": str(self.settings.registry_port),
                "QUARKUS_LOG_CONSOLE_COLOR": "false",
            }
            argv = [require_java(self.settings.java), *jvm_options(self.settings.jvm_heap_mb), "-jar", str(self.runner)]
            pid = start_daemon(argv, log_file=self.log_file, pid_file=self.pid_file, extra_env=env, cwd=self.home)
            wait_until(
                self._ready,
                what="Apicurio Registry",
                timeout_s=self.settings.start_timeout_s,
                log_file=self.log_file,
                pid=pid,
            )

    def _ready(self) -> bool:
        if not port_open(self.settings.registry_port):
            return False
        try:
            answer = httpx.get(f"{self.settings.schema_registry_url}/subjects", timeout=2)
        except httpx.HTTPError:
            return False
        return answer.status_code == 200

    def healthy(self) -> bool:
        """It lists subjects (which reads its database) now."""
        return self._ready()

    def stop(self) -> bool:
        return stop_daemon(self.pid_file, timeout_s=30, expect=str(self.home))

    def running(self) -> bool:
        return read_pid(self.pid_file, expect=str(self.home)) is not None

    def status(self) -> ServiceStatus:
        pid = read_pid(self.pid_file, expect=str(self.home))
        return ServiceStatus(
            name=self.name,
            local=True,
            running=pid is not None and port_open(self.settings.registry_port),
            pid=pid,
            endpoint=self.settings.schema_registry_url,
            log_file=self.log_file,
        )
