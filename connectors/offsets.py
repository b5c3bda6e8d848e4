"""Where each assigned partition stands: the next offset taken, the next offset committed, and
the offsets a store already holds past its resume point (skipped once, then forgotten)."""

from __future__ import annotations

from connectors.sink import TopicPartition


class OffsetTracker:
    def __init__(self) -> None:
        self.positions: dict[TopicPartition, int] = {}
        self.committed: dict[TopicPartition, int] = {}
        self._skip: dict[TopicPartition, set[int]] = {}

    def assign(self, key: TopicPartition, start: int | None, skip: set[int] | None = None) -> None:
        """A partition starts at ``start`` (None: wherever Kafka starts it); ``skip`` are offsets
        already stored."""
        if start is not None:
            self.positions[key] = start
        if skip:
            self._skip[key] = set(skip)

    def forget(self, keys: list[TopicPartition]) -> None:
        for key in keys:
            self.positions.pop(key, None)
            self.committed.pop(key, None)
            self._skip.pop(key, None)

    def take(self, key: TopicPartition, offset: int) -> bool:
        """Record ``offset`` as consumed; False when the store already holds it (skip it)."""
        self.positions[key] = offset + 1
        if self._skip:
            skip = self._skip.get(key)
            if skip is not None and offset in skip:
                skip.discard(offset)
                if not skip:
                    del self._skip[key]
                return False
        return True

    def rewind(self, key: TopicPartition, offset: int) -> bool:
        """Back to ``offset`` (a write given up); False for a partition no longer assigned."""
        if key not in self.positions:
            return False
        self.positions[key] = offset
        return True

    def snapshot(self) -> dict[TopicPartition, int]:
        return dict(self.positions)

    def uncommitted(self) -> bool:
        return any(self.committed.get(k) != v for k, v in self.positions.items())

    def to_commit(self, positions: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        """Those of ``positions`` that move a still-assigned partition's committed offset."""
        return {k: v for k, v in positions.items() if k in self.positions and self.committed.get(k) != v}

    def mark_committed(self, positions: dict[TopicPartition, int]) -> None:
        self.committed.update(positions)
