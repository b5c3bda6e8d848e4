"""Which retained checkpoint a starting job resumes from: the newest complete one.

Flink lays checkpoints out as ``<dir>/<job id>/chk-<n>/_metadata``; a directory without
``_metadata`` is one that never completed. Each run of the job has a new job id, so the newest is
looked for across all of them (by the time ``_metadata`` was written).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit


def newest_checkpoint(uri: str) -> str | None:
    """The newest complete checkpoint under a ``file:`` checkpoint URI; None if none (or remote)."""
    parts = urlsplit(uri)
    if parts.scheme not in ("", "file"):
        return None  # remote storage: pass execution.state-recovery.path yourself
    root = Path(parts.path)
    return pick_newest([(meta.stat().st_mtime, meta.parent) for meta in root.glob("*/chk-*/_metadata")])


def pick_newest(candidates: list[tuple[float, Path]]) -> str | None:
    """The checkpoint written last; ties broken by the higher checkpoint number."""
    if not candidates:
        return None
    _, newest = max(candidates, key=lambda c: (c[0], int(c[1].name.removeprefix("chk-"))))
    return newest.as_uri()
