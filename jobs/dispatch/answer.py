"""One request's answer as the engine builds it: text accepted, chunks emitted, tokens, cost.

The text accepted is exactly what the client gets, in order: each piece goes through the
:class:`ChunkBatcher` and comes out as :class:`ChunkBatch` events numbered from 0, across retries
and fallbacks alike. It is also what a fallback deployment is asked to continue.
"""

from __future__ import annotations

from jobs.dispatch.batching import ChunkBatcher
from jobs.dispatch.config import DeploymentConfig
from jobs.dispatch.events import ChunkBatch
from jobs.dispatch.usage import NO_TOKENS, TokenCount, cost_usd


class AnswerProgress:
    """Mutable, owned by one ``Dispatcher.run``; every method takes the time it needs."""

    def __init__(self, batcher: ChunkBatcher, started_ms: int) -> None:
        self.started_ms = started_ms
        self._batcher = batcher
        self._parts: list[str] = []
        self.chunks = 0
        self.first_chunk_ms: int | None = None
        self.attempts = 0
        self.deployments: list[str] = []
        self.tokens: TokenCount = NO_TOKENS
        self.cost_usd = 0.0

    @property
    def text(self) -> str:
        """All text accepted so far (sent, or waiting in the batcher)."""
        return "".join(self._parts)

    @property
    def fallback_used(self) -> bool:
        return len(self.deployments) > 1

    def start_attempt(self, deployment: str) -> None:
        self.attempts += 1
        if deployment not in self.deployments:
            self.deployments.append(deployment)

    def accept(self, text: str, now_ms: int) -> ChunkBatch | None:
        """Take text for the client; a batch when one is ready."""
        if text:
            self._parts.append(text)
        batch = self._batcher.add(text, now_ms)
        return self.chunk(batch, now_ms) if batch else None

    def flush(self, now_ms: int) -> ChunkBatch | None:
        batch = self._batcher.flush()
        return self.chunk(batch, now_ms) if batch else None

    def chunk(self, text: str, now_ms: int) -> ChunkBatch:
        """The next chunk event (also for replaying a cached answer)."""
        if self.first_chunk_ms is None:
            self.first_chunk_ms = now_ms
        batch = ChunkBatch(self.chunks, text, now_ms)
        self.chunks += 1
        return batch

    def charge(self, deployment: DeploymentConfig, tokens: TokenCount) -> None:
        """Add one attempt's tokens at its deployment's prices."""
        self.tokens += tokens
        self.cost_usd += cost_usd(deployment, tokens.prompt_tokens, tokens.completion_tokens)

    def latency_ms(self, now_ms: int) -> int:
        return now_ms - self.started_ms

    def ttft_ms(self) -> int | None:
        return None if self.first_chunk_ms is None else self.first_chunk_ms - self.started_ms
