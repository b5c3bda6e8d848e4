"""The same engagement job, unchanged, on a real Flink cluster: a standalone session cluster
(JobManager + TaskManager processes from the distribution apache-flink ships) takes it through
``chatstream job engagement --jobmanager host:port``, and its outputs equal the reference."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from chatstream.settings import Settings
from tests.integration.flink_cluster import SessionCluster
from tests.integration.platform import Component
from tests.integration.test_engagement_job import check_against_the_reference, job_env


@pytest.fixture
def session_cluster(running_stack: Settings) -> Iterator[SessionCluster]:
    home = running_stack.state_dir / "flink" / f"session-{uuid.uuid4().hex[:6]}"
    cluster = SessionCluster(home, rest_port=running_stack.port_base + 88, rpc_port=running_stack.port_base + 89)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def test_the_job_submitted_to_a_session_cluster_runs_there_and_equals_the_reference(
    running_stack: Settings, session_cluster: SessionCluster, request: pytest.FixtureRequest
) -> None:
    run = uuid.uuid4().hex[:8]
    job = Component(running_stack, "job", "engagement", "--jobmanager", session_cluster.rest, env={
        **job_env(run, int(time.time() * 1000)),
        "CHATSTREAM_ENGAGEMENT_CHECKPOINT_DIR": (running_stack.state_dir / "flink" / f"test-{run}").as_uri(),
    }).start()  # fmt: skip
    try:
        job.wait_for_output("submitted", timeout_s=180)
        running = [j for j in session_cluster.jobs() if j["state"] == "RUNNING"]
        assert [j["name"] for j in running] == ["chatstream-engagement"], session_cluster.jobs()
        check_against_the_reference(running_stack, job, f"test-engagement-{run}", request)
    finally:
        assert job.stop(timeout_s=60) == 0, job.log_tail()
    deadline = time.monotonic() + 30  # Ctrl-C / SIGTERM cancels the job on the cluster
    while time.monotonic() < deadline and any(j["state"] == "RUNNING" for j in session_cluster.jobs()):
        time.sleep(1)
    assert {j["state"] for j in session_cluster.jobs()} == {"CANCELED"}
