"""An optional exact-match answer cache: the same alias, messages and sampling, the same answer.

The key is the SHA-256 of the alias, the messages (role and content), ``max_tokens`` and
``temperature`` in a canonical JSON form. Entries live ``ttl_s`` seconds; past ``max_entries``
the least recently used goes. The cache lives in one worker's memory: a hit is a saving, a miss
costs nothing but the lookup.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from connectors.providers.base import PromptMessage


def cache_key(
    alias: str, messages: Sequence[PromptMessage], max_tokens: int | None, temperature: float | None
) -> str:
    canonical = json.dumps(
        [alias, [[m.role, m.content] for m in messages], max_tokens, temperature],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedAnswer:
    content: str
    finish_reason: str
    deployment: str
    provider_kind: str
    provider_model: str
    prompt_tokens: int
    completion_tokens: int
    tokens_estimated: bool


class ResponseCache:
    """TTL + LRU bound; every method takes the time."""

    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, CachedAnswer]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, now_s: float) -> CachedAnswer | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at_s, answer = entry
        if now_s >= expires_at_s:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return answer

    def put(self, key: str, answer: CachedAnswer, now_s: float) -> None:
        self._entries[key] = (now_s + self.ttl_s, answer)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
