"""When the runner flushes and when it waits: the pure decisions, as tables."""

from __future__ import annotations

import pytest

from connectors.policy import FlushPolicy, LoopState, must_wait, should_flush

POLICY = FlushPolicy(max_rows=100, max_interval_s=1.0)


def state(buffered: int = 0, uncommitted: bool = False, in_flight: int = 0, since_flush_s: float = 0.0,
          got_records: bool = True, draining: bool = False) -> LoopState:  # fmt: skip
    return LoopState(buffered, uncommitted, in_flight, since_flush_s, got_records, draining)


@pytest.mark.parametrize(
    ("loop", "flush"),
    [
        (state(), False),  # nothing at all
        (state(buffered=100), True),  # full
        (state(buffered=250, in_flight=2), False),  # full, but two flushes under way already
        (state(buffered=5), False),  # a trickle, not due yet
        (state(buffered=5, since_flush_s=1.0), True),  # due
        (state(uncommitted=True, since_flush_s=1.0), True),  # only dead letters or skips to commit
        (state(buffered=5, draining=True, got_records=False), True),  # the tail of a backlog
        (state(buffered=5, draining=True, got_records=True), False),  # more is coming
        (state(buffered=0, draining=True, got_records=False), False),  # nothing left to flush
    ],
)
def test_should_flush(loop: LoopState, flush: bool) -> None:
    assert should_flush(loop, POLICY) is flush


@pytest.mark.parametrize(
    ("loop", "wait"),
    [
        (state(buffered=200, in_flight=2), True),  # full, and no room for another flush
        (state(buffered=199, in_flight=2), False),  # room in the buffers
        (state(buffered=500, in_flight=1), False),  # room for a flush: flush, do not wait
        (state(buffered=500), False),
    ],
)
def test_must_wait_only_with_full_buffers_and_no_room_for_a_flush(loop: LoopState, wait: bool) -> None:
    assert must_wait(loop, POLICY) is wait
