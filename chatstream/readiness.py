"""Wait for a gateway to answer ``/readyz`` with 200 (demo, benchmark and tests share this)."""

from __future__ import annotations

import time
from collections.abc import Callable

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
