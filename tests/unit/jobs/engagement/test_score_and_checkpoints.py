"""The engagement score, the histogram's buckets and which checkpoint a start resumes from."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.engagement.checkpoints import newest_checkpoint, pick_newest
from jobs.engagement.score import bucket, points, score
from jobs.engagement.sql import _interval
from pipelines.engagement import LATENCY_BOUNDS_MS


@pytest.mark.parametrize(("value", "index"), [(0, 0), (5, 0), (5.5, 1), (10, 1), (1000, 13), (120000, 25), (120001, 26)])
def test_a_value_falls_in_the_bucket_whose_bound_it_does_not_exceed(value: float, index: int) -> None:
    assert bucket(value) == index
    assert len(LATENCY_BOUNDS_MS) == 26


@pytest.mark.parametrize(("p", "expected"), [(0, 0.0), (10, 50.0), (30, 75.0)])
def test_the_score_saturates_towards_100(p: int, expected: float) -> None:
    assert score(p) == expected


def test_points_weigh_messages_and_thumbs_up_double() -> None:
    assert points(messages_sent=2, conversations_created=1, regenerations=1, feedback_up=1,
                  feedback_down=1, sessions_started=1) == 10  # fmt: skip


@pytest.mark.parametrize(("ms", "text"), [
    (15_000, "INTERVAL '0 00:00:15.000' DAY TO SECOND(3)"),
    (1_800_000, "INTERVAL '0 00:30:00.000' DAY TO SECOND(3)"),
    (90_061_001, "INTERVAL '1 01:01:01.001' DAY TO SECOND(3)"),
])  # fmt: skip
def test_intervals_are_exact_to_the_millisecond(ms: int, text: str) -> None:
    assert _interval(ms) == text


def test_the_newest_complete_checkpoint_is_resumed(tmp_path: Path) -> None:
    assert newest_checkpoint(tmp_path.as_uri()) is None
    for job, n in (("a", 3), ("b", 7)):
        (tmp_path / job / f"chk-{n}").mkdir(parents=True)
        (tmp_path / job / f"chk-{n}" / "_metadata").write_bytes(b"x")
    (tmp_path / "b" / "chk-8").mkdir()  # never completed: no _metadata
    found = newest_checkpoint(tmp_path.as_uri())
    assert found is not None and found.endswith(("/a/chk-3", "/b/chk-7"))
    assert pick_newest([(1.0, Path("/x/chk-2")), (1.0, Path("/y/chk-10"))]) == Path("/y/chk-10").as_uri()
    assert newest_checkpoint("s3://bucket/checkpoints") is None
