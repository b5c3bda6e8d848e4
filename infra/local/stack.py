"""The local stack as a whole: which services run here, in what order, and their status.

A component with an external endpoint configured is not started here; its status is a ping.
Order: PostgreSQL (the registry stores its schemas there), the registry, Kafka, ClickHouse.

``up`` repairs as it goes (``ensure``): a healthy service is left alone, one whose process is
gone (a stale pid file) is started, and one whose process runs but does not answer its health
check within ``HEALTH_TIMEOUT_S`` is stopped by its pid and started again.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import httpx
import psycopg

from chatstream.settings import Component, Settings
from infra.local.clickhouse import ClickHouse
from infra.local.errors import InfraError, PrerequisiteError, ServiceStartError
from infra.local.flink import FlinkConnectors
from infra.local.kafka import LocalKafka
from infra.local.postgres import LocalPostgres
from infra.local.prereqs import postgres_bindir, require_java, require_maven
from infra.local.process import poll, port_open
from infra.local.registry import LocalRegistry, ensure_global_rules
from infra.local.status import ServiceStatus

# How long a running service may take to answer its health check before ``up`` restarts it.
HEALTH_TIMEOUT_S = 10.0


class Service(Protocol):
    name: str
    log_file: Path
    pid_file: Path

    def fetch(self) -> None:
        """Download what the service runs (a no-op when cached or nothing to fetch)."""

    def start(self) -> None:
        """Start it unless ``running``; return once it is ready (``ServiceStartError`` if not)."""

    def stop(self) -> bool:
        """Stop it within a bounded time; False if it was not running."""

    def running(self) -> bool:
        """Its process (named by ``pid_file``) is alive."""

    def healthy(self) -> bool:
        """It answers its health check now (one quick probe)."""

    def status(self) -> ServiceStatus: ...


def ensure(service: Service, *, health_timeout_s: float, on_step: Callable[[str], None]) -> str | None:
    """Leave ``service`` running and healthy; returns why it had to be (re)started, if it did."""
    with reported(service):
        repair = None
        if service.running():
            on_step(f"checking {service.name}")
            if not poll(service.healthy, timeout_s=health_timeout_s):
                repair = f"it ran but did not answer within {health_timeout_s:.0f}s"
                on_step(f"restarting {service.name}: {repair}")
                service.stop()
        elif service.pid_file.exists():
            repair = "its process had died"
        on_step(f"starting {service.name}")
        service.start()  # a no-op for a healthy service, beyond checks of its own
        return repair


@contextmanager
def reported(service: Service) -> Iterator[None]:
    """Errors a service lets through (a driver's, the OS's) become one ``ServiceStartError``
    line that names the service, its log file and what to do."""
    try:
        yield
    except InfraError:
        raise
    except (OSError, subprocess.SubprocessError, psycopg.Error, httpx.HTTPError) as exc:
        raise ServiceStartError(
            f"{service.name} did not start ({_said(exc)}); see {service.log_file}; "
            "run `chatstream infra up` again, or `chatstream infra down` first if it persists"
        ) from exc


ORDER: tuple[Component, ...] = ("postgres", "registry", "kafka", "clickhouse")


def local_services(settings: Settings) -> list[Service]:
    """The services this machine runs for ``settings``, in start order."""
    make: dict[Component, Callable[[Settings], Service]] = {
        "postgres": LocalPostgres,
        "registry": LocalRegistry,
        "kafka": LocalKafka,
        "clickhouse": ClickHouse,
    }
    return [make[name](settings) for name in ORDER if settings.is_local(name) or name == "clickhouse"]


def _said(exc: BaseException) -> str:
    """What a third-party error says, on one line."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code} from {exc.request.url}"
    return " ".join(str(exc).split()) or type(exc).__name__


def missing_prerequisites(settings: Settings) -> list[str]:
    """One line per tool the local services need and this machine lacks."""
    checks: list[Callable[[], object]] = []
    if settings.is_local("kafka") or settings.is_local("registry"):
        checks += [lambda: require_java(settings.java), lambda: require_maven(settings.maven)]
    if settings.is_local("postgres"):
        checks.append(postgres_bindir)
    problems = []
    for check in checks:
        try:
            check()
        except PrerequisiteError as exc:
            problems.append(str(exc))
    return problems


