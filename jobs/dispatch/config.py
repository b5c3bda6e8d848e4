"""The routing file: model aliases, the deployments behind them, tenants' limits, resilience.

``load_routing(path, environ)`` reads the TOML file (``pipelines/models.toml`` by default),
validates it into frozen models and resolves API keys from ``environ`` (the process's settings
pass it; nothing here reads ``os.environ``). Any fault is one :class:`RoutingConfigError` line
naming the file and the field, e.g.::

    pipelines/models.toml: aliases.chat.deployments: unknown deployment 'sim-x'

Tenants: ``[tenants.default]`` applies to every tenant without a table of its own; a tenant's
table overrides only the fields it names (``[tenants.acme] rpm = 60`` keeps the default TPM).
A limit of 0 means none.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from jobs.dispatch.errors import RoutingConfigError

Strategy = Literal["weighted", "lowest_latency", "lowest_cost"]
ProviderType = Literal["simulated", "openai"]
Name = Annotated[str, Field(min_length=1)]

DEFAULT_TENANT = "default"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SimulatedSettings(_Frozen):
    """Keyword arguments of ``SimulatedProvider``; the defaults pace a realistic local demo."""

    ttft_ms: float = Field(default=45.0, ge=0)
    tokens_per_s: float = Field(default=200.0, ge=0)
    answer_tokens: int | None = Field(default=None, ge=1)
    fail_after_tokens: int | None = Field(default=None, ge=0)
    failure_rate: float = Field(default=0.0, ge=0, le=1)
    failure: Literal["server_error", "rate_limited", "timeout"] = "server_error"
    retry_after_s: float | None = Field(default=None, ge=0)
    seed: int = 0


class DeploymentConfig(_Frozen):
    """One model at one provider endpoint. ``api_key`` is resolved from ``api_key_env``."""

    name: Name
    provider: ProviderType
    model: Name
    kind: str | None = Field(default=None, min_length=1, description="label in events")
    base_url: str | None = Field(default=None, min_length=1)
    api_key_env: str | None = Field(default=None, min_length=1)
    api_key: SecretStr | None = None
    continuation: Literal["prefill", "vllm-prefill", "instruct"] = "prefill"
    weight: float = Field(default=1.0, gt=0)
    input_price_per_1k: float = Field(default=0.0, ge=0)
    output_price_per_1k: float = Field(default=0.0, ge=0)
    rpm: int = Field(default=0, ge=0)
    tpm: int = Field(default=0, ge=0)
    simulated: SimulatedSettings | None = None

    @model_validator(mode="after")
    def _fields_of_its_provider(self) -> DeploymentConfig:
        if self.provider == "openai":
            if self.base_url is None:
                raise ValueError("base_url is required for provider = 'openai'")
            if self.simulated is not None:
                raise ValueError("a [simulated] table is only for provider = 'simulated'")
        else:
            for field in ("base_url", "api_key_env"):
                if getattr(self, field) is not None:
                    raise ValueError(f"{field} is only for provider = 'openai'")
        return self

    @property
    def provider_kind(self) -> str:
        """What events call the provider: ``kind`` when set (``vllm``), else ``provider``."""
        return self.kind or self.provider

    @property
    def price_per_1k(self) -> float:
        return self.input_price_per_1k + self.output_price_per_1k

    @property
    def simulation(self) -> SimulatedSettings:
        return self.simulated or SimulatedSettings()


class AliasConfig(_Frozen):
    """What clients put in ``model``: a strategy over deployments, then fallback aliases."""

    name: Name
    strategy: Strategy = "weighted"
    deployments: tuple[Name, ...] = Field(min_length=1)
    fallbacks: tuple[Name, ...] = ()
    description: str | None = None

    @model_validator(mode="after")
    def _no_repeats(self) -> AliasConfig:
        for field in ("deployments", "fallbacks"):
            names: tuple[str, ...] = getattr(self, field)
            if len(set(names)) != len(names):
                raise ValueError(f"{field} names a deployment or alias twice")
        if self.name in self.fallbacks:
            raise ValueError("an alias cannot fall back to itself")
        return self


class TenantLimits(_Frozen):
    """A tenant's limits; 0 = unlimited."""

    rpm: int = Field(default=0, ge=0)
    tpm: int = Field(default=0, ge=0)
    budget_usd_per_day: float = Field(default=0.0, ge=0)


class TenantTable(_Frozen):
    """A ``[tenants.X]`` table: fields left out come from ``[tenants.default]``."""

    rpm: int | None = Field(default=None, ge=0)
    tpm: int | None = Field(default=None, ge=0)
    budget_usd_per_day: float | None = Field(default=None, ge=0)


class ResilienceConfig(_Frozen):
    connect_timeout_s: float = Field(default=5.0, gt=0)
    first_token_timeout_s: float = Field(default=30.0, gt=0)
    total_timeout_s: float = Field(default=300.0, gt=0)
    max_retries: int = Field(default=2, ge=0)
    backoff_base_s: float = Field(default=0.2, ge=0)
    backoff_max_s: float = Field(default=5.0, ge=0)
    breaker_failures: int = Field(default=5, ge=1)
    breaker_open_s: float = Field(default=30.0, gt=0)
    latency_window_s: float = Field(default=300.0, gt=0)


