"""``chatstream run`` survives its parts: it sets the stack up itself; a sink SIGKILLed under
load is restarted by the supervisor (the gateway keeps serving) and resumes within seconds; and
PostgreSQL restarted (fast shutdown) under load costs nothing. Exact accounting of every request
by client-supplied event id."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from chatstream.lag import lag
from chatstream.settings import Settings
from infra.local.postgres import LocalPostgres
from pipelines.sinks import CONSUMER_GROUPS
from tests.integration.accounting import Traffic, assert_exactly_once_in_both_stores, retry_unknown
from tests.integration.platform import Component, wait_gateway_ready
from tests.integration.test_dead_letter_crash import delete_topic

UNUSED_TOPIC = "dlq.ops.metrics.v1"  # nothing reads or writes it in the tests


def children_of(pid: int) -> dict[int, str]:
    """The live child processes of ``pid`` and their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
    return found


def test_run_sets_up_restarts_a_killed_sink_and_loses_nothing(
    running_stack: Settings, clickhouse: Callable[..., Any], unique: str
) -> None:
    settings = running_stack
    delete_topic(settings.kafka_bootstrap_servers, UNUSED_TOPIC)
    run = Component(settings, "run", env={"CHATSTREAM_ACK_TIMEOUT_S": "5"}).start()
    traffic = Traffic(settings, f"faults-{unique}")
    during_restart = Traffic(settings, f"pgrestart-{unique}")
    try:
        run.wait_for_output("setting up", timeout_s=60)
        wait_gateway_ready(settings, run, timeout_s=120)
        assert UNUSED_TOPIC in AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers}).list_topics(timeout=10).topics
        run.wait_for_output("sink-postgres: ready", timeout_s=60)
        for job in ("dispatch", "anomaly", "scaling"):  # the faults hit a running platform, not one still starting
            run.wait_for_output(f"{job}: ready", timeout_s=180)

        traffic.start(2)
        time.sleep(3)
        assert run.process is not None
        (sink_pid,) = [pid for pid, cmd in children_of(run.process.pid).items() if "sink postgres" in cmd]
        os.kill(sink_pid, signal.SIGKILL)
        run.wait_for_output("sink-postgres: exited with status -9; restarting in 1s", timeout_s=10)
        run.wait_for_output("sink-postgres: restarted", timeout_s=10)
        restarted_at = time.monotonic()
        time.sleep(3)
        assert traffic.accepted_after(restarted_at), "the gateway stopped serving"
        traffic.finish()
        # static membership: the restarted sink is given its partitions back at once (it waited
        # ~45 s for the dead member's session before), so it catches up within seconds
        group = CONSUMER_GROUPS["postgres"]
        while (behind := lag(settings.kafka_bootstrap_servers, group, "chat.actions.v1")) and time.monotonic() < restarted_at + 25:
            time.sleep(0.5)
        assert not behind, f"the restarted sink is still {behind} behind:\n{run.log_tail()}"

        # PostgreSQL restarted with a fast shutdown while the PostgreSQL sink writes
        during_restart.start(2)
        time.sleep(2)
        postgres = LocalPostgres(settings)
        assert postgres.stop(), "PostgreSQL did not stop"
        time.sleep(2)
        postgres.start()
        back_at = time.monotonic()
        time.sleep(3)
        during_restart.finish()
        assert during_restart.accepted_after(back_at)
        assert run.running(), run.log_tail()
        assert run.output().count("sink-postgres: exited") == 1, "a store restart is not a crash"
    finally:
        traffic.finish()
        during_restart.finish()
        code = run.stop()
    assert code == 0, run.log_tail()
    for load in (traffic, during_restart):  # the gateway never needed PostgreSQL: all 202
        assert set(load.statuses()) == {202}, load.statuses()
        retry_unknown(load)
        assert_exactly_once_in_both_stores(load, clickhouse, drain=load is during_restart)
