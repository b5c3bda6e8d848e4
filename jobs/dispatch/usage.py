"""Tokens and cost of an answer: the provider's count when it gives one, an estimate otherwise.

The estimate is about 4 characters a token (:data:`CHARS_PER_TOKEN`, rounded up) plus a few
tokens of framing per message; results built from it say ``estimated=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from connectors.providers.base import PromptMessage, Usage
from jobs.dispatch.config import DeploymentConfig

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4


def estimate_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def estimate_prompt_tokens(messages: Sequence[PromptMessage], continue_from: str = "") -> int:
    """Tokens of a prompt: its messages, and the text a continuation is asked to extend."""
    framing = TOKENS_PER_MESSAGE * (len(messages) + (1 if continue_from else 0))
    return framing + sum(estimate_tokens(m.content) for m in messages) + estimate_tokens(continue_from)


@dataclass(frozen=True)
class TokenCount:
    prompt_tokens: int
    completion_tokens: int
    estimated: bool

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: TokenCount) -> TokenCount:
        return TokenCount(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.estimated or other.estimated,
        )


NO_TOKENS = TokenCount(0, 0, False)


def count_tokens(
    usage: Usage | None, messages: Sequence[PromptMessage], continue_from: str, completion: str
) -> TokenCount:
    """One attempt's tokens: the provider's ``usage``, else estimated from the texts."""
    if usage is not None:
        return TokenCount(usage.prompt_tokens, usage.completion_tokens, False)
    return TokenCount(
        estimate_prompt_tokens(messages, continue_from), estimate_tokens(completion), True
    )


def cost_usd(deployment: DeploymentConfig, prompt_tokens: int, completion_tokens: int) -> float:
    """US dollars at the deployment's prices per 1,000 prompt and completion tokens."""
    return (
        prompt_tokens * deployment.input_price_per_1k
        + completion_tokens * deployment.output_price_per_1k
    ) / 1000
