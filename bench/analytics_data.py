"""A large analytics data set made inside ClickHouse, for the dashboard API's latency figure.

Ten million events through the gateway, the sinks and the engagement job would take longer than
the benchmark's budget on two cores, and the API's latency depends on the tables' size and
shape, not on how the rows got there. So this module writes them with ClickHouse's own
``INSERT ... SELECT ... FROM numbers(N)``: deterministic pseudo-random chat actions
(``chat_events``), one AI request per message (``ai_requests``), and the engagement job's windows
aggregated from those rows in SQL (``engagement_windows``: the tenant, model and user rows the
contract defines). The job's own correctness is tested elsewhere against a Python reference;
here only the rows' volume and distribution matter. Every tenant id starts with ``prefix``, so
a run's rows are easy to tell apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.engagement import LATENCY_BOUNDS_MS

ACTIONS = (  # (action, share in percent)
    ("MESSAGE_SENT", 50), ("REGENERATE_REQUESTED", 5), ("FEEDBACK_GIVEN", 7),
    ("CONVERSATION_CREATED", 10), ("SESSION_STARTED", 10), ("GENERATION_STOPPED", 3),
    ("MODEL_SWITCHED", 3), ("MESSAGE_EDITED", 12),
)  # fmt: skip
MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet", "llama-3.1-70b", "mistral-large")


@dataclass(frozen=True)
class Shape:
    """How many events, over how many tenants and users, ending at ``end_ms``, over ``days``."""

    events: int
    tenants: int = 20
    users_per_tenant: int = 500
    days: int = 7
    end_ms: int = 0
    prefix: str = "bench-"

    @property
    def start_ms(self) -> int:
        return self.end_ms - self.days * 86_400_000


def _action_expr() -> str:
    """``multiIf`` over a 0..99 draw ``r`` giving each action its share."""
    parts, upto = [], 0
    for action, share in ACTIONS[:-1]:
        upto += share
        parts.append(f"r < {upto}, '{action}'")
    return f"multiIf({', '.join(parts)}, '{ACTIONS[-1][0]}')"


CHAT_EVENTS = f"""
INSERT INTO chat_events (event_id, occurred_at, tenant_id, user_id, conversation_id, session_id,
    trace_id, client, action, message_id, model, text_length, rating, details, kafka_topic,
    kafka_partition, kafka_offset)
SELECT
    reinterpretAsUUID(concat(reinterpretAsString(cityHash64(n, 1)), reinterpretAsString(cityHash64(n, 2)))),
    fromUnixTimestamp64Milli(toInt64({{start:Int64}} + intDiv(n * {{span:Int64}}, {{events:Int64}})), 'UTC') AS at,
    tenant, user,
    concat(user, '-c', toString(cityHash64(n, 4) % 6)),
    concat(user, '-s', toString(toStartOfHour(at))),
    lower(hex(cityHash64(n, 9))) || lower(hex(cityHash64(n, 10))),
    'bench/1',
    action,
    if(action IN ('MESSAGE_SENT', 'REGENERATE_REQUESTED', 'FEEDBACK_GIVEN', 'MESSAGE_EDITED'), toString(n), NULL),
    if(action IN ('MESSAGE_SENT', 'REGENERATE_REQUESTED', 'MODEL_SWITCHED'),
       {{models:Array(String)}}[1 + cityHash64(n, 7) % length({{models:Array(String)}})], NULL),
    if(action IN ('MESSAGE_SENT', 'MESSAGE_EDITED'), toInt32(20 + cityHash64(n, 11) % 800), NULL),
    if(action = 'FEEDBACK_GIVEN', if(cityHash64(n, 8) % 4 = 0, 'DOWN', 'UP'), NULL),
    '{{}}', 'chat.actions.v1', toUInt32(n % 6), n
FROM (
    SELECT number AS n, cityHash64(n, 6) % 100 AS r, {_action_expr()} AS action,
           concat({{prefix:String}}, toString(cityHash64(n, 3) % {{tenants:UInt64}})) AS tenant,
           concat(tenant, '-u', toString(cityHash64(n, 5) % {{users:UInt64}})) AS user
    FROM numbers({{events:UInt64}})
)
"""

AI_REQUESTS = """
INSERT INTO ai_requests (request_id, requested_at, occurred_at, tenant_id, user_id, conversation_id,
    session_id, trace_id, client, message_id, status, provider, model, chunks, finish_reason,
    prompt_tokens, completion_tokens, total_tokens, tokens_estimated, cost_usd, latency_ms,
    time_to_first_token_ms, error_code, attempts, fallback_used, content_length, kafka_topic,
    kafka_partition, kafka_offset)
