"""The engagement job's settings: one frozen, typed object, loaded once in ``main()``.

Endpoints, the state directory and the connector versions come from the project's ``Settings``;
what only this job has is here, from ``CHATSTREAM_ENGAGEMENT_*`` variables.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipelines import engagement as defaults

StartupMode = Literal["group-offsets", "earliest-offset", "latest-offset", "timestamp"]


class EngagementSettings(BaseSettings):
    """How the engagement job runs; frozen once loaded."""

    model_config = SettingsConfigDict(
        env_prefix="CHATSTREAM_ENGAGEMENT_", env_file=".env", extra="ignore", frozen=True
    )

    out_of_orderness_s: float = Field(
        default=defaults.OUT_OF_ORDERNESS_S, ge=0,
        description="How far behind the newest event time an event may arrive and still be on time.",
    )  # fmt: skip
    allowed_lateness_s: float = Field(
        default=defaults.ALLOWED_LATENESS_S, ge=0,
        description="Further lateness still counted in its window; the watermark trails by "
        "out-of-orderness + allowed lateness, so each window is emitted once, final.",
    )  # fmt: skip
    idle_timeout_s: float = Field(
        default=defaults.IDLE_TIMEOUT_S, gt=0,
        description="A partition with no event for this long stops holding the watermark back.",
    )  # fmt: skip
    session_gap_s: float = Field(
        default=defaults.SESSION_GAP_S, gt=0, description="Inactivity that ends a user's session."
    )
    checkpoint_interval_s: float = Field(
        default=defaults.CHECKPOINT_INTERVAL_S, gt=0,
        description="Checkpoint (and Kafka transaction commit) interval: outputs become visible "
        "to read_committed consumers at each checkpoint.",
    )  # fmt: skip
    parallelism: int = Field(default=1, ge=1, description="Parallelism of every operator.")
    jobmanager: str | None = Field(
        default=None,
        description="host:port of a Flink cluster's REST endpoint to submit to; unset = a local MiniCluster.",
    )
    group_id: str = Field(default=defaults.CONSUMER_GROUP, description="The sources' Kafka consumer group.")
    startup_mode: StartupMode = Field(
        default="group-offsets",
        description="Where a start without a checkpoint reads from (group-offsets: the group's "
        "committed offsets, else the earliest).",
    )  # fmt: skip
    startup_timestamp_ms: int | None = Field(
        default=None, description="With startup_mode=timestamp: the first record time to read."
    )
    checkpoint_dir: str | None = Field(
        default=None,
        description="Checkpoint storage URI; unset = <state>/flink/checkpoints. A start resumes "
        "from the newest checkpoint there.",
    )  # fmt: skip
    restore: bool = Field(default=True, description="Resume from the newest retained checkpoint.")
    flink_options: dict[str, str] = Field(
        default_factory=dict,
        description="Further Flink configuration, a JSON object of option to value (for example "
        '{"pipeline.object-reuse": "true"}), applied over the job\'s own.',
    )  # fmt: skip

    @property
    def watermark_delay_ms(self) -> int:
        return round((self.out_of_orderness_s + self.allowed_lateness_s) * 1000)
