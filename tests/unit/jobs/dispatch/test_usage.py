"""Token estimates and cost."""

from __future__ import annotations

import pytest

from connectors.providers.base import PromptMessage, Usage
from jobs.dispatch.usage import TokenCount, cost_usd, count_tokens, estimate_prompt_tokens, estimate_tokens
from tests.unit.jobs.dispatch.fakes import routing


@pytest.mark.parametrize(("text", "tokens"), [("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("x" * 400, 100)])
def test_about_four_characters_a_token(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


def test_a_prompt_counts_its_messages_framing_and_the_text_to_continue() -> None:
    messages = (PromptMessage("system", "x" * 8), PromptMessage("user", "y" * 4))
    assert estimate_prompt_tokens(messages) == 4 * 2 + 2 + 1
    assert estimate_prompt_tokens(messages, "z" * 8) == 4 * 3 + 2 + 1 + 2


def test_the_providers_usage_wins_over_the_estimate() -> None:
    messages = (PromptMessage("user", "hello"),)
    assert count_tokens(Usage(11, 22), messages, "", "text") == TokenCount(11, 22, False)
    assert count_tokens(None, messages, "", "text") == TokenCount(6, 1, True)


def test_cost_at_the_deployments_prices() -> None:
    config = routing({"d": {"input_price_per_1k": 0.5, "output_price_per_1k": 1.5}})
    assert cost_usd(config.deployments["d"], 1000, 2000) == pytest.approx(3.5)
    assert cost_usd(config.deployments["d"], 0, 0) == 0.0
