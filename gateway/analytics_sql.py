"""The analytics API's SQL: one statement per question, built from validated parameters.

Pure: every value a caller chose travels as a ClickHouse server-side parameter (``{name:Type}``),
never inside the SQL text; the text varies only by which of our own fragments it combines.
Where each figure comes from:

- per-minute figures, sums and percentiles: ``engagement_windows`` (the engagement job's output)
  FINAL, ``tenant`` rows, or ``model`` rows when a model is chosen; a window counts when its start
  is in ``[from, to)``. Percentiles: the windows' latency / TTFT histograms summed bucket by bucket,
  then ``quantilesExactWeighted`` over the buckets' upper bounds, the last
  (open) bucket standing at the largest value seen, and no percentile above that maximum.
- active users: ``uniqExact`` over the ``user`` rows (exact over any step); with a model chosen,
  over ``ai_requests`` (the users that model answered), as user rows carry no model.
- average session length: ``engagement_sessions`` FINAL, sessions starting in the range.
- the funnel: ``windowFunnel`` per conversation created in the range, over its ``chat_events``.
- retention: ``retention`` over ``user_active_days`` (a materialized view of ``chat_events``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.analytics_params import Scope
from pipelines.engagement import LATENCY_BOUNDS_MS  # bucket i: <= bound i and > bound i-1; one more above

BOUNDS = [float(b) for b in LATENCY_BOUNDS_MS]
OVERVIEW_LEVELS = (0.5, 0.95, 0.99)
FUNNEL_STEPS = ("created", "1st message", "2nd message", "3rd+ message", "feedback given")
FUNNEL_WINDOW_MS = 400 * 86_400_000  # the range bounds the steps, not the funnel's window


@dataclass(frozen=True)
class Statement:
    sql: str
    parameters: dict[str, Any]

    @classmethod
    def of(cls, sql: str, parameters: dict[str, Any]) -> Statement:
        """The statement with the parameters its placeholders name, and only those."""
        return cls(sql, {name: value for name, value in parameters.items() if f"{{{name}:" in sql})


@dataclass(frozen=True)
class Figure:
    """A time series the API draws: its unit, how a bucket's value is computed, by what it splits."""

    unit: str
    value: str  # an aggregate over the windows of one bucket (and series)
    series: str = "'all'"  # the expression naming a point's series
    dimension: str | None = None  # which window rows; None: model rows with a model chosen, else tenant rows
    zero_filled: bool = True  # counts and sums: buckets without data are 0, not absent


def _percentile(hist: str, max_ms: str, level: float) -> str:
    """The ``level`` percentile of summed histograms: NULL when they hold no value."""
    weighted = f"arrayReduce('quantilesExactWeighted({level})', arrayPushBack({{bounds:Array(Float64)}}, {max_ms}), {hist})"
    return f"if(arraySum({hist}) = 0, NULL, least(arrayElement({weighted}, 1), {max_ms}))"


def _summed(kind: str) -> str:
    """The ``kind`` histograms of the rows summed bucket by bucket: one sum per element, which
    ClickHouse runs 2-3x faster than ``sumForEach``."""
    return "[" + ", ".join(f"sum({kind}_hist[{i}])" for i in range(1, len(LATENCY_BOUNDS_MS) + 2)) + "]"


def _series_percentile(kind: str, level: float) -> str:
    return _percentile(_summed(kind), f"max({kind}_max_ms)", level)


# distinct users: the 64-bit hash of (tenant, user) is exact in practice (a collision among a
# million users has odds of 1 in 10^7) and counts 5x faster than the strings
USERS = "uniqExact(cityHash64(tenant_id, user_id))"


FIGURES: dict[str, Figure] = {
    "active_users": Figure("users", USERS, dimension="user"),
    "conversations": Figure("conversations", "sum(conversations_created)"),
    "messages": Figure("messages", "sum(messages_sent)"),
    "sessions": Figure("sessions", "sum(sessions_started)"),
    "feedback_ratio": Figure("ratio", "sum(feedback_up) / nullIf(sum(feedback_up) + sum(feedback_down), 0)",
                             zero_filled=False),  # fmt: skip
    "regenerations": Figure("regenerations", "sum(regenerations)"),
    "ai_requests": Figure("requests", "sum(ai_requests)"),
    "error_rate": Figure("ratio", "sum(ai_failed) / nullIf(sum(ai_requests), 0)", zero_filled=False),
    "tokens": Figure("tokens", "sum(prompt_tokens + completion_tokens)"),
    "cost": Figure("usd", "sum(cost_usd)"),
    "latency_p50": Figure("ms", _series_percentile("latency", 0.5), zero_filled=False),
    "latency_p95": Figure("ms", _series_percentile("latency", 0.95), zero_filled=False),
    "ttft_p50": Figure("ms", _series_percentile("ttft", 0.5), zero_filled=False),
    "ttft_p95": Figure("ms", _series_percentile("ttft", 0.95), zero_filled=False),
    "model_mix": Figure("ratio", "sum(ai_requests) / nullIf(sum(sum(ai_requests)) OVER (PARTITION BY bucket), 0)",
                        series="assumeNotNull(model)", dimension="model", zero_filled=False),  # fmt: skip
    "tokens_by_model": Figure("tokens", "sum(prompt_tokens + completion_tokens)", series="assumeNotNull(model)",
                              dimension="model"),  # fmt: skip
    "cost_by_model": Figure("usd", "sum(cost_usd)", series="assumeNotNull(model)", dimension="model"),
    "cost_by_tenant": Figure("usd", "sum(cost_usd)", series="toString(tenant_id)"),
}

