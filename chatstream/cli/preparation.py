"""Bring a stack to what the platform needs before it runs: migrations, topics, schemas.

Each step is the user's own command (``chatstream db migrate``, ``topics apply``, ``schemas
register``), run as a child process, and each is idempotent, so ``chatstream run`` and ``chatstream
demo`` can always do it. A step that fails is one line naming the command and its error.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

from chatstream.errors import ChatstreamError
from chatstream.settings import Settings

STEPS = (("db", "migrate"), ("topics", "apply"), ("schemas", "register"))


class PreparationError(ChatstreamError):
    """A set-up step failed; the platform would not work without it."""


def chatstream_command(settings: Settings, *args: str) -> str:
    """Run ``chatstream <args>`` against ``settings``' stack; its output, or PreparationError."""
    env = {**os.environ, "CHATSTREAM_STATE_DIR": str(settings.state_dir)}
    done = subprocess.run([sys.executable, "-m", "chatstream", *args], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        said = [line for line in lines if line.startswith("error:")] or lines[-1:]  # the CLI's own line
        reason = " ".join(said[0].removeprefix("error:").split()) if said else f"exit status {done.returncode}"
        raise PreparationError(f"`chatstream {' '.join(args)}` failed: {reason}")
    return done.stdout


def prepare_platform(settings: Settings, say: Callable[[str], None]) -> None:
    say("migrating, creating topics, registering schemas")
    for step in STEPS:
        chatstream_command(settings, *step)
