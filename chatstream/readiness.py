"""A component's ``/readyz``: wait for it (demo, benchmark and tests) or ask it once (``chatstream
run`` and ``infra status`` show each change)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import httpx


def wait_ready(url: str, *, timeout_s: float, alive: Callable[[], bool] = lambda: True) -> bool:
    """True once ``{url}/readyz`` says ready; False after ``timeout_s`` or when ``alive()`` fails."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and alive():
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def probe(url: str, timeout_s: float = 1.0) -> tuple[bool | None, str]:
    """Ask ``url`` (a ``/readyz``) once: (True, "") when ready, (False, its reason) when not,
    (None, why) when nothing answers."""
    try:
        answer = httpx.get(url, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return None, f"not answering ({type(exc).__name__})"
    if answer.status_code == 200:
        return True, ""
    reason = ""
    if "json" in answer.headers.get("content-type", ""):
        body = answer.json()
        if isinstance(body, Mapping):
            failing = [name for name, ok in (body.get("checks") or {}).items() if not ok]
            reason = str(body.get("reason") or (f"failing: {', '.join(failing)}" if failing else ""))
    return False, " ".join((reason or f"HTTP {answer.status_code}").split())
