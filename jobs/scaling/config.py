"""The scaling job's settings: one frozen, typed object, loaded once in ``main()``.

Endpoints come from the project's ``Settings``; what only this job has is here, from
``CHATSTREAM_SCALING_*`` variables. ``CHATSTREAM_SCALING_SERVICES`` is JSON, one entry per service
to scale, e.g. ``{"gateway": {"metric": "events_per_s", "capacity_per_replica": 20000,
"max_replicas": 8}}``; what an entry leaves out takes the defaults of ``ServiceTarget``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobs.minute_series import MinuteSettings
from jobs.scaling.forecaster import ForecasterConfig
from jobs.scaling.policy import PolicyConfig


class ServiceTarget(BaseModel):
    """One service's load metric (a name it publishes to ``ops.metrics.v1``, summed over its
    instances) and its replica policy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str = Field(min_length=1, description="The load to forecast, e.g. requests_per_s.")
    capacity_per_replica: float = Field(gt=0, description="Load one replica carries at 100 %.")
    horizon_minutes: int = Field(default=10, ge=5, le=30, description="How far ahead: replicas take this long to matter.")
    min_replicas: int = Field(default=1, ge=1)
    max_replicas: int = Field(default=20, ge=1)
    max_up_factor: float = Field(default=2.0, ge=1, description="At most this many times the replicas per step up.")
    max_down_factor: float = Field(default=2.0, ge=1, description="At most this many times fewer per step down.")
    scale_down_cooldown_s: float = Field(default=300.0, ge=0, description="No scale-down this soon after a change.")
    target_utilisation: float = Field(default=0.7, gt=0, le=1, description="Of the reactive fallback.")
    min_confidence: float = Field(default=0.5, ge=0, le=1, description="Below this, the reactive value decides.")
    headroom: float = Field(default=1.0, ge=1, description="Times the forecast's upper bound.")

    @model_validator(mode="after")
    def _consistent(self) -> ServiceTarget:
        self.policy()  # its checks (min_replicas <= max_replicas), as a validation error
        return self

    def policy(self) -> PolicyConfig:
        return PolicyConfig(
            capacity_per_replica=self.capacity_per_replica, min_replicas=self.min_replicas, max_replicas=self.max_replicas,
            max_up_factor=self.max_up_factor, max_down_factor=self.max_down_factor,
            scale_down_cooldown_s=self.scale_down_cooldown_s, target_utilisation=self.target_utilisation,
            min_confidence=self.min_confidence, headroom=self.headroom,
        )  # fmt: skip


DEFAULT_SERVICES = {
    # capacities from bench/RESULTS.md: a gateway worker ~24k events/s, the sinks 90-160k rows/s
    "gateway": ServiceTarget(metric="events_per_s", capacity_per_replica=20_000, max_replicas=16),
    "dispatch": ServiceTarget(metric="in_flight_streams", capacity_per_replica=1_000, max_replicas=16),
    "sink-clickhouse": ServiceTarget(metric="rows_per_s", capacity_per_replica=100_000, max_replicas=6),
    "sink-postgres": ServiceTarget(metric="rows_per_s", capacity_per_replica=60_000, max_replicas=6),
}


class ScalingSettings(BaseSettings):
    """How the scaling job runs; frozen once loaded."""

    model_config = SettingsConfigDict(env_prefix="CHATSTREAM_SCALING_", env_file=".env", extra="ignore", frozen=True)

    services: dict[str, ServiceTarget] = Field(default_factory=lambda: dict(DEFAULT_SERVICES),
                                               description="The services to scale (JSON).")  # fmt: skip
    season_minutes: int = Field(default=1440, ge=60, description="The load's season (a day).")
    history_minutes: int = Field(default=8 * 1440, ge=120, description="Minutes of load each service keeps (and fits on).")
    min_history_minutes: int = Field(
        default=2 * 1440, ge=60, description="Before this much history: seasonal-naive at confidence 0 (the reactive value).",
    )  # fmt: skip
    refit_every_s: float = Field(default=600.0, gt=0, description="Refit a service's forecaster this often (wall clock).")
    lateness_minutes: int = Field(default=0, ge=0, description="A minute closes when a point this many minutes after the next one arrives.")
    idle_close_s: float = Field(default=90.0, gt=0, description="With no new point for this long, minutes close by the wall clock.")
    partitions: int = Field(default=3, ge=1, description="Partitions of the job's series topic and state changelogs.")

    def minutes(self) -> MinuteSettings:
        return MinuteSettings(self.partitions, self.lateness_minutes, self.idle_close_s, fill_minutes=0)

    def forecaster(self, target: ServiceTarget) -> ForecasterConfig:
        return ForecasterConfig(step_s=60.0, horizon_s=target.horizon_minutes * 60.0, season_s=self.season_minutes * 60.0,
                                min_history_s=self.min_history_minutes * 60.0,
                                max_train_s=self.history_minutes * 60.0)  # fmt: skip
