"""The engagement job killed (SIGKILL, its JVM too) mid-stream and started again from its checkpoint:
downstream (read_committed), every window and session is there exactly once and equals the
reference, though some were open, and some emitted but not yet committed, when it died."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from chatstream.settings import Settings
from tests.integration.engagement_reference import Event, expected_sessions, expected_windows
from tests.integration.platform import Component
from tests.integration.test_engagement_job import M, SESSION_GAP_S, Wire, job_env, ms, the_events, window_row


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def kill_hard(job: Component) -> None:
    """SIGKILL the job's JVM (the MiniCluster) and its Python process: no shutdown hook runs."""
    assert job.process is not None
    for pid in children(job.process.pid):
        os.kill(pid, signal.SIGKILL)
    job.process.send_signal(signal.SIGKILL)
    job.process.wait(timeout=30)


def test_a_job_killed_mid_stream_resumes_from_its_checkpoint_without_loss_or_duplicates(
    running_stack: Settings, request: pytest.FixtureRequest
) -> None:
    run = uuid.uuid4().hex[:8]
    # checkpoints 10 s apart: the kill, 0.5 s after the late event, almost always lands before
    # the checkpoint that would have taken it in
    env = {**job_env(run, int(time.time() * 1000)), "CHATSTREAM_ENGAGEMENT_CHECKPOINT_INTERVAL_S": "10",
           "CHATSTREAM_ENGAGEMENT_CHECKPOINT_DIR": (running_stack.state_dir / "flink" / f"test-{run}").as_uri()}  # fmt: skip
    first = Component(running_stack, "job", "engagement", env=env).start()

    def kill_if_running() -> None:
        if first.process is not None and first.process.poll() is None:
            kill_hard(first)

    request.addfinalizer(kill_if_running)
    first.wait_for_output("submitted", timeout_s=180)

    tenant = f"restart-{run}"
    wire = Wire(running_stack, tenant)
    request.addfinalizer(wire.close)
    now_ms = int(time.time() * 1000)
    base = now_ms - now_ms % 60_000 - 10 * 60_000
    wire.warm_up(f"test-engagement-{run}", base - 5 * 60 * M)
    on_time, _, _ = the_events(base)
    before = [e for e in on_time if e.ts_ms < base + 100 * M]
    during = [e for e in on_time if base + 100 * M <= e.ts_ms < base + 152 * M]
    after = [e for e in on_time if e.ts_ms >= base + 152 * M]
    windows = expected_windows(tenant, on_time)
    sessions = expected_sessions(tenant, on_time, round(SESSION_GAP_S * M))

    wire.send(before)
    wire.advance(base + 99 * M)  # minute 0 closes; nothing of ``during`` is late
    minute_0 = {i for i, w in windows.items() if w["window_end"] == base + 60 * M}
    seen = wire.wait_for("analytics.engagement.v1", lambda rs: minute_0 <= {str(r["event_id"]) for r in rs}, 120)
    assert minute_0 <= {str(r["event_id"]) for r in seen}, first.log_tail()
    # late: minute 0 is emitted and committed. Read again after the restart, it must be late
    # again (not a second, partial minute 0, nor dropped unreported by the restored windows)
    late = Event(base + 30 * M, "u9", "c9", action="MESSAGE_SENT", model="m-alpha")
    wire.send([late, *during])  # read, windowed, maybe emitted: not yet checkpointed when the job dies
    time.sleep(0.5)
    kill_hard(first)

    wire.send(after)  # while the job is down
    second = Component(running_stack, "job", "engagement", env=env).start()
    try:
        second.wait_for_output("resuming from checkpoint", timeout_s=180)
        second.wait_for_output("submitted", timeout_s=180)
        wire.advance(base + 330 * M)
        got = wire.wait_for("analytics.engagement.v1", lambda rs: len(rs) >= len(windows), 120)
        got_sessions = wire.wait_for("analytics.sessions.v1", lambda rs: len(rs) >= len(sessions), 60)
        got_late = wire.wait_for("analytics.late_events.v1", lambda rs: bool(rs), 30)
    finally:
        assert second.stop(timeout_s=60) == 0, second.log_tail()

    ids = [str(r["event_id"]) for r in got]
    assert len(ids) == len(set(ids)), "a window was committed twice"
    assert {str(r["event_id"]): window_row(r) for r in got} == windows
    session_ids = [str(r["event_id"]) for r in got_sessions]
    assert len(session_ids) == len(set(session_ids))
    assert {str(r["event_id"]): _session(r) for r in got_sessions} == sessions
    assert [str(r["event_id"]) for r in got_late] == [late.event_id], (got_late, second.log_tail())


def _session(r: dict[str, Any]) -> dict[str, Any]:
    return {"user_id": r["user_id"], "session_start": ms(r["session_start"]), "session_end": ms(r["session_end"]),
            "duration_ms": r["duration_ms"], "turns": r["turns"], "events": r["events"],
            "conversations": r["conversations"], "models": sorted(r["models"])}  # fmt: skip
