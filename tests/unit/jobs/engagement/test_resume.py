"""The restore floor of a resumed engagement job, and how the job's filter uses it."""

from __future__ import annotations

import pytest

from jobs.engagement.resume import floor_ms
from jobs.engagement.sql import on_time_view

GAP = 90_000


@pytest.mark.parametrize(
    ("windows", "sessions", "expected"),
    [
        ([], [], None),  # nothing committed: no floor
        ([60_000, 120_000], [], 120_000),  # the newest emitted window's end
        ([60_000], [100_000], 190_000),  # a session's last event plus the gap, when later
        ([300_000], [100_000], 300_000),
        ([], [5_000], 95_000),
    ],
)
def test_the_floor_is_the_newest_point_the_watermark_surely_passed(
    windows: list[int], sessions: list[int], expected: int | None
) -> None:
    assert floor_ms(windows, sessions, GAP) == expected


def test_without_a_floor_the_filter_is_the_watermark_alone() -> None:
    view = on_time_view(None)
    assert "CURRENT_WATERMARK(ts) AS watermark_at" in view
    assert "TO_TIMESTAMP_LTZ" not in view


def test_a_floor_holds_the_filter_up_until_the_watermark_passes_it() -> None:
    view = on_time_view(1_700_000_060_000)
    assert "TO_TIMESTAMP_LTZ(1700000060000, 3)" in view
    assert "CURRENT_WATERMARK(ts) IS NULL OR CURRENT_WATERMARK(ts) <" in view
