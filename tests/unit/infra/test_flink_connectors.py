"""The engagement job's connector jars: fetched by Maven once into the state directory."""

from __future__ import annotations

import stat
from pathlib import Path

from chatstream.settings import Settings
from infra.local.flink import FlinkConnectors, format_jar_name

FAKE_MAVEN = """#!/bin/sh
echo "$@" >> "{calls}"
for arg in "$@"; do
  case "$arg" in -DoutputDirectory=*) out="${{arg#-DoutputDirectory=}}";; esac
done
mkdir -p "$out"
touch "$out/flink-sql-connector-kafka-5.0.0-2.2.jar" "$out/flink-sql-avro-confluent-registry-2.2.0.jar"
"""


def test_the_jars_are_fetched_once_with_the_configured_versions(tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    maven = tmp_path / "mvn"
    maven.write_text(FAKE_MAVEN.format(calls=calls))
    maven.chmod(maven.stat().st_mode | stat.S_IEXEC)
    connectors = FlinkConnectors(Settings(state_dir=tmp_path / "state", maven=str(maven)))
    assert not connectors.present() and connectors.jars() == []
    # the lenient format built already (javac against the real jars is the integration tests')
    connectors.lib.mkdir(parents=True)
    (connectors.lib / format_jar_name()).touch()
    assert not connectors.present()

    jars = connectors.fetch()
    assert [jar.name for jar in jars] == [format_jar_name(), "flink-sql-avro-confluent-registry-2.2.0.jar",
                                          "flink-sql-connector-kafka-5.0.0-2.2.jar"]  # fmt: skip
    assert connectors.present() and all(tmp_path / "state" / "flink" / "lib" in jar.parents for jar in jars)
    (call,) = calls.read_text().splitlines()
    assert "dependency:copy-dependencies" in call and "infra/maven/flink/pom.xml" in call
    assert "-Druntime.version=2.2.0" in call and "-Dkafka.connector.version=5.0.0-2.2" in call

    connectors.fetch()  # present: Maven is not asked again
    assert len(calls.read_text().splitlines()) == 1


def test_the_formats_jar_is_named_by_its_sources() -> None:
    name = format_jar_name()
    assert name.startswith("chatstream-lenient-avro-confluent-") and name.endswith(".jar")
    assert name == format_jar_name()  # stable while the sources are
