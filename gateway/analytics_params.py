"""The analytics API's query parameters, checked before any SQL exists.

Pure: the caller's identity, the raw query parameters and the clock come in; a validated
``Scope`` (and the extras each endpoint takes) or an error naming the parameter comes out.

    InvalidParameterError   400 a parameter is malformed or out of range (``param`` names it)
    ForbiddenError          403 a tenant other than the token's, without the admin role
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.auth import Identity
from gateway.errors import ForbiddenError, InvalidParameterError

DEFAULT_RANGE_S = 3600
MAX_RANGE_S = 400 * 86400  # the engagement tables keep 400 days
MAX_POINTS = 1440
MIN_STEP_S = 60  # engagement windows are one minute long
DEFAULT_POINTS = 360  # a default step gives at most this many points
STEPS_S = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
MAX_TEXT = 200  # tenant and model names

TOP_WHAT = ("users", "models", "tenants")
TOP_BY = ("messages", "tokens", "cost", "requests")
MAX_LIMIT = 100
DEFAULT_RETENTION_DAYS = (1, 7, 30)
MAX_RETENTION_DAYS = 10
MAX_RETENTION_DAY = 365


@dataclass(frozen=True)
class Scope:
    """What every analytics query filters on: ``[from_ms, to_ms)``, the tenant (None: every
    tenant, admins only) and the model (None: every model)."""

    from_ms: int
    to_ms: int
    tenant: str | None
    model: str | None

    @property
    def range_s(self) -> float:
        return (self.to_ms - self.from_ms) / 1000


def parse_time(raw: str, param: str) -> int:
    """Epoch milliseconds from epoch seconds (``1795000000``, ``1795000000.5``) or ISO 8601
    (``2026-11-24T10:00:00Z``; no offset means UTC)."""
    text = raw.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds) or not 0 <= seconds < 32503680000:  # before year 3000
            raise InvalidParameterError(f"{param}={raw!r} is out of range (epoch seconds from 0 to year 3000)",
                                        param=param)  # fmt: skip
        return round(seconds * 1000)
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError as exc:
        raise InvalidParameterError(
            f"{param}={raw!r} is neither ISO 8601 (2026-11-24T10:00:00Z) nor epoch seconds", param=param
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment.year < 1970:
        raise InvalidParameterError(f"{param}={raw!r} is before 1970", param=param)
    return round(moment.timestamp() * 1000)


def tenant_scope(identity: Identity, tenant: str | None) -> str | None:
    """The tenant a query may read: the token's own unless the token is an admin's."""
    if identity.admin:
        return tenant
    if tenant is not None and tenant != identity.tenant_id:
        raise ForbiddenError(f"this token reads tenant {identity.tenant_id!r} only; tenant {tenant!r} "
                             "needs a token with the admin role")  # fmt: skip
    return identity.tenant_id


def _text(query: Mapping[str, str], name: str) -> str | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    if len(value) > MAX_TEXT or "\x00" in value:
        raise InvalidParameterError(f"{name} is not a {name} name (at most {MAX_TEXT} characters, no NUL)",
                                    param=name)  # fmt: skip
    return value


def parse_scope(identity: Identity, query: Mapping[str, str], now_ms: int) -> Scope:
    """``from``, ``to`` (default: the last hour), ``tenant`` and ``model``, checked."""
    to_ms = parse_time(query["to"], "to") if query.get("to") else now_ms
    from_ms = parse_time(query["from"], "from") if query.get("from") else to_ms - DEFAULT_RANGE_S * 1000
    if from_ms >= to_ms:
        raise InvalidParameterError(f"from ({from_ms / 1000:g}) must be before to ({to_ms / 1000:g})", param="from")
    if to_ms - from_ms > MAX_RANGE_S * 1000:
        raise InvalidParameterError(f"the range from..to is {(to_ms - from_ms) / 86_400_000:.1f} days; at most "
                                    f"{MAX_RANGE_S // 86400} days", param="from")  # fmt: skip
    tenant = tenant_scope(identity, _text(query, "tenant"))
    return Scope(from_ms, to_ms, tenant, _text(query, "model"))


def _integer(query: Mapping[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.strip().isdigit():
        raise InvalidParameterError(f"{name}={raw!r} is not a whole number", param=name)
    return int(raw)


def parse_step(query: Mapping[str, str], scope: Scope) -> int:
    """``step`` in seconds: a multiple of 60, at most 1,440 points over the range; by default
    the smallest of ``STEPS_S`` that draws at most 360 points."""
    if not query.get("step"):
        return next((s for s in STEPS_S if scope.range_s / s <= DEFAULT_POINTS), STEPS_S[-1])
    step = _integer(query, "step", 0)
    if step < MIN_STEP_S or step % MIN_STEP_S:
        raise InvalidParameterError(f"step={step} s: steps are whole minutes (60, 120, ...), the windows' length",
                                    param="step")  # fmt: skip
    points = math.ceil(scope.range_s / step)
    if points > MAX_POINTS:
        raise InvalidParameterError(
            f"step={step} s is too small for the range: {points} points, at most {MAX_POINTS}; use a step of at "
            f"least {math.ceil(scope.range_s / MAX_POINTS / MIN_STEP_S) * MIN_STEP_S} s", param="step")  # fmt: skip
    return step


def parse_choice(value: str | None, name: str, choices: tuple[str, ...], default: str | None = None) -> str:
    if value is None or value == "":
        if default is None:
            raise InvalidParameterError(f"{name} is required: one of {', '.join(choices)}", param=name)
        return default
    if value not in choices:
        raise InvalidParameterError(f"unknown {name} {value!r}; one of {', '.join(choices)}", param=name)
    return value


def parse_limit(query: Mapping[str, str]) -> int:
    limit = _integer(query, "limit", 10)
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidParameterError(f"limit={limit} is out of range 1..{MAX_LIMIT}", param="limit")
    return limit


def parse_days(query: Mapping[str, str]) -> tuple[int, ...]:
    """``days=1,7,30``: distinct whole days 1..365, at most 10, answered in ascending order."""
    raw = query.get("days")
    if raw is None or raw == "":
        return DEFAULT_RETENTION_DAYS
    parts = [p.strip() for p in raw.split(",")]
    if not all(p.isdigit() for p in parts):
        raise InvalidParameterError(f"days={raw!r} is not a comma-separated list of whole days (1,7,30)", param="days")
    days = sorted({int(p) for p in parts})
    if len(days) > MAX_RETENTION_DAYS or not 1 <= days[0] <= days[-1] <= MAX_RETENTION_DAY:
        raise InvalidParameterError(f"days={raw!r}: at most {MAX_RETENTION_DAYS} days, each 1..{MAX_RETENTION_DAY}",
                                    param="days")  # fmt: skip
    return tuple(days)
