"""When the runner flushes and when it waits: pure decisions over the loop's state (no clock,
no clients), with table tests."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FlushPolicy:
    max_rows: int
    max_interval_s: float
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 10.0
    max_in_flight: int = 2  # one flush being prepared, one being written
    stay_in_group_after_s: float = 5.0  # a wait this long: pause consumption, keep polling


@dataclass(frozen=True)
class LoopState:
    buffered: int  # records in the buffers
    uncommitted: bool  # positions past what was committed (records dead-lettered or skipped)
    in_flight: int  # flushes under way
    since_flush_s: float
    got_records: bool  # the last poll returned records
    draining: bool  # the last flush was by size: a backlog


def should_flush(state: LoopState, policy: FlushPolicy) -> bool:
    """Flush when the buffers are full, or when something is pending and it is due or the end of
    a backlog (nothing more came: no reason to wait); never more than ``max_in_flight`` at once."""
    if state.in_flight >= policy.max_in_flight:
        return False
    if state.buffered >= policy.max_rows:
        return True
    pending = state.buffered > 0 or state.uncommitted
    tail = state.draining and not state.got_records
    return pending and (state.since_flush_s >= policy.max_interval_s or tail)


def must_wait(state: LoopState, policy: FlushPolicy) -> bool:
    """Buffers full and no room for another flush: wait for the oldest before consuming more.
    With room, the loop flushes instead (waiting then would leave the writer idle while the
    next flush is prepared)."""
    return state.in_flight >= policy.max_in_flight and state.buffered >= 2 * policy.max_rows


def next_backoff(delay_s: float, policy: FlushPolicy) -> float:
    return min(delay_s * 2, policy.backoff_max_s)