SELECT
    reinterpretAsUUID(reverse(reinterpretAsString(event_id))),
    occurred_at, occurred_at + toIntervalMillisecond(latency),
    tenant_id, user_id, conversation_id, session_id, trace_id, client, message_id,
    if(failed, 'FAILED', 'COMPLETED'), 'simulated', assumeNotNull(model), toInt64(1 + latency % 40),
    if(failed, NULL, 'stop'),
    if(failed, NULL, toInt32(prompt)), if(failed, NULL, toInt32(completion)),
    if(failed, NULL, toInt32(prompt + completion)), false,
    if(failed, NULL, (prompt * 0.5 + completion * 1.5) / 1e6),
    if(failed, NULL, toInt64(latency)), if(failed, NULL, toInt64(ttft)),
    if(failed, 'provider_error', NULL), toInt32(1), false, if(failed, NULL, toInt32(completion * 4)),
    'ai.responses.v1', kafka_partition, kafka_offset
FROM (
    SELECT *, cityHash64(kafka_offset, 21) % 100 < 3 AS failed,
           100 + cityHash64(kafka_offset, 22) % 1900 + if(cityHash64(kafka_offset, 23) % 20 = 0, 6000, 0) AS latency,
           20 + cityHash64(kafka_offset, 24) % (latency / 4) AS ttft,
           50 + cityHash64(kafka_offset, 25) % 2000 AS prompt,
           10 + cityHash64(kafka_offset, 26) % 800 AS completion
    FROM chat_events
    WHERE tenant_id LIKE concat({prefix:String}, '%') AND action = 'MESSAGE_SENT'
)
"""

# The contract's engagement_windows, aggregated from the rows above: one set of figures per
# (dimension key, minute). ``key`` and ``model_key`` pick the dimension.
_WINDOW_FIGURES = """
    uniqExactIf(user_id, source = 'chat') AS active_users,
    uniqExactIf(conversation_id, source = 'chat') AS active_conversations,
    countIf(action = 'SESSION_STARTED') AS sessions_started,
    countIf(action = 'CONVERSATION_CREATED') AS conversations_created,
    countIf(action = 'MESSAGE_SENT') AS messages_sent,
    countIf(action = 'REGENERATE_REQUESTED') AS regenerations,
    countIf(action = 'GENERATION_STOPPED') AS generations_stopped,
    countIf(rating = 'UP') AS feedback_up,
    countIf(rating = 'DOWN') AS feedback_down,
    countIf(source = 'ai') AS ai_requests,
    countIf(status = 'COMPLETED') AS ai_completed,
    countIf(status = 'FAILED') AS ai_failed,
    sumIf(prompt_tokens, status = 'COMPLETED') AS prompt_tokens,
    sumIf(completion_tokens, status = 'COMPLETED') AS completion_tokens,
    sumIf(cost_usd, status = 'COMPLETED') AS cost_usd,
    countIf(latency_ms IS NOT NULL) AS latency_count,
    sumIf(latency_ms, latency_ms IS NOT NULL) AS latency_sum_ms,
    maxIf(latency_ms, latency_ms IS NOT NULL) AS latency_max_ms,
    {latency_hist} AS latency_hist,
    countIf(ttft_ms IS NOT NULL) AS ttft_count,
    sumIf(ttft_ms, ttft_ms IS NOT NULL) AS ttft_sum_ms,
    maxIf(ttft_ms, ttft_ms IS NOT NULL) AS ttft_max_ms,
    {ttft_hist} AS ttft_hist
"""

_ACTIVITY = """
    SELECT 'chat' AS source, tenant_id, user_id, conversation_id, action, model, rating,
           NULL::Nullable(String) AS status, NULL::Nullable(Int32) AS prompt_tokens,
           NULL::Nullable(Int32) AS completion_tokens, NULL::Nullable(Float64) AS cost_usd,
           NULL::Nullable(Float64) AS latency_ms, NULL::Nullable(Float64) AS ttft_ms,
           toStartOfMinute(occurred_at) AS minute
    FROM chat_events WHERE tenant_id LIKE concat({prefix:String}, '%')
    UNION ALL
    SELECT 'ai', tenant_id, user_id, conversation_id, '', model, NULL, status, prompt_tokens,
           completion_tokens, cost_usd, toFloat64(latency_ms), toFloat64(time_to_first_token_ms),
           toStartOfMinute(occurred_at)
    FROM ai_requests WHERE tenant_id LIKE concat({prefix:String}, '%')
