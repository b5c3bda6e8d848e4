"""The one call every model provider client offers, and what it yields.

A provider client turns a :class:`ProviderRequest` into an async stream of
:class:`TextDelta` items that ends with exactly one :class:`Finish`. The dispatch job owns
retries, fallbacks and breakers; a client makes one attempt and says, through the error it
raises, whether another attempt may succeed.

Errors (one tree, raised from the client's boundary, the third-party error chained)::

    ProviderError                      .code, .retryable, .retry_after_s
    ├── ProviderConnectError           could not connect                    retryable
    ├── ProviderTimeoutError           connect / first_token / total budget retryable
    ├── ProviderRateLimitError         429; .retry_after_s from Retry-After  retryable
    ├── ProviderServerError            5xx, or an error event mid-stream     retryable
    └── ProviderRequestError           4xx other than 429 (bad request, auth, unknown model)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant", "tool"]
Continuation = Literal["prefill", "vllm-prefill", "instruct"]


@dataclass(frozen=True)
class PromptMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class Timeouts:
    """Budgets of one attempt, in seconds: to connect, from sending to the first text, and in all."""

    connect_s: float = 5.0
    first_token_s: float = 30.0
    total_s: float = 300.0


@dataclass(frozen=True)
class ProviderRequest:
    """One attempt at an answer.

    ``continue_from`` is text the client has already received from an earlier attempt (a
    fallback during a stream): the provider is asked to continue it, and yields only the text
    that follows it.
    """

    model: str
    messages: tuple[PromptMessage, ...]
    max_tokens: int | None = None
    temperature: float | None = None
    continue_from: str = ""


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Finish:
    """The end of a successful stream. ``usage`` is the provider's own count, when it gives one."""

    reason: str
    usage: Usage | None = None


ProviderEvent = TextDelta | Finish


class Provider(Protocol):
    """A model provider client. ``kind`` names it in events (``openai``, ``simulated``)."""

    kind: str

    def stream(self, request: ProviderRequest, timeouts: Timeouts) -> AsyncIterator[ProviderEvent]:
        """Yield the answer's text as it arrives, then one :class:`Finish`.

        Raises a :class:`ProviderError` on failure, also after some text was yielded.
        Cancelling the iteration (``aclose`` or task cancellation) abandons the provider call.
        """
        ...


@dataclass
class ProviderError(Exception):
    """An attempt failed. ``code`` is machine-readable and lands in ``ai.responses.v1``."""

    message: str
    code: str = "provider_error"
    retryable: bool = True
    retry_after_s: float | None = None
    status: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class ProviderConnectError(ProviderError):
    def __init__(self, message: str) -> None:
        super().__init__(message, code="connect_error", retryable=True)


class ProviderTimeoutError(ProviderError):
    """``phase`` is ``connect``, ``first_token`` or ``total``."""

    def __init__(self, message: str, phase: str) -> None:
        super().__init__(message, code=f"timeout_{phase}", retryable=True)
        self.phase = phase


class ProviderRateLimitError(ProviderError):
    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(
            message, code="rate_limited", retryable=True, retry_after_s=retry_after_s, status=429
        )


class ProviderServerError(ProviderError):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message, code="provider_error", retryable=True, status=status)


class ProviderRequestError(ProviderError):
    def __init__(self, message: str, status: int | None = None, code: str = "bad_request") -> None:
        super().__init__(message, code=code, retryable=False, status=status)
