"""A single-node Apache Kafka broker in KRaft mode, from Apache's Maven Central artifacts.

Combined broker and controller; transaction log replication 1 and min ISR 1 so transactions
work on one broker; topic auto-creation off (``chatstream topics apply`` creates topics).
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

from chatstream.settings import Settings
from infra.local import maven
from infra.local.errors import ServiceStartError
from infra.local.prereqs import require_java, require_maven
from infra.local.process import (
    port_open,
    read_pid,
    start_daemon,
    stop_daemon,
    wait_until,
)
from infra.local.status import ServiceStatus


def server_properties(settings: Settings, data_dir: Path) -> str:
    """The broker's ``server.properties`` for this machine's ports and state directory."""
    port, controller = settings.kafka_port, settings.kafka_controller_port
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "message.max.bytes": str(8 * 1024 * 1024),
    }
    return "".join(f"{key}={value}\n" for key, value in props.items())


def log4j2_properties(log_file: Path) -> str:
    return (
        "status = warn\n"
        "appender.file.type = File\n"
        "appender.file.name = file\n"
        f"appender.file.fileName = {log_file}\n"
        "appender.file.layout.type = PatternLayout\n"
        "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
        "rootLogger.level = INFO\n"
        "rootLogger.appenderRef.file.ref = file\n"
        "logger.state-change.name = state.change.logger\n"
        "logger.state-change.level = WARN\n"
    )


def new_cluster_id(random_bytes: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """A KRaft cluster id: URL-safe base64 of 16 random bytes, drawn again when it starts with
    ``-`` (``kafka-storage format -t -x...`` reads that as an option; Kafka's own ``Uuid`` does
    the same)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(random_bytes()).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


class LocalKafka:
    """The broker in ``<state>/kafka``: jars resolved by Maven, storage formatted once."""

    name = "kafka"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.state_dir / "kafka"
        self.data = self.home / "data"
        self.log_file = self.home / "server.log"
        self.pid_file = self.home / "kafka.pid"
        self.classpath_file = self.home / f"classpath-{settings.kafka_version}.txt"

    def fetch(self) -> None:
        """Resolve the broker's jars (a no-op when the cached classpath is intact)."""
        if not maven.classpath_intact(self.classpath_file):
            maven.build_classpath(
                require_maven(self.settings.maven),
                "kafka",
                self.settings.kafka_version,
                self.classpath_file,
            )

    def _java(self, main: str, *args: str, heap: bool = False) -> list[str]:
        argv = [require_java(self.settings.java)]
        if heap:
            mb = self.settings.jvm_heap_mb
            argv += [f"-Xmx{mb}m", f"-Xms{min(mb, 256)}m", "-XX:+UseG1GC"]
        argv += [
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.home}",
            "-cp",
            self.classpath_file.read_text().strip(),
            main,
            *args,
        ]
        return argv

    def start(self) -> None:
        if self.running():
            return
        self.fetch()
        self.data.mkdir(parents=True, exist_ok=True)
        config = self.home / "server.properties"
        config.write_text(server_properties(self.settings, self.data))
        (self.home / "log4j2.properties").write_text(log4j2_properties(self.log_file))
        if not (self.data / "meta.properties").exists():
            self._format(config)
        pid = start_daemon(
            self._java("kafka.Kafka", str(config), heap=True),
            log_file=self.home / "stdout.log",
            pid_file=self.pid_file,
            cwd=self.home,
        )
        wait_until(
            self._ready,
            what="Kafka",
            timeout_s=self.settings.start_timeout_s,
            log_file=self.log_file,
            pid=pid,
        )

    def _format(self, config: Path) -> None:
        cluster_file = self.home / "cluster-id"
        saved = cluster_file.read_text().strip() if cluster_file.exists() else ""
        if not saved or saved.startswith("-"):  # one that StorageTool took for an option: never formatted
            cluster_file.write_text(new_cluster_id() + "\n")
        cluster_id = cluster_file.read_text().strip()
        done = subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config)),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            said = " ".join((done.stdout + done.stderr).split())[-400:]
            raise ServiceStartError(f"Kafka's storage format failed in {self.data}: {said}")

    def _ready(self) -> bool:
        if not port_open(self.settings.kafka_port):
            return False
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.settings.kafka_bootstrap_servers})
        try:
            admin.list_topics(timeout=2)
        except Exception:  # noqa: BLE001 - not ready yet is the only meaning here
            return False
        return True

    def healthy(self) -> bool:
        """The broker answers a metadata request now."""
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
            running=pid is not None and port_open(self.settings.kafka_port),
            pid=pid,
            endpoint=self.settings.kafka_bootstrap_servers,
            log_file=self.log_file,
        )