TOP_ORDER = {"messages": "messages", "tokens": "tokens", "cost": "cost_usd", "requests": "ai_requests"}
TOP_KEY = {"users": ("user", "user_id"), "models": ("model", "assumeNotNull(model)"),
           "tenants": (None, "toString(tenant_id)")}  # fmt: skip


def _range_parameters(scope: Scope) -> dict[str, Any]:
    parameters: dict[str, Any] = {"from_ms": scope.from_ms, "to_ms": scope.to_ms}
    if scope.tenant is not None:
        parameters["tenant"] = scope.tenant
    if scope.model is not None:
        parameters["model"] = scope.model
    return parameters


def _window_filter(scope: Scope, dimension: str | None) -> str:
    """The WHERE of a query over engagement_windows: which rows, range, tenant, model."""
    if dimension is None:
        dimension = "model" if scope.model is not None else "tenant"
    where = [f"dimension = '{dimension}'",
             "window_start >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')",
             "window_start < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')"]  # fmt: skip
    if scope.tenant is not None:
        where.append("tenant_id = {tenant:String}")
    if scope.model is not None and dimension == "model":
        where.append("model = {model:String}")
    return " AND ".join(where)


def _ai_users_filter(scope: Scope) -> str:
    where = ["model = {model:String}",
             "requested_at >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')",
             "requested_at < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')"]  # fmt: skip
    if scope.tenant is not None:
        where.append("tenant_id = {tenant:String}")
    return " AND ".join(where)


def _active_users(scope: Scope) -> str:
    if scope.model is not None:
        return f"SELECT {USERS} FROM ai_requests WHERE {_ai_users_filter(scope)}"
    return f"SELECT {USERS} FROM engagement_windows WHERE {_window_filter(scope, 'user')}"


def overview(scope: Scope) -> Statement:
    """One row: the sums, the percentile lists (empty when no value), active users, the
    average session length in ms (NULL when no session)."""
    sessions = ["session_start >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')",
                "session_start < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')"]  # fmt: skip
    if scope.tenant is not None:
        sessions.append("tenant_id = {tenant:String}")
    if scope.model is not None:
        sessions.append("has(models, {model:String})")
    levels = ", ".join(str(level) for level in OVERVIEW_LEVELS)

    def percentiles(kind: str) -> str:
        weighted = (f"arrayReduce('quantilesExactWeighted({levels})', "
                    f"arrayPushBack({{bounds:Array(Float64)}}, {kind}_max), {kind}_hist)")  # fmt: skip
        return f"if(arraySum({kind}_hist) = 0, [], arrayMap(q -> least(q, {kind}_max), {weighted}))"

    sql = f"""
SELECT conversations, messages, sessions, feedback_up, feedback_down, regenerations, generations_stopped,
       ai_requests, ai_failed, prompt_tokens, completion_tokens, cost_usd,
       {percentiles('latency')} AS latency_percentiles,
       {percentiles('ttft')} AS ttft_percentiles,
       ({_active_users(scope)}) AS active_users,
       (SELECT avgOrNull(duration_ms) FROM engagement_sessions FINAL WHERE {' AND '.join(sessions)}) AS avg_session_ms
FROM (
    SELECT sum(conversations_created) AS conversations, sum(messages_sent) AS messages,
           sum(sessions_started) AS sessions, sum(feedback_up) AS feedback_up, sum(feedback_down) AS feedback_down,
           sum(regenerations) AS regenerations, sum(generations_stopped) AS generations_stopped,
           sum(ai_requests) AS ai_requests, sum(ai_failed) AS ai_failed, sum(prompt_tokens) AS prompt_tokens,
           sum(completion_tokens) AS completion_tokens, sum(cost_usd) AS cost_usd,
           {_summed('latency')} AS latency_hist, max(latency_max_ms) AS latency_max,
           {_summed('ttft')} AS ttft_hist, max(ttft_max_ms) AS ttft_max
    FROM engagement_windows FINAL
    WHERE {_window_filter(scope, None)}
)"""
    return Statement.of(sql, {**_range_parameters(scope), "bounds": BOUNDS})


