"""Deltas into chunk events: one per ``max_tokens`` deltas or ``max_ms``, whichever comes first.

A provider yields a delta per token or so; an event per delta would multiply Kafka records by
the answer's length. :class:`ChunkBatcher` groups them, except the answer's first text, which
goes out at once: the client's time to first token is what a user feels.

Time is only looked at when the caller passes it: :meth:`ChunkBatcher.add` also returns a batch
that is due, so a caller that checks as deltas arrive needs no timer, and a batch then waits at
most one inter-token gap beyond ``max_ms``. :meth:`due` serves a caller that has a timer.
"""

from __future__ import annotations


class ChunkBatcher:
    """Counts deltas (about a token each); empty deltas are ignored."""

    def __init__(self, max_tokens: int, max_ms: int) -> None:
        self.max_tokens = max(1, max_tokens)
        self.max_ms = max_ms
        self._pending: list[str] = []
        self._first_at_ms = 0
        self._emitted = False

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def add(self, delta: str, now_ms: int) -> str | None:
        """Take a delta; return a batch when it is the answer's first text, full, or due."""
        if not delta:
            return self.due(now_ms)
        if not self._emitted:
            self._emitted = True
            return delta
        if not self._pending:
            self._first_at_ms = now_ms
        self._pending.append(delta)
        if len(self._pending) >= self.max_tokens:
            return self.flush()
        return self.due(now_ms)

    def due(self, now_ms: int) -> str | None:
        """The pending batch if ``max_ms`` passed since its first delta, else None."""
        if self._pending and now_ms - self._first_at_ms >= self.max_ms:
            return self.flush()
        return None

    def flush(self) -> str | None:
        """Whatever is pending (at the end of an answer, or before a fallback)."""
        if not self._pending:
            return None
        batch = "".join(self._pending)
        self._pending.clear()
        return batch


def split_text(text: str, max_chars: int) -> list[str]:
    """A whole text as chunk-sized pieces (a cached answer replayed as chunks)."""
    size = max(1, max_chars)
    return [text[i : i + size] for i in range(0, len(text), size)]
