"""Bisecting a refused write down to the rows at fault."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from connectors.errors import RefusedWriteError
from connectors.narrowing import narrow


def store(bad: set[int], batch_limit: int | None = None) -> tuple[list[Sequence[int]], object]:
    attempts: list[Sequence[int]] = []

    def attempt(part: Sequence[int]) -> None:
        attempts.append(list(part))
        if batch_limit is not None and len(part) > batch_limit:
            raise RefusedWriteError("too many partitions for single INSERT block")
        found = [i for i in part if i in bad]
        if found:
            raise RefusedWriteError(f"row {found[0]} out of range")

    return attempts, attempt


@pytest.mark.parametrize(
    ("size", "bad"),
    [(1, {0}), (2, {1}), (10, {0, 9}), (100, {13}), (100, {1, 2, 3, 50, 99}), (7, set(range(7)))],
)
def test_exactly_the_bad_rows_are_refused_each_with_its_own_error(size: int, bad: set[int]) -> None:
    attempts, attempt = store(bad)
    refused = narrow(range(size), attempt, RefusedWriteError("whole"))  # type: ignore[arg-type]
    assert [i for i, _ in refused] == sorted(bad)
    if size > 1:
        assert all(f"row {i} out of range" in str(error) for i, error in refused)
    landed = {i for part in attempts for i in part if not (set(part) & bad)}
    assert landed == set(range(size)) - bad


def test_a_refusal_of_the_write_as_a_whole_disappears_in_smaller_parts() -> None:
    attempts, attempt = store(set(), batch_limit=100)
    assert narrow(range(200), attempt, RefusedWriteError("too many partitions")) == []  # type: ignore[arg-type]
    assert sorted(len(a) for a in attempts) == [100, 100]


def test_few_bad_rows_cost_few_attempts() -> None:
    attempts, attempt = store({4242})
    narrow(range(10_000), attempt, RefusedWriteError("whole"))  # type: ignore[arg-type]
    assert len(attempts) <= 2 * 14