class ChunkConfig(_Frozen):
    max_tokens: int = Field(default=16, ge=1)
    max_ms: int = Field(default=50, ge=0)


class CacheConfig(_Frozen):
    enabled: bool = False
    ttl_s: float = Field(default=300.0, gt=0)
    max_entries: int = Field(default=10_000, ge=1)


class RoutingConfig(_Frozen):
    """The whole routing file. Table keys become the ``name`` of aliases and deployments."""

    aliases: dict[Name, AliasConfig] = Field(min_length=1)
    deployments: dict[Name, DeploymentConfig] = Field(default_factory=dict)
    tenants: dict[Name, TenantTable] = Field(default_factory=dict)
    resilience: ResilienceConfig = ResilienceConfig()
    chunks: ChunkConfig = ChunkConfig()
    cache: CacheConfig = CacheConfig()

    @model_validator(mode="before")
    @classmethod
    def _names_from_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        named = dict(data)
        for section in ("aliases", "deployments"):
            tables = data.get(section)
            if isinstance(tables, dict):
                named[section] = {
                    key: {**table, "name": key} if isinstance(table, dict) else table
                    for key, table in tables.items()
                }
        return named

    @model_validator(mode="after")
    def _references(self) -> RoutingConfig:
        for alias in self.aliases.values():
            for name in alias.deployments:
                if name not in self.deployments:
                    raise ValueError(f"aliases.{alias.name}.deployments: unknown deployment {name!r}")
            for name in alias.fallbacks:
                if name not in self.aliases:
                    raise ValueError(f"aliases.{alias.name}.fallbacks: unknown alias {name!r}")
        cycle = _fallback_cycle(self.aliases)
        if cycle:
            raise ValueError(f"aliases: fallback cycle {' -> '.join(cycle)}")
        return self

    def tenant_limits(self, tenant_id: str) -> TenantLimits:
        """The limits in force for ``tenant_id``: its own table over the default's."""
        base = self.tenants.get(DEFAULT_TENANT, TenantTable())
        own = self.tenants.get(tenant_id, TenantTable())
        fields = {
            field: value
            for table in (base, own)
            for field, value in table.model_dump().items()
            if value is not None
        }
        return TenantLimits(**fields)


def _fallback_cycle(aliases: Mapping[str, AliasConfig]) -> list[str]:
    """A fallback cycle as the aliases along it (first one repeated at the end), or []."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str]:
        if name in path:
            return path[path.index(name) :] + [name]
        if name in done:
            return []
        for fallback in aliases[name].fallbacks:
            cycle = visit(fallback, path + [name])
            if cycle:
                return cycle
        done.add(name)
        return []

    for name in aliases:
        cycle = visit(name, [])
        if cycle:
            return cycle
    return []


def load_routing(path: Path, environ: Mapping[str, str] | None = None) -> RoutingConfig:
    """Read, validate and resolve the routing file; raise :class:`RoutingConfigError` (one line).
    ``environ`` holds the deployments' API keys; None (the gateway, which lists aliases only)
    leaves them unresolved."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RoutingConfigError(f"{path}: cannot read the routing file: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RoutingConfigError(f"{path}: not valid TOML: {_one_line(str(exc))}") from exc
    deployments = data.get("deployments")
    for name, table in deployments.items() if isinstance(deployments, dict) else ():
        if isinstance(table, dict) and "api_key" in table:
            raise RoutingConfigError(
                f"{path}: deployments.{name}.api_key: keys are not read from the file; "
                "set api_key_env to the name of an environment variable"
            )
    try:
        config = RoutingConfig.model_validate(data)
    except ValidationError as exc:
        raise RoutingConfigError(f"{path}: {describe(exc)}") from None
    return config if environ is None else _with_api_keys(config, environ, path)


def _with_api_keys(config: RoutingConfig, environ: Mapping[str, str], path: Path) -> RoutingConfig:
    resolved = dict(config.deployments)
    for name, deployment in config.deployments.items():
        if deployment.provider == "simulated" or deployment.api_key_env is None:
            continue
        key = environ.get(deployment.api_key_env, "")
        if not key:
            raise RoutingConfigError(
                f"{path}: deployments.{name}.api_key_env: environment variable "
                f"{deployment.api_key_env} is not set"
            )
        resolved[name] = deployment.model_copy(update={"api_key": SecretStr(key)})
    return config.model_copy(update={"deployments": resolved})


def describe(exc: ValidationError) -> str:
    """The first validation error as ``field.path: message`` (and how many more there are)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    where = ".".join(str(part) or '""' for part in first["loc"] if part != "[key]")
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] != "value_error" and not isinstance(first["input"], (dict, list)):
        message += f" (got {first['input']!r})"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return _one_line(f"{where}: {message}{more}" if where else f"{message}{more}")


def _one_line(text: str) -> str:
    return " ".join(text.split())
