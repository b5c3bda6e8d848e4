"""``infra up``'s repair decision for one service, against a fake service."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from infra.local.errors import ServiceStartError
from infra.local.stack import ensure
from infra.local.status import ServiceStatus


@dataclass
class FakeService:
    home: Path
    alive: bool = False
    answers: bool = True
    fails_with: Exception | None = None
    calls: list[str] = field(default_factory=list)
    name: str = "fake"

    @property
    def log_file(self) -> Path:
        return self.home / "fake.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "fake.pid"

    def fetch(self) -> None:
        self.calls.append("fetch")

    def start(self) -> None:
        self.calls.append("start")
        if self.fails_with is not None:
            raise self.fails_with
        self.alive = self.answers = True

    def stop(self) -> bool:
        self.calls.append("stop")
        was, self.alive = self.alive, False
        return was

    def running(self) -> bool:
        return self.alive

    def healthy(self) -> bool:
        self.calls.append("healthy")
        return self.answers

    def status(self) -> ServiceStatus:
        return ServiceStatus(self.name, True, self.alive, "fake://")


def test_a_healthy_service_is_left_alone(tmp_path: Path) -> None:
    service = FakeService(tmp_path, alive=True)
    assert ensure(service, health_timeout_s=1, on_step=lambda _: None) is None
    assert "stop" not in service.calls


def test_a_stopped_service_is_started_and_that_is_no_repair(tmp_path: Path) -> None:
    service = FakeService(tmp_path)
    assert ensure(service, health_timeout_s=1, on_step=lambda _: None) is None
    assert service.calls == ["start"]


def test_a_service_whose_process_died_is_started_and_reported(tmp_path: Path) -> None:
    service = FakeService(tmp_path)
    service.pid_file.write_text("4242\n")
    assert ensure(service, health_timeout_s=1, on_step=lambda _: None) == "its process had died"
    assert service.calls == ["start"]


def test_a_running_service_that_does_not_answer_is_stopped_then_started(tmp_path: Path) -> None:
    service = FakeService(tmp_path, alive=True, answers=False)
    steps: list[str] = []
    reason = ensure(service, health_timeout_s=0.3, on_step=steps.append)
    assert reason == "it ran but did not answer within 0s"
    assert service.calls[-2:] == ["stop", "start"] and service.calls.count("healthy") >= 2
    assert steps[:2] == ["checking fake", "restarting fake: it ran but did not answer within 0s"]


@pytest.mark.parametrize(
    "error",
    [
        psycopg.OperationalError("connection failed: FATAL:  the database system is shutting down\n\tdetail"),
        OSError(13, "Permission denied"),
    ],
)
def test_a_third_party_error_while_starting_is_one_line_naming_the_service_and_its_log(
    tmp_path: Path, error: Exception
) -> None:
    service = FakeService(tmp_path, fails_with=error)
    with pytest.raises(ServiceStartError) as info:
        ensure(service, health_timeout_s=1, on_step=lambda _: None)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("fake did not start (") and f"see {service.log_file}" in message
    assert "run `chatstream infra up` again" in message
