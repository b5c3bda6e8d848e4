"""Find the tools the local stack runs on, or say in one line what is missing and how to get it."""

from __future__ import annotations

import glob
import re
import shutil
import subprocess
from pathlib import Path

from infra.local.errors import PrerequisiteError

_JAVA_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


def java_major(version_output: str) -> int | None:
    """The major version in ``java -version`` output (``1.8`` -> 8, ``17.0.15`` -> 17)."""
    match = _JAVA_VERSION.search(version_output)
    if match is None:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2):
        return int(match.group(2))
    return major


def require_java(java: str, minimum: int = 17) -> str:
    path = shutil.which(java)
    if path is None:
        raise PrerequisiteError(
            f"Java {minimum}+ not found: no '{java}' on PATH; install a JDK "
            f"(apt-get install openjdk-{minimum}-jre-headless) or set CHATSTREAM_JAVA"
        )
    out = subprocess.run([path, "-version"], capture_output=True, text=True, check=False)
    major = java_major(out.stderr + out.stdout)
    if major is None or major < minimum:
        raise PrerequisiteError(
            f"Java {minimum}+ not found: '{path}' is version {major or 'unknown'}; "
            f"set CHATSTREAM_JAVA to a Java {minimum}+ executable"
        )
    return path


def require_javac(java: str) -> str:
    """The compiler of the JDK whose ``java`` runs the stack (next to it), else the one on PATH."""
    beside = Path(require_java(java)).resolve().parent / "javac"
    found = str(beside) if beside.is_file() else shutil.which("javac")
    if found is None:
        raise PrerequisiteError("javac not found: install a JDK (apt-get install openjdk-17-jdk-headless)")
    return found


def require_maven(maven: str) -> str:
    path = shutil.which(maven)
    if path is None:
        raise PrerequisiteError(
            f"Maven not found: no '{maven}' on PATH; install it (apt-get install maven) "
            "or set CHATSTREAM_MAVEN"
        )
    return path


def postgres_bindir() -> Path:
    """The newest PostgreSQL server installation's ``bin`` folder (initdb, pg_ctl, postgres)."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    candidates += sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    raise PrerequisiteError(
        "PostgreSQL server not found: no initdb/pg_ctl; install it (apt-get install postgresql) "
        "or set CHATSTREAM_POSTGRES_DSN to an existing server"
    )
