"""The analytics API (``GET /v1/analytics/...``): engagement figures from ClickHouse, as JSON.

Each route verifies the bearer token, checks its parameters (``gateway.analytics_params``),
runs one statement (``gateway.analytics_sql``) through the store's thread pool
(``gateway.analytics_store``) and shapes the rows. A token reads its own tenant; a token with the
admin role reads every tenant, or the one ``tenant`` names.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from fastapi import FastAPI, Request, Response

from gateway import analytics_openapi as doc
from gateway import analytics_sql as sql
from gateway.analytics_params import (
    TOP_BY,
    TOP_WHAT,
    Scope,
    parse_choice,
    parse_days,
    parse_limit,
    parse_scope,
    parse_step,
)
from gateway.analytics_store import AnalyticsStore
from gateway.auth import Identity, TokenVerifier
from gateway.http import json_response

PREFIX = "/v1/analytics"


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def scope_json(scope: Scope) -> dict[str, Any]:
    return {"from": iso(scope.from_ms), "to": iso(scope.to_ms), "tenant": scope.tenant, "model": scope.model}


def ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def overview_json(scope: Scope, row: tuple[Any, ...]) -> dict[str, Any]:
    (conversations, messages, sessions, up, down, regenerations, stopped, requests, failed, prompt, completion,
     cost, latency, ttft, active_users, avg_session_ms) = row  # fmt: skip
    latency = list(latency) or [None, None, None]
    ttft = list(ttft) or [None, None, None]
    return {
        **scope_json(scope),
        "active_users": active_users, "conversations": conversations, "messages": messages, "sessions": sessions,
        "avg_session_s": None if avg_session_ms is None else avg_session_ms / 1000,
        "feedback_up": up, "feedback_down": down, "feedback_ratio": ratio(up, up + down),
        "regenerations": regenerations, "generations_stopped": stopped,
        "ai_requests": requests, "ai_failed": failed, "error_rate": ratio(failed, requests),
        "prompt_tokens": prompt, "completion_tokens": completion, "cost_usd": cost,
        "latency_p50_ms": latency[0], "latency_p95_ms": latency[1], "latency_p99_ms": latency[2],
        "ttft_p50_ms": ttft[0], "ttft_p95_ms": ttft[1],
    }  # fmt: skip


def buckets(scope: Scope, step_s: int) -> list[int]:
    """Every bucket start (epoch seconds) of the range: multiples of the step since the epoch."""
    first = scope.from_ms // 1000 // step_s * step_s
    return list(range(first, -(-scope.to_ms // 1000), step_s))


def timeseries_json(figure: str, scope: Scope, step_s: int, rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    spec = sql.FIGURES[figure]
    points: dict[str, dict[int, Any]] = {}
    for name, bucket, value in rows:
        points.setdefault(name, {})[int(bucket)] = value
    if spec.zero_filled:
        if spec.series == "'all'":
            points.setdefault("all", {})
        every = buckets(scope, step_s)
        points = {name: {b: values.get(b, 0) for b in every} for name, values in points.items()}
    series = [{"name": name, "points": [[b * 1000, v] for b, v in sorted(values.items())]}
              for name, values in sorted(points.items())]  # fmt: skip
    return {"figure": figure, "unit": spec.unit, "step_s": step_s, **scope_json(scope), "series": series}


def top_json(what: str, by: str, scope: Scope, rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    out = []
    for key, tenant, messages, requests, tokens, cost in rows:
        row = {"key": key, "messages": messages, "ai_requests": requests, "tokens": tokens, "cost_usd": cost}
        out.append({**row, "tenant": tenant} if what == "users" else row)
    return {"what": what, "by": by, **scope_json(scope), "rows": out}


def retention_json(scope: Scope, days: tuple[int, ...], rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    cohorts = [{"day": day.isoformat() if isinstance(day, date) else str(day), "users": users, "retained": list(retained)}
               for day, users, retained in rows]  # fmt: skip
    return {**scope_json(scope), "days": list(days), "cohorts": cohorts}


def anomaly_json(row: tuple[Any, ...]) -> dict[str, Any]:
    """An anomaly as a chart annotation: ``at`` (epoch ms, its first minute) and ``label``, then its details."""
    at, end, series, metric, severity, observed, expected, score, description, incident = row
    return {"at": int(at), "end": int(end), "label": f"{severity.lower()}: {series}", "series": series, "metric": metric,
            "severity": severity, "observed": observed, "expected": expected, "score": score, "description": description,
            "incident_id": incident}  # fmt: skip


def scaling_json(row: tuple[Any, ...]) -> dict[str, Any]:
    """A change of a service's desired replicas as a chart annotation."""
    at, service, before, desired, current, reason = row
    label = f"{service}: {desired} replicas" if before < 0 else f"{service}: {before} -> {desired} replicas"
    return {"at": int(at), "label": label, "service": service, "desired_replicas": desired, "current_replicas": current,
            "reason": reason}  # fmt: skip


