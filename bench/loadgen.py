"""A lean HTTP/1.1 load generator for the gateway benchmarks (loopback only, bounded runs).

Pre-built request bytes over keep-alive connections, so the client spends as little CPU as
possible on a 2-core machine where it shares the cores with the server. Closed loop (each
connection sends as soon as its last answer came) or paced (a fixed request rate).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    requests: int = 0
    elapsed_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)

    def percentile_ms(self, q: float) -> float:
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def build_request(host: str, port: int, path: str, body: bytes, token: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    status_line = await reader.readline()
    status = int(status_line.split(b" ", 2)[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def run_load(host: str, port: int, requests: list[bytes], *, connections: int,
                   rate_per_s: float | None = None) -> LoadResult:  # fmt: skip
    """Send every request once over ``connections`` keep-alive connections."""
    result = LoadResult()
    queue: asyncio.Queue[tuple[bytes, float]] = asyncio.Queue()
    started = time.perf_counter()
    for i, request in enumerate(requests):
        due = started + (i / rate_per_s if rate_per_s else 0.0)
        queue.put_nowait((request, due))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while not queue.empty():
                request, due = queue.get_nowait()
                wait = due - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                sent = due if rate_per_s else time.perf_counter()  # paced: from when it was due
                status = await _exchange(reader, writer, request)
                result.latencies_s.append(time.perf_counter() - sent)
                result.statuses[status] += 1
                result.requests += 1
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    result.elapsed_s = time.perf_counter() - started
    return result
