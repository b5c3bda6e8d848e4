"""The demo's history in event-time order, and how it is cut for posting."""

from __future__ import annotations

from typing import Any

from chatstream.cli.demo.driver import time_slices
from chatstream.cli.demo.traffic import Session, Stamped, TrafficModel, in_time_order

START = 1_700_000_000_000


def event(at_ms: int, n: int) -> dict[str, Any]:
    return {"type": "message_sent", "event_id": f"e{n}", "occurred_at": at_ms}


def test_history_is_in_event_time_order_and_ends_now() -> None:
    model = TrafficModel(seed=5, tenants=3, users_per_tenant=5, start_ms=START, span_ms=3_600_000)
    sessions = list(model.sessions(2_000))
    now = START + 3_600_000
    history = in_time_order(sessions, until_ms=now)
    times = [s.at_ms for s in history]
    assert times == sorted(times)
    assert times[-1] <= now
    every = [e for s in sessions for e in s.events]
    assert len(history) == sum(1 for e in every if e["occurred_at"] <= now)
    assert len(history) < len(every)  # sessions still going on at ``now`` are cut there
    # each event keeps the user whose session it is
    owner = {e["event_id"]: (s.tenant_id, s.user_id) for s in sessions for e in s.events}
    assert all(owner[s.event["event_id"]] == (s.tenant_id, s.user_id) for s in history)


def test_a_session_keeps_its_order_when_two_of_its_events_share_a_millisecond() -> None:
    session = Session("t", "u", [event(START, 1), event(START, 2), event(START - 5, 0)])
    assert [s.event["event_id"] for s in in_time_order([session], START)] == ["e0", "e1", "e2"]


def test_slices_span_less_than_the_skew_and_group_by_user_in_order() -> None:
    events = [Stamped("t", "u1", event(START, 1)), Stamped("t", "u2", event(START + 1_000, 2)),
              Stamped("t", "u1", event(START + 4_999, 3)), Stamped("t", "u1", event(START + 5_000, 4)),
              Stamped("t", "u2", event(START + 60_000, 5))]  # fmt: skip
    slices = list(time_slices(events, span_ms=5_000, batch_size=100))
    assert [[(user, [e["event_id"] for e in batch]) for _t, user, batch in s] for s in slices] == [
        [("u1", ["e1", "e3"]), ("u2", ["e2"])],
        [("u1", ["e4"])],
        [("u2", ["e5"])],
    ]


def test_a_users_slice_is_cut_into_batches() -> None:
    events = [Stamped("t", "u", event(START + i, i)) for i in range(250)]
    (only,) = list(time_slices(events, span_ms=5_000, batch_size=100))
    assert [len(batch) for _t, _u, batch in only] == [100, 100, 50]
