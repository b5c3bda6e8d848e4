"""POST each anomaly to a webhook (Slack-compatible JSON), retried, never in the job's way.

Up to ``attempts`` tries with exponential backoff (1 s, 2 s, 4 s ...) on a connection error, a
timeout, 429 or 5xx; any other status is final. A webhook that stays down costs its messages and
a WARNING each, not the job's progress: each post runs in a task of its own.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

log = logging.getLogger(__name__)


class Webhook:
    def __init__(self, url: str, *, attempts: int = 4, first_backoff_s: float = 1.0, timeout_s: float = 5.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:  # fmt: skip
        self.url = url
        self.attempts = attempts
        self.first_backoff_s = first_backoff_s
        self.client = httpx.AsyncClient(timeout=timeout_s, transport=transport)
        self.delivered = 0
        self.failed = 0

    async def post(self, body: dict[str, Any]) -> bool:
        """True once the webhook took it (2xx)."""
        delay = self.first_backoff_s
        for attempt in range(1, self.attempts + 1):
            try:
                answer = await self.client.post(self.url, json=body)
                if answer.is_success:
                    self.delivered += 1
                    return True
                if answer.status_code != 429 and answer.status_code < 500:
                    why = f"{answer.status_code} {answer.text[:200]}"
                    break
                why = f"{answer.status_code}"
            except httpx.HTTPError as exc:
                why = f"{type(exc).__name__}: {exc}"
            if attempt < self.attempts:
                await asyncio.sleep(delay)
                delay *= 2
        self.failed += 1
        log.warning("anomaly webhook %s did not take a message after %d attempt(s): %s", self.url, attempt, why)
        return False

    async def close(self) -> None:
        await self.client.aclose()
