"""The Flink connector jars the engagement job loads: fetched by Maven into the state directory.

PyFlink (the ``apache-flink`` package) ships Flink itself but no connectors. The Kafka SQL
connector and the ``avro-confluent`` format come from Maven Central (``infra/maven/flink``), into
``<state>/flink/lib/<versions>/``; a second fetch of the same versions is a no-op, and Maven's
``~/.m2`` caches the download machine-wide.

Next to them, the job's ``lenient-avro-confluent`` format (``jobs/engagement/format``: two Java
classes over Flink's format that skip a corrupt record instead of failing the job) is compiled
with the JDK's ``javac`` against those jars and PyFlink's, into a jar named by its sources' hash:
changed sources build a new one.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
import zipfile
from pathlib import Path

from chatstream.settings import REPO_ROOT, Settings
from infra.local import maven
from infra.local.errors import FetchError
from infra.local.prereqs import require_javac, require_maven

REQUIRED = ("flink-sql-connector-kafka", "flink-sql-avro-confluent-registry")
FORMAT_SOURCES = REPO_ROOT / "jobs" / "engagement" / "format" / "src"
FORMAT_JAR = "chatstream-lenient-avro-confluent"


def format_jar_name() -> str:
    """The lenient format's jar, named by the hash of its sources."""
    digest = hashlib.sha256()
    for path in sorted(p for p in FORMAT_SOURCES.rglob("*") if p.is_file()):
        digest.update(path.relative_to(FORMAT_SOURCES).as_posix().encode() + b"\0" + path.read_bytes())
    return f"{FORMAT_JAR}-{digest.hexdigest()[:12]}.jar"


def pyflink_lib() -> Path:
    import pyflink  # type: ignore[import-untyped]

    return Path(pyflink.__file__).resolve().parent / "lib"


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
        return self._connectors_present() and (self.lib / format_jar_name()).is_file()

    def _connectors_present(self) -> bool:
        names = [jar.name for jar in self.jars()]
        return all(any(name.startswith(prefix) for name in names) for prefix in REQUIRED)

    def fetch(self) -> list[Path]:
        """Copy the jars here unless they already are, build the format unless built; return them."""
        if not self._connectors_present():
            maven.copy_dependencies(
                require_maven(self.settings.maven),
                "flink",
                {
                    "runtime.version": self.settings.flink_format_version,
                    "kafka.connector.version": self.settings.flink_kafka_connector_version,
                },
                self.lib,
            )
        if not (self.lib / format_jar_name()).is_file():
            self._build_format()
        return self.jars()

    def _build_format(self) -> None:
        """Compile the lenient format against the fetched jars and PyFlink's; replace older builds."""
        javac = require_javac(self.settings.java)
        sources = sorted(str(p) for p in FORMAT_SOURCES.rglob("*.java"))
        classpath = ":".join([str(pyflink_lib() / "*"), *(str(jar) for jar in self.jars() if not jar.name.startswith(FORMAT_JAR))])
        with tempfile.TemporaryDirectory() as build:
            done = subprocess.run([javac, "--release", "11", "-nowarn", "-d", build, "-cp", classpath, *sources],
                                  capture_output=True, text=True, check=False)  # fmt: skip
            if done.returncode != 0:
                raise FetchError("javac could not build the lenient Avro format: " + " | ".join(done.stderr.strip().splitlines()[-5:]))
            for old in self.lib.glob(f"{FORMAT_JAR}-*.jar"):
                old.unlink()
            staging = self.lib / f".{format_jar_name()}.part"
            with zipfile.ZipFile(staging, "w", zipfile.ZIP_DEFLATED) as jar:
                jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nCreated-By: chatstream\n")
                for path in sorted(Path(build).rglob("*.class")):
                    jar.write(path, path.relative_to(build).as_posix())
                for path in sorted((FORMAT_SOURCES / "META-INF").rglob("*")):
                    if path.is_file():
                        jar.write(path, path.relative_to(FORMAT_SOURCES).as_posix())
            staging.replace(self.lib / format_jar_name())
