"""The circuit breaker's state machine, as a table of steps at given times."""

from __future__ import annotations

import pytest

from jobs.dispatch.breaker import BreakerState, CircuitBreaker

CLOSED, OPEN, HALF = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN

# (action, now_s, expected state after it, whether an attempt is allowed after it)
Step = tuple[str, float, BreakerState, bool]


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param([("fail", 0, CLOSED, True), ("fail", 1, CLOSED, True), ("fail", 2, OPEN, False)],
                     id="opens-after-3-consecutive-failures"),
        pytest.param([("fail", 0, CLOSED, True), ("fail", 1, CLOSED, True), ("ok", 2, CLOSED, True),
                      ("fail", 3, CLOSED, True), ("fail", 4, CLOSED, True)], id="a-success-resets-the-count"),
        pytest.param([("fail", 0, CLOSED, True)] * 2 + [("fail", 10, OPEN, False), ("wait", 39.9, OPEN, False),
                      ("wait", 40, HALF, True)], id="half-open-after-open_s"),
        pytest.param([("fail", 0, CLOSED, True)] * 2 + [("fail", 10, OPEN, False), ("acquire", 40, HALF, False),
                      ("refused", 41, HALF, False)], id="exactly-one-probe"),
        pytest.param([("fail", 0, CLOSED, True)] * 2 + [("fail", 10, OPEN, False), ("acquire", 40, HALF, False),
                      ("ok", 41, CLOSED, True)], id="probe-success-closes"),
        pytest.param([("fail", 0, CLOSED, True)] * 2 + [("fail", 10, OPEN, False), ("acquire", 40, HALF, False),
                      ("fail", 41, OPEN, False), ("wait", 70.9, OPEN, False), ("wait", 71, HALF, True)],
                     id="probe-failure-reopens-for-another-open_s"),
        pytest.param([("fail", 0, CLOSED, True)] * 2 + [("fail", 10, OPEN, False), ("acquire", 40, HALF, False),
                      ("release", 41, HALF, True)], id="a-probe-without-verdict-frees-the-probe"),
        pytest.param([("acquire", 0, CLOSED, True)] * 5, id="closed-lets-everything-through"),
        pytest.param([("fail", 0, CLOSED, True)] * 2 + [("fail", 0, OPEN, False), ("refused", 10, OPEN, False)], id="open-refuses"),
    ],
)
def test_breaker(steps: list[Step]) -> None:
    breaker = CircuitBreaker(failures_to_open=3, open_s=30)
    for action, now_s, state, allowed in steps:
        if action == "fail":
            breaker.record_failure(now_s)
        elif action == "ok":
            breaker.record_success(now_s)
        elif action == "acquire":
            assert breaker.acquire(now_s)
        elif action == "refused":
            assert not breaker.acquire(now_s)
        elif action == "release":
            breaker.release()
        assert breaker.state(now_s) is state, (action, now_s)
        assert breaker.allows(now_s) is allowed, (action, now_s)


def test_reopens_in_s_counts_down_while_open() -> None:
    breaker = CircuitBreaker(failures_to_open=1, open_s=30)
    assert breaker.reopens_in_s(0) is None
    breaker.record_failure(100)
    assert breaker.reopens_in_s(110) == pytest.approx(20)
    assert breaker.reopens_in_s(130) is None


def test_an_impossible_breaker_is_refused() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failures_to_open=0, open_s=30)
