"""Deltas into chunks: the first text at once, then per N deltas or M ms."""

from __future__ import annotations

import pytest

from jobs.dispatch.batching import ChunkBatcher, split_text


@pytest.mark.parametrize(
    ("deltas", "expected"),
    [
        # (delta, at ms) -> what add returns
        ([("a", 0)], ["a"]),  # the first text goes out at once
        ([("a", 0), ("b", 1), ("c", 2), ("d", 3)], ["a", None, None, "bcd"]),  # 3 deltas
        ([("a", 0), ("b", 10), ("c", 70)], ["a", None, "bc"]),  # 60 ms since b: due
        ([("a", 0), ("", 5), ("b", 10)], ["a", None, None]),  # empty deltas do not count
        ([("a", 0), ("b", 10), ("", 60)], ["a", None, "b"]),  # ...but an empty one can notice a due batch
    ],
)
def test_add(deltas: list[tuple[str, int]], expected: list[str | None]) -> None:
    batcher = ChunkBatcher(max_tokens=3, max_ms=50)
    assert [batcher.add(delta, at_ms) for delta, at_ms in deltas] == expected


def test_due_and_flush() -> None:
    batcher = ChunkBatcher(max_tokens=10, max_ms=50)
    assert batcher.add("a", 0) == "a"
    assert batcher.add("b", 100) is None and batcher.add("c", 120) is None
    assert batcher.due(149) is None
    assert batcher.due(150) == "bc"
    assert batcher.due(500) is None and batcher.flush() is None
    assert batcher.add("d", 600) is None
    assert batcher.flush() == "d" and not batcher.pending


def test_split_text() -> None:
    assert split_text("abcdefg", 3) == ["abc", "def", "g"]
    assert split_text("", 3) == []
