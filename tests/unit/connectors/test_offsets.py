"""Where each partition stands."""

from __future__ import annotations

from connectors.offsets import OffsetTracker


def test_offsets_already_stored_are_skipped_once_and_positions_move_past_them() -> None:
    tracker = OffsetTracker()
    tracker.assign(("t", 0), 10, {11, 12})
    assert [tracker.take(("t", 0), o) for o in (10, 11, 12, 13)] == [True, False, False, True]
    assert tracker.positions == {("t", 0): 14}
    assert tracker.take(("t", 0), 11) is True  # read again after a rewind: no longer skipped


def test_commits_only_move_assigned_partitions() -> None:
    tracker = OffsetTracker()
    tracker.assign(("t", 0), 0)
    tracker.take(("t", 0), 0)
    assert tracker.uncommitted()
    snapshot = tracker.snapshot()
    tracker.mark_committed(tracker.to_commit(snapshot))
    assert not tracker.uncommitted()
    tracker.forget([("t", 0)])
    assert tracker.to_commit({("t", 0): 5}) == {} and not tracker.rewind(("t", 0), 0)