def timeseries(figure: str, scope: Scope, step_s: int) -> Statement:
    """Rows ``(series, bucket start in epoch seconds, value)``; NULL values are left out.
    Buckets are aligned to multiples of the step since the epoch."""
    spec = FIGURES[figure]
    parameters = {**_range_parameters(scope), "step": step_s, "bounds": BOUNDS}
    if figure == "active_users" and scope.model is not None:  # user rows have no model
        source = f"ai_requests WHERE {_ai_users_filter(scope)}"
        bucket = "intDiv(toUnixTimestamp(requested_at), {step:UInt32}) * {step:UInt32}"
    else:
        final = "" if spec.dimension == "user" else " FINAL"  # uniqExact needs no collapsing
        source = f"engagement_windows{final} WHERE {_window_filter(scope, spec.dimension)}"
        bucket = "intDiv(toUnixTimestamp(window_start), {step:UInt32}) * {step:UInt32}"
    sql = f"""
SELECT series, bucket, value FROM (
    SELECT {spec.series} AS series, {bucket} AS bucket, {spec.value} AS value
    FROM {source}
    GROUP BY series, bucket
)
WHERE value IS NOT NULL
ORDER BY series, bucket"""
    return Statement.of(sql, parameters)


def top(what: str, by: str, scope: Scope, limit: int) -> Statement:
    """Rows ``(key, tenant, messages, ai_requests, tokens, cost_usd)``, largest first. Users are
    ranked over the ``user`` rows, which carry no model: ``model`` does not narrow them."""
    dimension, key = TOP_KEY[what]
    tenant = "toString(tenant_id)" if what == "users" else "''"
    group = "key, tenant" if what == "users" else "key"
    sql = f"""
SELECT {key} AS key, {tenant} AS tenant, sum(messages_sent) AS messages, sum(ai_requests) AS ai_requests,
       sum(prompt_tokens + completion_tokens) AS tokens, sum(cost_usd) AS cost_usd
FROM engagement_windows FINAL
WHERE {_window_filter(scope, dimension)}
GROUP BY {group}
ORDER BY {TOP_ORDER[by]} DESC, key, tenant
LIMIT {{limit:UInt32}}"""
    return Statement.of(sql, {**_range_parameters(scope), "limit": limit})


def funnel(scope: Scope) -> Statement:
    """One row: how many conversations created in the range reached each of ``FUNNEL_STEPS``
    within it, in order: created, its 1st, 2nd and 3rd message, then feedback after the 3rd.
    ``windowFunnel`` runs per conversation (``arrayReduce``) over its steps: the creation, its
    first three messages by time (copies of a replayed event are one: no FINAL needed), its last
    feedback (some feedback follows the 3rd message if the last does). Steps that are the same
    action (messages) become distinct by ordinal, which windowFunnel over raw rows cannot do."""
    created = "action = 'CONVERSATION_CREATED'" + (" AND model = {model:String}" if scope.model is not None else "")
    where = ["action IN ('CONVERSATION_CREATED', 'MESSAGE_SENT', 'FEEDBACK_GIVEN')",
             "occurred_at >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')",
             "occurred_at < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')"]  # fmt: skip
    if scope.tenant is not None:
        where.append("tenant_id = {tenant:String}")
    reached = ", ".join(f"countIf(level >= {i + 1})" for i in range(len(FUNNEL_STEPS)))
    conditions = ", ".join(f"arrayMap(s -> s.2 = {i + 1}, steps)" for i in range(len(FUNNEL_STEPS)))
    sql = f"""
SELECT {reached} FROM (
    SELECT arrayConcat([(created_ms, 1)], arrayMap((m, i) -> (m.1, i + 1), first, arrayEnumerate(first)),
                       if(feedback_ms > 0, [(feedback_ms, 5)], [])) AS steps,
           arrayReduce('windowFunnel({FUNNEL_WINDOW_MS})', arrayMap(s -> s.1, steps), {conditions}) AS level
    FROM (
        SELECT minIf(at_ms, {created}) AS created_ms,
               arraySlice(arraySort(groupUniqArrayIf((at_ms, event_id), action = 'MESSAGE_SENT')), 1, 3) AS first,
               maxIf(at_ms, action = 'FEEDBACK_GIVEN') AS feedback_ms
        FROM (
            SELECT tenant_id, conversation_id, action, model, event_id, toUInt64(toUnixTimestamp64Milli(occurred_at)) AS at_ms
            FROM chat_events
            WHERE {' AND '.join(where)}
        )
        GROUP BY tenant_id, conversation_id
        HAVING created_ms > 0
    )
)"""
    return Statement.of(sql, _range_parameters(scope))


