"""Post synthetic sessions through the real gateway, as many clients at once would."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import httpx
import orjson

from chatstream.cli.demo.traffic import Session

MAX_RETRIES = 5


@dataclass
class DriveStats:
    requests: int = 0
    accepted_events: set[str] = field(default_factory=set)
    retried_batches: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failed_events: int = 0


def batches(sessions: Iterable[Session], size: int) -> Iterable[tuple[Session, list[dict[str, object]]]]:
    for session in sessions:
        for start in range(0, len(session.events), size):
            yield session, session.events[start : start + size]


async def drive(
    gateway_url: str,
    sessions: Iterable[Session],
    token_for: Callable[[str, str], str],
    *,
    concurrency: int = 16,
    batch_size: int = 100,
    retry_fraction: float = 0.02,
    on_events: Callable[[int], None] = lambda _: None,
    seed: int = 11,
) -> DriveStats:
    """Post every session's events; a ``retry_fraction`` of batches is sent twice, as a client
    that lost the first answer would. 429 and 503 are retried after their Retry-After."""
    stats = DriveStats()
    rng = random.Random(seed)
    queue: asyncio.Queue[tuple[Session, list[dict[str, object]]] | None] = asyncio.Queue(maxsize=concurrency * 4)

    async def post(client: httpx.AsyncClient, session: Session, events: list[dict[str, object]]) -> bool:
        body = orjson.dumps({"events": events})
        headers = {"Authorization": f"Bearer {token_for(session.tenant_id, session.user_id)}",
                   "Content-Type": "application/json"}  # fmt: skip
        for _ in range(MAX_RETRIES):
            answer = await client.post("/v1/events", content=body, headers=headers)
            stats.requests += 1
            stats.statuses[answer.status_code] += 1
            if answer.status_code == 202:
                stats.accepted_events.update(answer.json()["event_ids"])
                return True
            if answer.status_code not in (429, 503):
                return False
            await asyncio.sleep(float(answer.headers.get("retry-after", "1")))
        return False

    async def worker(client: httpx.AsyncClient) -> None:
        while (item := await queue.get()) is not None:
            session, events = item
            ok = await post(client, session, events)
            if ok and rng.random() < retry_fraction:
                stats.retried_batches += 1
                await post(client, session, events)  # same event ids: must not double anything
            if not ok:
                stats.failed_events += len(events)
            on_events(len(events))

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=gateway_url, limits=limits, timeout=30) as client:
        workers = [asyncio.create_task(worker(client)) for _ in range(concurrency)]
        for item in batches(sessions, batch_size):
            await queue.put(item)
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)
    return stats


async def send_bad_requests(
    gateway_url: str, requests: list[tuple[str, bytes, str]], tokens: dict[str, str]
) -> list[tuple[str, int, str]]:
    """Each bad request's label, status and error message."""
    results = []
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as client:
        for label, body, token_kind in requests:
            headers = {"Content-Type": "application/json"}
            if token_kind in tokens:
                headers["Authorization"] = f"Bearer {tokens[token_kind]}"
            answer = await client.post("/v1/events", content=body, headers=headers)
            message = answer.json().get("error", {}).get("message", "") if answer.content else ""
            results.append((label, answer.status_code, message))
    return results