def busy_ports(settings: Settings) -> list[int]:
    """Ports our stopped local services need that something else holds."""
    wanted: list[tuple[bool, list[int]]] = [
        (settings.is_local("postgres") and not LocalPostgres(settings).running(), [settings.postgres_port]),
        (settings.is_local("registry") and not LocalRegistry(settings).running(), [settings.registry_port]),
        (settings.is_local("kafka") and not LocalKafka(settings).running(),
         [settings.kafka_port, settings.kafka_controller_port]),
        (ClickHouse(settings).serves and not ClickHouse(settings).running(), [settings.clickhouse_port]),
    ]  # fmt: skip
    return [port for needed, ports in wanted if needed for port in ports if port_open(port)]


def up(
    settings: Settings,
    on_step: Callable[[str], None] = lambda _: None,
    *,
    health_timeout_s: float = HEALTH_TIMEOUT_S,
) -> dict[str, str]:
    """Start every local service (idempotent: healthy ones are left as they are, others repaired).

    Prerequisites are checked first, all of them, so nothing starts on a machine that lacks one.
    Returns the services that had to be restarted, with the reason.
    """
    problems = missing_prerequisites(settings)
    if problems:
        raise PrerequisiteError("\n".join(problems))
    busy = busy_ports(settings)
    if busy:
        raise ServiceStartError(
            f"port(s) {', '.join(map(str, busy))} already in use by another program; "
            "set CHATSTREAM_PORT_BASE to a free range (below 32768, outside the ephemeral ports)"
        )
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    services = local_services(settings)
    for service in services:
        on_step(f"fetching {service.name} (cached after the first download)")
        with reported(service):
            service.fetch()
    connectors = FlinkConnectors(settings)
    if not connectors.present() and shutil.which(settings.maven):
        on_step("fetching flink connectors (cached after the first download)")
        connectors.fetch()  # the engagement job fetches them itself where Maven is not here
    repaired = {}
    for service in services:
        reason = ensure(service, health_timeout_s=health_timeout_s, on_step=on_step)
        if reason is not None:
            repaired[service.name] = reason
    admin_url = settings.registry_admin_url
    if admin_url is not None:
        try:
            ensure_global_rules(admin_url)
        except httpx.HTTPError as exc:
            raise ServiceStartError(
                f"registry: setting its global rules failed ({_said(exc)}); "
                f"see {LocalRegistry(settings).log_file}; run `chatstream infra up` again"
            ) from exc
    return repaired


def down(settings: Settings, on_step: Callable[[str], None] = lambda _: None) -> list[str]:
    """Stop the local services in reverse order; data stays. Returns the names stopped."""
    stopped = []
    for service in reversed(local_services(settings)):
        on_step(f"stopping {service.name}")
        if service.stop():
            stopped.append(service.name)
    return stopped


def status(settings: Settings) -> list[ServiceStatus]:
    """One status per component, local or external."""
    statuses = {service.name: service.status() for service in local_services(settings)}
    for name in ORDER:
        if name not in statuses:
            statuses[name] = _external_status(settings, name)
    return [statuses[name] for name in ORDER]


def _external_status(settings: Settings, name: Component) -> ServiceStatus:
    if name == "kafka":
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
        try:
            admin.list_topics(timeout=3)
            ok = True
        except Exception:  # noqa: BLE001 - reachability is all a status reports
            ok = False
        return ServiceStatus(name, False, ok, settings.kafka_bootstrap_servers)
    if name == "registry":
        try:
            ok = httpx.get(f"{settings.schema_registry_url}/subjects", timeout=3).is_success
        except httpx.HTTPError:
            ok = False
        return ServiceStatus(name, False, ok, settings.schema_registry_url)
    try:
        with psycopg.connect(settings.postgres_url(), connect_timeout=3):
            ok = True
    except psycopg.Error:
        ok = False
    return ServiceStatus(name, False, ok, settings.redacted_postgres_url())


def endpoints(settings: Settings) -> dict[str, str]:
    """What other tools need to reach the stack (also what the platform itself reads)."""
    return {
        "kafka_bootstrap": settings.kafka_bootstrap_servers,
        "registry_url": settings.schema_registry_url,
        "postgres_dsn": settings.postgres_url(),
        "clickhouse_dsn": settings.clickhouse_url,
        "state_dir": str(settings.state_dir),
    }
