"""The exact-match cache: keys, TTL and the LRU bound."""

from __future__ import annotations

from connectors.providers.base import PromptMessage
from jobs.dispatch.cache import CachedAnswer, ResponseCache, cache_key

HELLO = (PromptMessage("user", "hello"),)


def answer(content: str) -> CachedAnswer:
    return CachedAnswer(content, "stop", "sim", "simulated", "m", 3, 1, True)


def test_the_key_covers_alias_messages_and_sampling() -> None:
    key = cache_key("chat", HELLO, 100, 0.0)
    assert key == cache_key("chat", (PromptMessage("user", "hello"),), 100, 0.0)
    assert len(key) == 64
    others = {
        cache_key("other", HELLO, 100, 0.0),
        cache_key("chat", (PromptMessage("system", "hello"),), 100, 0.0),
        cache_key("chat", HELLO + (PromptMessage("user", ""),), 100, 0.0),
        cache_key("chat", HELLO, None, 0.0),
        cache_key("chat", HELLO, 100, 0.7),
    }
    assert key not in others and len(others) == 5


def test_entries_expire_after_the_ttl() -> None:
    cache = ResponseCache(ttl_s=10, max_entries=5)
    cache.put("k", answer("hi"), now_s=100)
    assert cache.get("k", 109.9) == answer("hi")
    assert cache.get("k", 110) is None
    assert len(cache) == 0


def test_the_least_recently_used_goes_past_the_bound() -> None:
    cache = ResponseCache(ttl_s=100, max_entries=2)
    cache.put("a", answer("a"), 0)
    cache.put("b", answer("b"), 0)
    assert cache.get("a", 1) is not None  # a is now more recent than b
    cache.put("c", answer("c"), 2)
    assert cache.get("b", 3) is None
    assert cache.get("a", 3) == answer("a") and cache.get("c", 3) == answer("c")
