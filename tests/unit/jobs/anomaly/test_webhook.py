"""The webhook retries what may pass later and gives up on what will not."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from jobs.anomaly.webhook import Webhook


def hook(statuses: list[int], seen: list[dict[str, object]]) -> Webhook:
    answers = iter(statuses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append({"body": request.content})
        status = next(answers)
        if status == 0:
            raise httpx.ConnectError("refused")
        return httpx.Response(status)

    return Webhook("http://hooks.example/x", attempts=3, first_backoff_s=0.001, transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(("statuses", "delivered", "tries"), [
    ([200], True, 1),
    ([0, 503, 200], True, 3),  # refused, unavailable, then taken
    ([429, 429, 429], False, 3),  # still throttled after every attempt
    ([400], False, 1),  # a refusal is final
])  # fmt: skip
def test_retries(statuses: list[int], delivered: bool, tries: int) -> None:
    seen: list[dict[str, object]] = []
    webhook = hook(statuses, seen)

    async def go() -> bool:
        try:
            return await webhook.post({"text": "hi"})
        finally:
            await webhook.close()

    assert asyncio.run(go()) is delivered
    assert len(seen) == tries and seen[0]["body"] == b'{"text":"hi"}'
    assert (webhook.delivered, webhook.failed) == ((1, 0) if delivered else (0, 1))