def add_analytics_routes(app: FastAPI, verifier: TokenVerifier, store: AnalyticsStore,
                         clock: Callable[[], float] = time.time) -> None:  # fmt: skip
    """The analytics routes on ``app``; ``clock`` gives the default range's end."""

    def scope_of(request: Request) -> tuple[Identity, Scope]:
        identity = verifier.verify(request.headers.get("authorization"))
        return identity, parse_scope(identity, request.query_params, round(clock() * 1000))

    @app.get(f"{PREFIX}/overview", **doc.route("Engagement figures over the range.", doc.OVERVIEW))
    async def overview(request: Request) -> Response:
        _, scope = scope_of(request)
        (row,) = await store.rows(sql.overview(scope))
        return json_response(overview_json(scope, row))

    @app.get(f"{PREFIX}/timeseries/{{figure}}", **doc.route("One figure per step over the range.", doc.TIMESERIES,
                                                            extra=[doc.FIGURE, doc.STEP]))  # fmt: skip
    async def timeseries(request: Request) -> Response:  # path parameters read here: our 400s, not FastAPI's 422
        _, scope = scope_of(request)
        figure = parse_choice(request.path_params["figure"], "figure", tuple(sql.FIGURES))
        step_s = parse_step(request.query_params, scope)
        rows = await store.rows(sql.timeseries(figure, scope, step_s))
        return json_response(timeseries_json(figure, scope, step_s, rows))

    @app.get(f"{PREFIX}/top/{{what}}", **doc.route("The largest users, models or tenants.", doc.TOP,
                                                   extra=[doc.WHAT, doc.BY, doc.LIMIT]))  # fmt: skip
    async def top(request: Request) -> Response:
        _, scope = scope_of(request)
        what = parse_choice(request.path_params["what"], "what", TOP_WHAT)
        by = parse_choice(request.query_params.get("by"), "by", TOP_BY, default="messages")
        limit = parse_limit(request.query_params)
        rows = await store.rows(sql.top(what, by, scope, limit))
        return json_response(top_json(what, by, scope, rows))

    @app.get(f"{PREFIX}/funnel", **doc.route("The conversation-turn funnel (windowFunnel).", doc.FUNNEL))
    async def funnel(request: Request) -> Response:
        _, scope = scope_of(request)
        (row,) = await store.rows(sql.funnel(scope))
        steps = [{"name": name, "conversations": n} for name, n in zip(sql.FUNNEL_STEPS, row, strict=True)]
        return json_response({**scope_json(scope), "steps": steps})

    @app.get(f"{PREFIX}/retention", **doc.route("Day-N retention by first active day (retention()).", doc.RETENTION,
                                                extra=[doc.DAYS]))  # fmt: skip
    async def retention(request: Request) -> Response:
        _, scope = scope_of(request)
        days = parse_days(request.query_params)
        rows = await store.rows(sql.retention(scope, days))
        return json_response(retention_json(scope, days, rows))

    @app.get(f"{PREFIX}/dimensions", **doc.route("The tenants and models to filter by.", doc.DIMENSIONS))
    async def dimensions(request: Request) -> Response:
        _, scope = scope_of(request)
        ((tenants, models),) = await store.rows(sql.dimensions(scope))
        return json_response({**scope_json(scope), "tenants": list(tenants), "models": list(models)})

    @app.get(f"{PREFIX}/annotations", **doc.route("Anomalies and scaling signals to draw on the charts.",
                                                  doc.ANNOTATIONS))  # fmt: skip
    async def annotations(request: Request) -> Response:
        _, scope = scope_of(request)
        found = [anomaly_json(row) for row in await store.rows(sql.anomalies(scope))]
        changes = [] if scope.tenant is not None else [scaling_json(row) for row in await store.rows(sql.scaling_changes(scope))]
        return json_response({**scope_json(scope), "anomalies": found, "scaling": changes})
