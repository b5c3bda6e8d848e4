"""Fetch the Java services' artifacts from Maven Central with Maven itself.

Maven's local repository (``~/.m2`` unless Maven is configured otherwise) is the download
cache: a second machine-wide fetch costs nothing.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from infra.local.errors import FetchError

POMS = Path(__file__).resolve().parent.parent / "maven"


def _run(maven: str, argv: list[str], what: str, cwd: Path) -> None:
    done = subprocess.run(
        [maven, "-q", "-B", *argv], capture_output=True, text=True, check=False, cwd=cwd
    )
    if done.returncode != 0:
        detail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        raise FetchError(f"Maven could not fetch {what}: " + " | ".join(detail))


def build_classpath(maven: str, project: str, version: str, out_file: Path) -> list[Path]:
    """Resolve ``infra/maven/<project>/pom.xml`` at ``version``; return its jar classpath."""
    out_file.parent.mkdir(parents=True, exist_ok=True)
    pom = POMS / project / "pom.xml"
    _run(
        maven,
        [
            "-f",
            str(pom),
            "dependency:build-classpath",
            f"-Druntime.version={version}",
            f"-Dmdep.outputFile={out_file}",
        ],
        f"{project} {version}",
        cwd=pom.parent,
    )
    return [Path(p) for p in out_file.read_text().strip().split(":") if p]


def unpack(maven: str, coordinates: str, out_dir: Path) -> None:
    """Unpack the archive at Maven ``coordinates`` (g:a:v:type:classifier) into ``out_dir``.

    Only that one artifact is resolved (no descriptor walk), so archives whose parent POMs
    were never published still unpack.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    _run(
        maven,
        ["dependency:unpack", f"-Dartifact={coordinates}", f"-DoutputDirectory={out_dir}"],
        coordinates,
        cwd=out_dir,
    )


def classpath_intact(classpath_file: Path) -> bool:
    """A cached classpath still points at jars that exist (the Maven cache may be cleaned)."""
    try:
        jars = classpath_file.read_text().strip().split(":")
    except OSError:
        return False
    return bool(jars) and all(Path(jar).exists() for jar in jars)


def copy_dependencies(maven: str, project: str, properties: dict[str, str], out_dir: Path) -> list[Path]:
    """Copy the jars of ``infra/maven/<project>/pom.xml`` into ``out_dir``; return them, sorted."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pom = POMS / project / "pom.xml"
    _run(
        maven,
        ["-f", str(pom), "dependency:copy-dependencies", f"-DoutputDirectory={out_dir}",
         *(f"-D{key}={value}" for key, value in properties.items())],
        f"{project} ({', '.join(properties.values())})",
        cwd=pom.parent,
    )  # fmt: skip
    return sorted(out_dir.glob("*.jar"))
