"""What the dispatch engine takes (one request) and what it yields (events about it).

One run yields, in order: zero or more :class:`Dispatched` (one per attempt: first try, each
retry, each fallback) interleaved with :class:`ChunkBatch` events, then exactly one terminal
:class:`Completed` or :class:`Failed`, unless the run is cancelled, which yields nothing more.

Times are epoch milliseconds from the engine's clock. ``latency_ms`` and ``ttft_ms`` count from
the start of dispatch (the ``run`` call) to the last and the first chunk.

Tenant usage comes back on the terminal event: ``tenant_usage`` is the value passed to ``run``
with this request's charge applied, and ``charge`` is that charge alone (None when the request
was refused before anything was spent: unknown alias, expired, over a limit). A wiring that runs
one tenant's requests concurrently stores ``charge.apply_to(table[tenant])``, read after the
run, so overlapping requests do not overwrite each other's usage.
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.providers.base import PromptMessage
from jobs.dispatch.limits import TenantCharge, TenantUsage


@dataclass(frozen=True)
class DispatchRequest:
    """An OpenAI-style chat completion request, as the wiring decoded it."""

    request_id: str
    tenant_id: str
    user_id: str
    alias: str
    messages: tuple[PromptMessage, ...]
    max_tokens: int | None
    temperature: float | None
    received_at_ms: int
    deadline_at_ms: int | None = None


@dataclass(frozen=True)
class Dispatched:
    """An attempt starts: ``attempt`` counts from 1 across retries and fallbacks."""

    attempt: int
    deployment: str
    provider_kind: str
    provider_model: str
    reason: str
    at_ms: int


@dataclass(frozen=True)
class ChunkBatch:
    """Text for the client; ``sequence`` counts from 0 and goes on across fallbacks."""

    sequence: int
    text: str
    at_ms: int


@dataclass(frozen=True)
class Completed:
    """The answer is whole. ``content`` is the concatenation of every chunk's text."""

    content: str
    finish_reason: str
    deployment: str
    provider_kind: str
    provider_model: str
    prompt_tokens: int
    completion_tokens: int
    tokens_estimated: bool
    cost_usd: float
    latency_ms: int
    ttft_ms: int | None
    attempts: int
    fallback_used: bool
    cached: bool
    chunks: int
    at_ms: int
    tenant_usage: TenantUsage
    charge: TenantCharge | None


@dataclass(frozen=True)
class Failed:
    """No (whole) answer. ``chunks`` says how much text the client got before the failure."""

    error_code: str
    message: str
    retryable: bool
    retry_after_s: float | None
    deployment: str | None
    attempts: int
    fallback_used: bool
    latency_ms: int
    ttft_ms: int | None
    chunks: int
    at_ms: int
    tenant_usage: TenantUsage
    charge: TenantCharge | None


DispatchEvent = Dispatched | ChunkBatch | Completed | Failed
