"""The engagement score of a user in one window, and the latency histogram's buckets.

    points = 2·messages_sent + conversations_created + regenerations + 2·feedback_up
             + feedback_down + sessions_started
    score  = 100 · points / (points + 10)

0 for no activity, 50 at 10 points (five messages), approaching 100; saturating, so one very
busy minute cannot dwarf the rest. The SQL computes the same in the same order of operations
(``jobs.engagement.sql.score_sql``).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from pipelines.engagement import LATENCY_BOUNDS_MS

HALF_POINTS = 10.0


def points(*, messages_sent: int, conversations_created: int, regenerations: int,
           feedback_up: int, feedback_down: int, sessions_started: int) -> int:  # fmt: skip
    return (2 * messages_sent + conversations_created + regenerations + 2 * feedback_up
            + feedback_down + sessions_started)  # fmt: skip


def score(points: int) -> float:
    return 100.0 * float(points) / (float(points) + HALF_POINTS)


def bucket(value_ms: float, bounds: Sequence[int] = LATENCY_BOUNDS_MS) -> int:
    """Index of the bucket holding ``value_ms``: <= bound i and > bound i-1; len(bounds) above all."""
    return bisect_left(bounds, value_ms)