"""


def _histogram(column: str) -> str:
    """Per-bucket counts of ``column`` over ``LATENCY_BOUNDS_MS`` (the last bucket: above them)."""
    bounds = "[" + ", ".join(f"{b}.0" for b in LATENCY_BOUNDS_MS) + "]"
    buckets = len(LATENCY_BOUNDS_MS) + 1
    first = f"arrayFirstIndex(b -> {column} <= b, {bounds})"
    bucket = f"if({first} = 0, {buckets}, {first})"
    return f"sumForEachIf(arrayMap(i -> toUInt64(i = {bucket}), range(1, {buckets + 1})), {column} IS NOT NULL)"


def _windows(dimension: str) -> str:
    model = "model" if dimension == "model" else "NULL"
    user = "user_id" if dimension == "user" else "''"
    keys = {"tenant": "tenant_id", "model": "tenant_id, model", "user": "tenant_id, user_id"}[dimension]
    where = "WHERE model IS NOT NULL" if dimension == "model" else ""
    figures = _WINDOW_FIGURES.format(latency_hist=_histogram("latency_ms"), ttft_hist=_histogram("ttft_ms"))
    # the engagement job's score (jobs/engagement/score.py, README): 100 p / (p + 10)
    points = "toFloat64(2 * messages_sent + conversations_created + regenerations + 2 * feedback_up + feedback_down + sessions_started)"
    score = f"100 * {points} / ({points} + 10)" if dimension == "user" else "NULL"
    return f"""
INSERT INTO engagement_windows (event_id, occurred_at, dimension, tenant_id, model, user_id,
    window_start, window_end, active_users, active_conversations, sessions_started,
    conversations_created, messages_sent, regenerations, generations_stopped, feedback_up,
    feedback_down, ai_requests, ai_completed, ai_failed, prompt_tokens, completion_tokens, cost_usd,
    latency_count, latency_sum_ms, latency_max_ms, latency_hist, ttft_count, ttft_sum_ms,
    ttft_max_ms, ttft_hist, engagement_score)
SELECT
    reinterpretAsUUID(concat(reinterpretAsString(cityHash64('{dimension}', {keys}, minute, 1)),
                             reinterpretAsString(cityHash64('{dimension}', {keys}, minute, 2)))),
    minute + toIntervalMinute(1), '{dimension}', tenant_id, {model}, {user},
    minute, minute + toIntervalMinute(1),
    active_users, active_conversations, sessions_started, conversations_created, messages_sent,
    regenerations, generations_stopped, feedback_up, feedback_down, ai_requests, ai_completed,
    ai_failed, prompt_tokens, completion_tokens, cost_usd, latency_count, latency_sum_ms,
    latency_max_ms, latency_hist, ttft_count, ttft_sum_ms, ttft_max_ms, ttft_hist, {score}
FROM (
    SELECT {keys}, minute, {figures}
    FROM ({_ACTIVITY}) {where}
    GROUP BY {keys}, minute
)
"""


TABLES = ("chat_events", "ai_requests", "engagement_windows")


def clear(client: Any) -> None:
    """Empty the tables ``fill`` writes (the bench stack's only: earlier runs' rows would add to
    the size the latency figure is measured over)."""
    for table in TABLES:
        client.command(f"TRUNCATE TABLE {table}")


def fill(client: Any, shape: Shape) -> dict[str, int]:
    """Write ``shape``'s rows; the row count of each table written (for this prefix)."""
    params: dict[str, Any] = {
        "start": shape.start_ms, "span": shape.end_ms - shape.start_ms, "events": shape.events,
        "prefix": shape.prefix, "tenants": shape.tenants, "users": shape.users_per_tenant,
        "models": list(MODELS),
    }  # fmt: skip
    settings = {"max_partitions_per_insert_block": 1000, "max_insert_threads": 2}
    client.command(CHAT_EVENTS, parameters=params, settings=settings)
    client.command(AI_REQUESTS, parameters=params, settings=settings)
    for dimension in ("tenant", "model", "user"):
        client.command(_windows(dimension), parameters=params, settings=settings)
    counts = {}
    for table in TABLES:
        counts[table] = int(client.query(
            f"SELECT count() FROM {table} WHERE tenant_id LIKE concat({{prefix:String}}, '%')", parameters=params
        ).result_rows[0][0])  # fmt: skip
    return counts
