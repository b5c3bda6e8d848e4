"""The local stack as a whole: which services run here, in what order, and their status.

A component with an external endpoint configured is not started here; its status is a ping.
Order: PostgreSQL (the registry stores its schemas there), the registry, Kafka, ClickHouse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import httpx
import psycopg

from chatstream.settings import Component, Settings
from infra.local.clickhouse import ClickHouse
from infra.local.errors import PrerequisiteError, ServiceStartError
from infra.local.kafka import LocalKafka
from infra.local.postgres import LocalPostgres
from infra.local.prereqs import postgres_bindir, require_java, require_maven
from infra.local.process import port_open
from infra.local.registry import LocalRegistry, ensure_global_rules
from infra.local.status import ServiceStatus


class Service(Protocol):
    name: str

    def fetch(self) -> None:
        """Download what the service runs (a no-op when cached or nothing to fetch)."""

    def start(self) -> None: ...

    def stop(self) -> bool: ...

    def status(self) -> ServiceStatus: ...


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


def up(settings: Settings, on_step: Callable[[str], None] = lambda _: None) -> None:
    """Start every local service (idempotent: running ones are left as they are).

    Prerequisites are checked first, all of them, so nothing starts on a machine that lacks one.
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
        service.fetch()
    for service in services:
        on_step(f"starting {service.name}")
        service.start()
    admin_url = settings.registry_admin_url
    if admin_url is not None:
        ensure_global_rules(admin_url)


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
