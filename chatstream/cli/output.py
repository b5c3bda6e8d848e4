"""Console helpers shared by the commands: JSON for tools, rich for people."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

console = Console()
err_console = Console(stderr=True)


def print_json(payload: Any) -> None:
    """One JSON document on stdout, nothing else (for ``--json``)."""
    print(json.dumps(payload, indent=2, sort_keys=True, default=str))


@contextmanager
def steps(title: str, *, quiet: bool = False) -> Iterator[Any]:
    """A spinner with elapsed time; yields ``step(text)`` to update its description.

    Quiet (for ``--json``) keeps stdout clean: the spinner goes to stderr or nowhere.
    """
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=quiet,
    )
    with progress:
        task = progress.add_task(title, total=None)

        def step(text: str) -> None:
            progress.update(task, description=f"{title}: {text}")

        yield step
