"""The Flink configuration the job submits: its own options, and the user's over them."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatstream.settings import Settings
from jobs.engagement.app import flink_config
from jobs.engagement.config import EngagementSettings


def test_the_jobs_own_options(tmp_path: Path) -> None:
    config = flink_config(Settings(state_dir=tmp_path), EngagementSettings(parallelism=2), [tmp_path / "a.jar"], None)
    assert config["parallelism.default"] == "2"
    assert config["execution.checkpointing.mode"] == "EXACTLY_ONCE"
    assert config["pipeline.object-reuse"] == "true"
    assert config["execution.checkpointing.dir"] == (tmp_path / "flink" / "checkpoints").as_uri()
    assert "execution.state-recovery.path" not in config


def test_flink_options_from_the_environment_apply_over_the_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATSTREAM_ENGAGEMENT_FLINK_OPTIONS",
                       '{"pipeline.object-reuse": "false", "parallelism.default": "3"}')  # fmt: skip
    config = flink_config(Settings(state_dir=tmp_path), EngagementSettings(), [], "file:///cp/chk-7")
    assert config["pipeline.object-reuse"] == "false"
    assert config["parallelism.default"] == "3"
    assert config["execution.state-recovery.path"] == "file:///cp/chk-7"


def test_flink_options_that_are_not_a_json_object_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATSTREAM_ENGAGEMENT_FLINK_OPTIONS", "pipeline.object-reuse=true")
    with pytest.raises(ValueError, match="flink_options"):
        EngagementSettings()
