"""A provider that answers locally and deterministically: :class:`SimulatedProvider`.

The local default, so the platform runs without a model server. It is never passed off as a
model: its kind is ``simulated`` and its answers are words from a fixed vocabulary.

The answer is a pure function of the prompt (:func:`simulated_answer`): a SHA-256 of the
messages' roles and contents, not of the model name, picks its length and words, so two
simulated deployments give the same answer to the same prompt. That is what lets a test of a
fallback during a stream check that the client got exactly the uninterrupted text.

One attempt, in order:

- an injected failure before the first token (``failure_rate``, drawn from the instance's own
  ``random.Random(seed)``, or ``fail_after_tokens=0``) is raised at once, without waiting;
- ``ttft_ms`` is waited, then the tokens come one per ``1 / tokens_per_s`` seconds (with
  ``tokens_per_s=0`` there is no delay; control is still given back to the loop every
  ``_YIELD_EVERY`` tokens);
- ``fail_after_tokens=N`` raises when the consumer asks for more after N tokens;
- otherwise one :class:`Finish`: ``length`` when ``max_tokens`` cut the answer, else ``stop``.

``continue_from`` (a fallback during a stream): the attempt yields the answer from character
``len(continue_from)`` on, the token that offset falls in cut there, so the two attempts'
texts concatenate to the full answer exactly. ``max_tokens`` counts the tokens of this attempt,
as a real server counts only what it generates (the prefilled text is prompt); a continuation
that should stop where the uninterrupted answer would asks for ``max_tokens`` minus the tokens
already delivered.

Usage is always given: ``prompt_tokens`` is the words of the messages plus 3 per message (a
continuation counts as one more, assistant, message), ``completion_tokens`` the pieces of text
this attempt yielded.

Injected failures: ``server_error`` is a :class:`ProviderServerError` with status 500,
``rate_limited`` a :class:`ProviderRateLimitError` with ``retry_after_s``, ``timeout`` a
:class:`ProviderTimeoutError` of phase ``first_token`` (``total`` once tokens were yielded).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Literal

from connectors.providers.base import (
    Finish,
    PromptMessage,
    ProviderError,
    ProviderEvent,
    ProviderRateLimitError,
    ProviderRequest,
    ProviderServerError,
    ProviderTimeoutError,
    TextDelta,
    Timeouts,
    Usage,
)

Failure = Literal["server_error", "rate_limited", "timeout"]

# 64 words: one byte of a digest picks one without bias.
VOCABULARY = tuple(
    """
    answer batch broker buffer chat client commit consumer context data delta dispatch event
    fallback field gateway group header index join key latency log message metric model node
    offset order output partition payload pipeline prompt queue rate record reply request
    response retry route sample schema signal sink state step stream system table tenant
    thread token topic trace turn user value version window worker write yield
    """.split()
)
_YIELD_EVERY = 8


def simulated_answer(messages: Sequence[PromptMessage], n_tokens: int | None) -> list[str]:
    """The answer's tokens: each a word and a space, the last a word and a period.

    ``n_tokens`` sets the length; None takes 16 to 64 tokens from the prompt's digest.
    """
    prompt = hashlib.sha256()
    for message in messages:
        role, content = message.role.encode(), message.content.encode()
        prompt.update(b"%d:%s%d:" % (len(role), role, len(content)))
        prompt.update(content)
    digest = prompt.digest()
    count = n_tokens if n_tokens is not None else 16 + int.from_bytes(digest[:2], "big") % 49
    picks = b"".join(
        hashlib.sha256(digest + block.to_bytes(4, "big")).digest() for block in range(-(-count // 32))
    )
    words = [VOCABULARY[pick % len(VOCABULARY)] for pick in picks[:count]]
    return [word + " " for word in words[:-1]] + [word + "." for word in words[-1:]]


def text_after(tokens: Sequence[str], offset: int) -> list[str]:
    """The tokens after the first ``offset`` characters, the token the offset falls in cut there."""
    pieces: list[str] = []
    start = 0
    for token in tokens:
        end = start + len(token)
        if end > offset:
            pieces.append(token[max(0, offset - start) :])
        start = end
    return pieces


def prompt_tokens(request: ProviderRequest) -> int:
    """Words of the messages plus 3 per message; a continuation is one more message."""
    contents = [m.content for m in request.messages]
    if request.continue_from:
        contents.append(request.continue_from)
    return sum(len(content.split()) + 3 for content in contents)


class SimulatedProvider:
    """Deterministic local answers with configurable latency and injected failures."""

    kind: str = "simulated"

    def __init__(
        self,
        *,
        ttft_ms: float = 0.0,
        tokens_per_s: float = 0.0,
        answer_tokens: int | None = None,
        fail_after_tokens: int | None = None,
        failure_rate: float = 0.0,
        failure: Literal["server_error", "rate_limited", "timeout"] = "server_error",
        retry_after_s: float | None = None,
        seed: int = 0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if ttft_ms < 0 or tokens_per_s < 0:
            raise ValueError("ttft_ms and tokens_per_s must not be negative")
        if (answer_tokens or 0) < 0 or (fail_after_tokens or 0) < 0:
            raise ValueError("answer_tokens and fail_after_tokens must not be negative")
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError(f"failure_rate must be within [0, 1], not {failure_rate}")
        if failure not in ("server_error", "rate_limited", "timeout"):
            raise ValueError(f"unknown failure {failure!r}")
        self.ttft_ms = ttft_ms
        self.tokens_per_s = tokens_per_s
        self.answer_tokens = answer_tokens
        self.fail_after_tokens = fail_after_tokens
        self.failure_rate = failure_rate
        self.failure: Failure = failure
        self.retry_after_s = retry_after_s
        self._random = random.Random(seed)
        self._sleep = sleep

    async def aclose(self) -> None:
        return None

    async def stream(
        self, request: ProviderRequest, timeouts: Timeouts
    ) -> AsyncIterator[ProviderEvent]:
        """One attempt (see the module docstring); ``timeouts`` are not consumed."""
        if self.failure_rate > 0 and self._random.random() < self.failure_rate:
            raise self._injected(0)
        if self.fail_after_tokens == 0:
            raise self._injected(0)
        pieces = simulated_answer(request.messages, self.answer_tokens)
        if request.continue_from:
            pieces = text_after(pieces, len(request.continue_from))
        reason = "stop"
        if request.max_tokens is not None and len(pieces) > request.max_tokens:
            pieces, reason = pieces[: request.max_tokens], "length"
        if self.ttft_ms > 0:
            await self._sleep(self.ttft_ms / 1000)
        interval_s = 1 / self.tokens_per_s if self.tokens_per_s > 0 else 0.0
        for yielded, piece in enumerate(pieces):
            if yielded == self.fail_after_tokens:
                raise self._injected(yielded)
            if yielded and interval_s:
                await self._sleep(interval_s)
            elif yielded and yielded % _YIELD_EVERY == 0:
                await self._sleep(0)
            yield TextDelta(piece)
        if len(pieces) == self.fail_after_tokens:
            raise self._injected(len(pieces))
        yield Finish(reason, Usage(prompt_tokens=prompt_tokens(request), completion_tokens=len(pieces)))

    def _injected(self, yielded: int) -> ProviderError:
        after = f" after {yielded} tokens" if yielded else ""
        if self.failure == "rate_limited":
            return ProviderRateLimitError(
                f"simulated provider: injected rate limit{after}", retry_after_s=self.retry_after_s
            )
        if self.failure == "timeout":
            phase = "total" if yielded else "first_token"
            return ProviderTimeoutError(f"simulated provider: injected timeout{after}", phase)
        return ProviderServerError(f"simulated provider: injected server error{after}", status=500)
