"""The Flink connector jars the engagement job loads: fetched by Maven into the state directory.

PyFlink (the ``apache-flink`` package) ships Flink itself but no connectors. The Kafka SQL
connector and the ``avro-confluent`` format come from Maven Central (``infra/maven/flink``), into
``<state>/flink/lib/<versions>/``; a second fetch of the same versions is a no-op, and Maven's
``~/.m2`` caches the download machine-wide.
"""

from __future__ import annotations

from pathlib import Path

from chatstream.settings import Settings
from infra.local import maven
from infra.local.prereqs import require_maven

REQUIRED = ("flink-sql-connector-kafka", "flink-sql-avro-confluent-registry")


class FlinkConnectors:
    """The connector jars of one pair of versions, under ``<state>/flink/lib``."""

    name = "flink connectors"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        versions = f"kafka-{settings.flink_kafka_connector_version}_format-{settings.flink_format_version}"
        self.lib = settings.state_dir / "flink" / "lib" / versions

    def jars(self) -> list[Path]:
        """The jars present now (empty when not fetched)."""
        return sorted(self.lib.glob("*.jar")) if self.lib.is_dir() else []

    def present(self) -> bool:
        names = [jar.name for jar in self.jars()]
        return all(any(name.startswith(prefix) for name in names) for prefix in REQUIRED)

    def fetch(self) -> list[Path]:
        """Copy the jars here unless they already are; return them."""
        if not self.present():
            maven.copy_dependencies(
                require_maven(self.settings.maven),
                "flink",
                {
                    "runtime.version": self.settings.flink_format_version,
                    "kafka.connector.version": self.settings.flink_kafka_connector_version,
                },
                self.lib,
            )
        return self.jars()
