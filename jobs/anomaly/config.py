"""The anomaly job's settings: one frozen, typed object, loaded once in ``main()``.

Endpoints come from the project's ``Settings``; what only this job has is here, from
``CHATSTREAM_ANOMALY_*`` variables.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobs.anomaly.detector import DetectorConfig
from jobs.anomaly.incident import IncidentPolicy
from jobs.minute_series import MinuteSettings


class AnomalySettings(BaseSettings):
    """How the anomaly job runs; frozen once loaded."""

    model_config = SettingsConfigDict(env_prefix="CHATSTREAM_ANOMALY_", env_file=".env", extra="ignore", frozen=True)

    lateness_minutes: int = Field(
        default=0, ge=0, description="A series' minute closes when a point this many minutes after the next one arrives.",
    )  # fmt: skip
    idle_close_s: float = Field(
        default=90.0, gt=0, description="With no new point for this long, minutes close by the wall clock (silence counts).",
    )  # fmt: skip
    fill_minutes: int = Field(default=60, ge=0, description="A count's silent minutes are zeros for this long after its last record.")
    window_points: int = Field(default=6400, ge=10, description="Minutes the baseline's mean and deviation cover.")
    season_minutes: int | None = Field(default=None, ge=2, description="A season to expect (1440: daily); none by default.")
    warmup_points: int = Field(default=30, ge=0, description="A new series' first minutes, scored 0 (its warm-up).")
    model_weight: float = Field(default=0.1, ge=0, description="The isolation forest's weight in the score (0: baseline only).")
    open_at: float = Field(default=0.9999, gt=0, lt=1, description="The score at which an anomaly opens.")
    resolve_below: float = Field(default=0.999, gt=0, lt=1, description="A score below this is a calm minute.")
    resolve_after: int = Field(default=60, ge=1, description="Calm minutes in a row that resolve an open anomaly.")
    webhook_url: str | None = Field(default=None, description="POST each anomaly here (Slack-compatible JSON); retried.")
    partitions: int = Field(default=6, ge=1, description="Partitions of the job's series topic and state changelogs.")

    def detector(self) -> DetectorConfig:
        return DetectorConfig(window=self.window_points, season_points=self.season_minutes, warmup_points=self.warmup_points,
                              model_weight=self.model_weight)  # fmt: skip

    def policy(self) -> IncidentPolicy:
        return IncidentPolicy(self.open_at, self.resolve_below, self.resolve_after)

    def minutes(self) -> MinuteSettings:
        return MinuteSettings(self.partitions, self.lateness_minutes, self.idle_close_s, self.fill_minutes)