def retention(scope: Scope, days: tuple[int, ...]) -> Statement:
    """Rows ``(cohort day, users, [retained on day N for each of days])``: a user's cohort is their
    first active UTC day within the range; retained on day N means active on cohort + N (which may
    lie after the range). The model does not narrow retention (activity days carry no model)."""
    days_in_range = ("day >= toDate(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')) "
                     "AND day <= toDate(fromUnixTimestamp64Milli({to_ms:Int64} - 1, 'UTC'))")  # fmt: skip
    tenant = " AND tenant_id = {tenant:String}" if scope.tenant is not None else ""
    conditions = ", ".join(f"day = cohort + {{day{i}:UInt16}}" for i in range(len(days)))
    sql = f"""
SELECT cohort, count() AS users, sumForEach(arrayPopFront(reached)) AS retained FROM (
    SELECT tenant_id, user_id, cohort, retention(day = cohort, {conditions}) AS reached
    FROM (
        SELECT tenant_id, user_id, day FROM user_active_days
        WHERE day >= toDate(fromUnixTimestamp64Milli({{from_ms:Int64}}, 'UTC'))
          AND day <= toDate(fromUnixTimestamp64Milli({{to_ms:Int64}} - 1, 'UTC')) + {{last_day:UInt16}}{tenant}
    ) AS active
    INNER JOIN (
        SELECT tenant_id, user_id, min(day) AS cohort FROM user_active_days
        WHERE {days_in_range}{tenant}
        GROUP BY tenant_id, user_id
    ) AS cohorts USING (tenant_id, user_id)
    GROUP BY tenant_id, user_id, cohort
)
GROUP BY cohort
ORDER BY cohort"""
    return Statement.of(sql, {**_range_parameters(scope), "last_day": days[-1],
                              **{f"day{i}": d for i, d in enumerate(days)}})  # fmt: skip


def dimensions(scope: Scope) -> Statement:
    """One row: the sorted tenants and models with windows in the range (within the tenant scope;
    the model filter does not narrow the lists it is chosen from)."""
    where = ["dimension IN ('tenant', 'model')",
             "window_start >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')",
             "window_start < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')"]  # fmt: skip
    if scope.tenant is not None:
        where.append("tenant_id = {tenant:String}")
    sql = f"""
SELECT arraySort(groupUniqArrayIf(toString(tenant_id), dimension = 'tenant')) AS tenants,
       arraySort(groupUniqArrayIf(assumeNotNull(model), dimension = 'model')) AS models
FROM engagement_windows
WHERE {' AND '.join(where)}"""
    return Statement.of(sql, _range_parameters(scope))


ANNOTATIONS_LIMIT = 500


def anomalies(scope: Scope) -> Statement:
    """The anomalies that opened in the range (the anomaly job's, from ``anomalies``): a tenant's
    own, or with no tenant every one, the platform's (services, models) included."""
    where = ["status = 'OPEN'",
             "window_start >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')",
             "window_start < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')"]  # fmt: skip
    if scope.tenant is not None:
        where.append("tenant_id = {tenant:String}")
    return Statement.of(
        "SELECT toUnixTimestamp64Milli(window_start), toUnixTimestamp64Milli(window_end), series_key, metric, severity, "
        "observed, expected, score, description, incident_id "
        f"FROM anomalies FINAL WHERE {' AND '.join(where)} ORDER BY window_start LIMIT {ANNOTATIONS_LIMIT}",
        _range_parameters(scope),
    )  # fmt: skip


def scaling_changes(scope: Scope) -> Statement:
    """The scaling signals in the range that changed a service's desired replicas (the first of
    each service in the range counts as one): platform figures, for a scope without a tenant."""
    inner = ("SELECT occurred_at, target, desired_replicas, current_replicas, reason, "
             "lagInFrame(desired_replicas, 1, -1) OVER (PARTITION BY target ORDER BY occurred_at "
             "ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS before "
             "FROM scaling_signals FINAL WHERE occurred_at >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC') "
             "AND occurred_at < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')")  # fmt: skip
    return Statement.of(
        "SELECT toUnixTimestamp64Milli(occurred_at), target, before, desired_replicas, current_replicas, reason "
        f"FROM ({inner}) WHERE before != desired_replicas ORDER BY occurred_at LIMIT {ANNOTATIONS_LIMIT}",
        {"from_ms": scope.from_ms, "to_ms": scope.to_ms},
    )  # fmt: skip
