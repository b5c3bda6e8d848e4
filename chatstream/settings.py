"""The one typed settings object of a chatstream process.

Loaded once in ``main()`` from ``CHATSTREAM_*`` environment variables (and an optional ``.env``
file) and passed down; nothing below ``main()`` reads ``os.environ``.

Every endpoint has a local default that ``chatstream infra up`` serves. Setting an endpoint
(``CHATSTREAM_KAFKA_BOOTSTRAP``, ``CHATSTREAM_REGISTRY_URL``, ``CHATSTREAM_POSTGRES_DSN``,
``CHATSTREAM_CLICKHOUSE_DSN``) points chatstream at an existing service instead, and
``infra up`` then leaves that component alone.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent

Component = Literal["postgres", "kafka", "registry", "clickhouse"]


class Settings(BaseSettings):
    """Process-wide configuration; frozen once loaded."""

    model_config = SettingsConfigDict(
        env_prefix="CHATSTREAM_", env_file=".env", extra="ignore", frozen=True
    )

    state_dir: Path = Field(
        default=REPO_ROOT / ".chatstream",
        description="Where the local services keep data, logs, pids and secrets.",
    )
    port_base: int = Field(
        default=19000,
        ge=1024,
        le=64000,
        description="Local ports: Kafka base+92, controller base+93, registry base+81, "
        "PostgreSQL base+432, ClickHouse server base+123.",
    )
    kafka_bootstrap: str | None = Field(
        default=None, description="Existing Kafka bootstrap servers; unset = the local broker."
    )
    registry_url: str | None = Field(
        default=None,
        description="Existing Confluent-API schema registry URL; unset = the local Apicurio.",
    )
    postgres_dsn: SecretStr | None = Field(
        default=None, description="Existing PostgreSQL DSN; unset = the local cluster."
    )
    postgres_password: SecretStr = Field(
        default=SecretStr("chatstream"),
        description="Password of the local cluster's `chatstream` superuser.",
    )
    clickhouse_dsn: str | None = Field(
        default=None,
        description="ClickHouse server DSN (http://user:pass@host:8123/db); "
        "unset = the local ClickHouse in the state directory.",
    )
    kafka_version: str = Field(default="4.1.1", description="Apache Kafka release to run locally.")
    apicurio_version: str = Field(
        default="3.0.9", description="Apicurio Registry release to run locally."
    )
    flink_kafka_connector_version: str = Field(
        default="5.0.0-2.2", description="Flink's Kafka SQL connector (for the installed apache-flink 2.2)."
    )
    flink_format_version: str = Field(
        default="2.2.0", description="Flink's avro-confluent SQL format (flink-sql-avro-confluent-registry)."
    )
    java: str = Field(default="java", description="The Java 17+ executable for Kafka and Apicurio.")
    maven: str = Field(default="mvn", description="The Maven executable that fetches the jars.")
    jvm_heap_mb: int = Field(default=512, ge=128, description="Heap of each local JVM service.")
    start_timeout_s: float = Field(
        default=120.0, gt=0, description="How long `infra up` waits for each service."
    )

    instance: str = Field(
        default_factory=socket.gethostname,
        description="This process's stable name among replicas of the same component: a sink's "
        "Kafka group.instance.id and the gateway's transactional.id derive from it, so a restarted "
        "process takes its predecessor's place at once. Give each replica on one host its own.",
    )

    # -- gateway -----------------------------------------------------------------------------
    gateway_host: str = Field(default="127.0.0.1", description="Gateway listen address.")
    gateway_port: int | None = Field(
        default=None, description="Gateway port; unset = port base + 80 (19080)."
    )
    gateway_workers: int = Field(
        default=1, ge=1,
        description="Gateway worker processes sharing the port; per-tenant rate limits are "
        "split evenly among them (each enforces its share).",
    )  # fmt: skip
    max_batch_events: int = Field(default=1000, ge=1, description="Most events in one request.")
    max_event_age_days: int = Field(
        default=30, ge=1,
        description="How far in the past an event's occurred_at may be; older is refused (422). "
        "Keep it within the stores' shortest retention (PostgreSQL's chat_events: 30 days).",
    )  # fmt: skip
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest request body, in bytes."
    )
    max_header_bytes: int = Field(
        default=16 * 1024, ge=4096,
        description="Largest request line and headers together; more is refused (431) as it arrives.",
    )  # fmt: skip
    request_read_timeout_s: float = Field(
        default=15.0, gt=0,
        description="How long a client may take to send a whole request (headers and body); "
        "slower is answered 408 and the connection closed.",
    )  # fmt: skip
    ack_timeout_s: float = Field(
        default=10.0, gt=0, description="How long a request waits for Kafka's acknowledgement."
    )
    jwt_algorithms: list[str] = Field(
        default=["HS256"], description="Accepted JWT algorithms (never taken from the token)."
    )
    jwt_secret: SecretStr | None = Field(
        default=None,
        description="HS256 secret; unset = generated once in <state>/auth/jwt-secret.",
    )
    jwks_url: str | None = Field(
        default=None, description="JWKS URL of an OIDC issuer (RS256/ES256 keys) for production."
    )
    jwt_audience: str = Field(default="chatstream", description="Required `aud` claim.")
    jwt_issuer: str = Field(default="chatstream-local", description="Required `iss` claim.")
    jwt_tenant_claim: str = Field(default="tenant_id", description="Claim holding the tenant.")
    rate_limit_events_per_s: float = Field(
        default=20000.0, gt=0, description="Per-tenant sustained event rate."
    )
    rate_limit_burst: float = Field(default=40000.0, gt=0, description="Per-tenant burst, events.")

    analytics_timeout_s: float = Field(
        default=10.0, gt=0,
        description="Longest an analytics API query may run in ClickHouse; beyond, 503.",
    )  # fmt: skip
    analytics_max_clients: int = Field(
        default=4, ge=1,
        description="ClickHouse clients (and threads) per gateway worker for analytics queries: at most this many "
        "queries of one worker run at once, the others wait.",
    )  # fmt: skip

    # -- chat API and dispatch --------------------------------------------------------------
    models_file: Path = Field(
        default=REPO_ROOT / "pipelines" / "models.toml",
        description="The routing config: model aliases, deployments, tenant limits (gateway and dispatch job).",
    )
    chat_first_token_timeout_s: float = Field(
        default=30.0, gt=0,
        description="How long a chat completion waits for its answer to start; then 504 (the dispatch "
        "job or Kafka is not answering).",
    )  # fmt: skip
    chat_idle_timeout_s: float = Field(
        default=60.0, gt=0,
        description="Longest silence of an answer once it started; then the stream ends with an error.",
    )  # fmt: skip
    chat_total_timeout_s: float = Field(
        default=600.0, gt=0,
        description="The longest a chat completion may take in all (its deadline_at; the job starts no "
        "answer after it).",
    )  # fmt: skip
    reply_partition_base: int = Field(
        default=0, ge=0,
        description="This gateway instance's first partition of ai.responses.v1: worker w reads "
        "base + w (modulo the partitions). Give each gateway instance its own range.",
    )  # fmt: skip
    dispatch_max_in_flight: int = Field(
        default=2000, ge=1,
        description="Answers one dispatch worker streams at once; beyond, it stops reading requests.",
    )  # fmt: skip

    # -- sinks -------------------------------------------------------------------------------
    sink_batch_rows: int = Field(default=10000, ge=1, description="Rows per sink flush.")
    sink_batch_interval_s: float = Field(
        default=1.0, gt=0, description="Longest a row waits in a sink buffer."
    )
    sink_stall_after_s: float = Field(
        default=60.0, gt=0,
        description="A sink with work waiting that made no progress this long reports not ready.",
    )  # fmt: skip
    ops_metrics_interval_s: float = Field(
        default=10.0, ge=0,
        description="Every component publishes its load to ops.metrics.v1 this often; 0 turns it off.",
    )  # fmt: skip
    sink_health_port: int | None = Field(
        default=None,
        description="Port of a sink's /metrics, /healthz and /readyz; unset = port base + 85 "
        "(ClickHouse sink) or + 86 (PostgreSQL sink).",
    )
    job_web_port: int | None = Field(
        default=None,
        description="Port of a Faust job's pages (/metrics, /healthz, /readyz; the scaling job's /v1/scaling); "
        "unset = port base + 87 (dispatch), + 88 (anomaly) or + 89 (scaling). Set it to run a second replica on one host.",
    )

    @field_validator("state_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        """Servers run with their own working directories: a relative path would move."""
        return value.expanduser().resolve()

    # -- derived endpoints -------------------------------------------------------------------
    @property
    def kafka_port(self) -> int:
        return self.port_base + 92

    @property
    def kafka_controller_port(self) -> int:
        return self.port_base + 93

    @property
    def registry_port(self) -> int:
        return self.port_base + 81

    @property
    def postgres_port(self) -> int:
        return self.port_base + 432

    @property
    def clickhouse_port(self) -> int:
        return self.port_base + 123

    @property
    def gateway_listen_port(self) -> int:
        return self.gateway_port or self.port_base + 80

    def sink_port(self, kind: str) -> int:
        """Where ``chatstream sink <kind>`` serves its metrics and readiness."""
        return self.sink_health_port or self.port_base + {"clickhouse": 85, "postgres": 86}[kind]

    @property
    def dispatch_port(self) -> int:
        """Where ``chatstream job dispatch`` serves its metrics and readiness."""
        return self.job_web_port or self.port_base + 87

    @property
    def anomaly_port(self) -> int:
        """Where ``chatstream job anomaly`` serves its metrics and readiness."""
        return self.job_web_port or self.port_base + 88

    @property
    def scaling_port(self) -> int:
        """Where ``chatstream job scaling`` serves its metrics, readiness and ``/v1/scaling/{service}``."""
        return self.job_web_port or self.port_base + 89

    @property
    def gateway_url(self) -> str:
        return f"http://{self.gateway_host}:{self.gateway_listen_port}"

    @property
    def kafka_bootstrap_servers(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def schema_registry_url(self) -> str:
        return self.registry_url or f"http://127.0.0.1:{self.registry_port}/apis/ccompat/v7"

    @property
    def registry_admin_url(self) -> str | None:
        """Apicurio's own v3 API, where global rules live; None for an external registry."""
        if self.registry_url:
            return None
        return f"http://127.0.0.1:{self.registry_port}/apis/registry/v3"

    def postgres_url(self, database: str = "chatstream") -> str:
        if self.postgres_dsn is not None:
            return self.postgres_dsn.get_secret_value()
        password = self.postgres_password.get_secret_value()
        return f"postgresql://chatstream:{password}@127.0.0.1:{self.postgres_port}/{database}"

    @property
    def clickhouse_url(self) -> str:
        if self.clickhouse_dsn:
            return self.clickhouse_dsn
        return f"http://127.0.0.1:{self.clickhouse_port}/"

    def is_local(self, component: Component) -> bool:
        """Whether ``infra up`` runs this component here (no external endpoint configured)."""
        external = {
            "kafka": self.kafka_bootstrap,
            "registry": self.registry_url,
            "postgres": self.postgres_dsn,
            "clickhouse": self.clickhouse_dsn,
        }[component]
        return external is None

    def redacted_postgres_url(self, database: str = "chatstream") -> str:
        return redact_url(self.postgres_url(database))


def redact_url(url: str) -> str:
    """``scheme://user:secret@host`` -> ``scheme://user:***@host`` for logs and tables."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; ``overrides`` win (used by tests and the CLI's options)."""
    return Settings(**overrides)  # type: ignore[arg-type]
