"""Post synthetic sessions through the real gateway, as many clients at once would."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import httpx
import orjson

from chatstream.cli.demo.traffic import Session, Stamped

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


class _Poster:
    """Posts one user's events as one batch: 202 counts them accepted; 429 and 503 are retried
    after their Retry-After; a ``retry_fraction`` of accepted batches is posted again, as a client
    that lost the first answer would (same event ids: nothing may double)."""

    def __init__(self, token_for: Callable[[str, str], str], retry_fraction: float, seed: int,
                 on_events: Callable[[int], None]) -> None:  # fmt: skip
        self.stats = DriveStats()
        self._token_for = token_for
        self._retry_fraction = retry_fraction
        self._rng = random.Random(seed)
        self._on_events = on_events

    async def send(self, client: httpx.AsyncClient, tenant: str, user: str, events: list[dict[str, object]]) -> None:
        ok = await self._post(client, tenant, user, events)
        if ok and self._rng.random() < self._retry_fraction:
            self.stats.retried_batches += 1
            await self._post(client, tenant, user, events)
        if not ok:
            self.stats.failed_events += len(events)
        self._on_events(len(events))

    async def _post(self, client: httpx.AsyncClient, tenant: str, user: str, events: list[dict[str, object]]) -> bool:
        body = orjson.dumps({"events": events})
        headers = {"Authorization": f"Bearer {self._token_for(tenant, user)}", "Content-Type": "application/json"}
        for _ in range(MAX_RETRIES):
            answer = await client.post("/v1/events", content=body, headers=headers)
            self.stats.requests += 1
            self.stats.statuses[answer.status_code] += 1
            if answer.status_code == 202:
                self.stats.accepted_events.update(answer.json()["event_ids"])
                return True
            if answer.status_code not in (429, 503):
                return False
            await asyncio.sleep(float(answer.headers.get("retry-after", "1")))
        return False


def _client(gateway_url: str, concurrency: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(base_url=gateway_url, limits=limits, timeout=30)


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
    """Post every session's events, sessions side by side (so not in event-time order)."""
    poster = _Poster(token_for, retry_fraction, seed, on_events)
    queue: asyncio.Queue[tuple[Session, list[dict[str, object]]] | None] = asyncio.Queue(maxsize=concurrency * 4)

    async def worker(client: httpx.AsyncClient) -> None:
        while (item := await queue.get()) is not None:
            session, events = item
            await poster.send(client, session.tenant_id, session.user_id, events)

    async with _client(gateway_url, concurrency) as client:
        workers = [asyncio.create_task(worker(client)) for _ in range(concurrency)]
        for item in batches(sessions, batch_size):
            await queue.put(item)
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)
    return poster.stats


def time_slices(events: Sequence[Stamped], span_ms: int, batch_size: int) -> Iterator[list[tuple[str, str, list[dict[str, object]]]]]:
    """``events`` (in event-time order) cut into slices no wider than ``span_ms`` of event time,
    each slice as per-user batches ``(tenant, user, events)`` in order."""
    start = 0
    while start < len(events):
        end = start
        first = events[start].at_ms
        while end < len(events) and events[end].at_ms < first + span_ms:
            end += 1
        groups: dict[tuple[str, str], list[dict[str, object]]] = {}
        for stamped in events[start:end]:
            groups.setdefault((stamped.tenant_id, stamped.user_id), []).append(stamped.event)
        yield [(tenant, user, chunk[i : i + batch_size]) for (tenant, user), chunk in groups.items()
               for i in range(0, len(chunk), batch_size)]  # fmt: skip
        start = end


async def drive_in_time_order(
    gateway_url: str,
    events: Sequence[Stamped],
    token_for: Callable[[str, str], str],
    *,
    skew_ms: int,
    concurrency: int = 16,
    batch_size: int = 100,
    retry_fraction: float = 0.02,
    on_events: Callable[[int], None] = lambda _: None,
    seed: int = 11,
) -> DriveStats:
    """Post ``events`` (sorted by event time) as a live product would produce them: the requests
    in flight at once never span more than ``skew_ms`` of event time, so a stream job whose
    watermark trails its newest event by more than that finds none of them late. Slice by slice, each slice's
    per-user batches side by side."""
    poster = _Poster(token_for, retry_fraction, seed, on_events)
    gate = asyncio.Semaphore(concurrency)

    async def send(client: httpx.AsyncClient, tenant: str, user: str, batch: list[dict[str, object]]) -> None:
        async with gate:
            await poster.send(client, tenant, user, batch)

    async with _client(gateway_url, concurrency) as client:
        for requests in time_slices(events, skew_ms, batch_size):
            await asyncio.gather(*(send(client, *request) for request in requests))
    return poster.stats


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
