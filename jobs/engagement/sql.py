"""The engagement job as Flink SQL text: pure functions of the contracts and a ``JobSpec``.

Lateness, one design for every output:

* The watermark trails the largest event time seen by ``out_of_orderness + allowed_lateness``:
  a window is emitted once, when the watermark passes its end, and it is final. Nothing is
  re-emitted, so every window's event id names one row for good.
* Both topics are read by ONE source (``activity_reader``: one Avro reader schema resolves a chat
  action and an AI response alike), so there is one watermark. A filter right after the source
  splits events by its ``CURRENT_WATERMARK``: an event at or behind it goes to the late topic,
  every other one to the windows. The window operators sit downstream and see that source's
  watermarks, never a later one, so no event both lands in a window and is reported late, and no
  event is dropped silently. (With a source per topic, an idle source's events could be behind
  the other's watermark at the windows yet not behind their own: dropped unreported.)
* ``table.exec.source.idle-timeout`` lets an idle partition (or an idle source) stop holding the
  watermark back.
* A job resumed from a checkpoint starts with no watermark (Flink checkpoints none); its filter
  also holds as late everything before the restore floor (``jobs.engagement.resume``), so what
  was late before a crash is late again after it.

Event ids are deterministic: the MD5 of the row's key (dimension, tenant, model, user, window
start), formatted as a UUID; its hex is the row's trace id.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jobs.engagement.avro_types import column_ddl, project
from jobs.engagement.errors import SchemaMappingError
from pipelines.engagement import LATENCY_BOUNDS_MS, PRINCIPAL, WINDOW_S

ACTIONS_FIELDS = {
    "event_id": None, "occurred_at": None, "tenant_id": None, "user_id": None,
    "conversation_id": None, "trace_id": None, "client": None, "action": None,
    "conversation_created": {"model": None}, "message_sent": {"model": None},
    "regenerate_requested": {"model": None}, "feedback_given": {"rating": None},
    "model_switched": {"to_model": None},
}  # fmt: skip
RESPONSES_FIELDS = {
    "event_id": None, "occurred_at": None, "tenant_id": None, "user_id": None,
    "conversation_id": None, "trace_id": None, "client": None, "kind": None, "model": None,
    "prompt_tokens": None, "completion_tokens": None, "cost_usd": None, "latency_ms": None,
    "time_to_first_token_ms": None,
}  # fmt: skip


@dataclass(frozen=True)
class KafkaTable:
    """Where one table of the job lives: topic, its contract and the connector's settings."""

    topic: str
    schema: Mapping[str, Any]
    options: Mapping[str, str]


@dataclass(frozen=True)
class JobSpec:
    """Everything the SQL depends on, resolved from the settings by the wiring."""

    activity: KafkaTable
    windows: KafkaTable
    sessions: KafkaTable
    late: KafkaTable
    watermark_delay_ms: int
    session_gap_ms: int
    job_name: str
    """The outputs' ``client``: the job's consumer group names it."""
    late_floor_ms: int | None = None
    """Events before it are late whatever the watermark (a resumed job's restore floor)."""


def _options(options: Mapping[str, str]) -> str:
    return ",\n  ".join(f"'{key}' = {_literal(value)}" for key, value in options.items())


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _interval(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"INTERVAL '{days} {hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}' DAY TO SECOND(3)"


def _millis_between(start: str, end: str) -> str:
    """``end - start`` in milliseconds (TIMESTAMPDIFF alone truncates to whole seconds)."""
    return (f"TIMESTAMPDIFF(SECOND, FLOOR({start} TO SECOND), FLOOR({end} TO SECOND)) * CAST(1000 AS BIGINT)"
            f" + CAST(EXTRACT(MILLISECOND FROM {end}) - EXTRACT(MILLISECOND FROM {start}) AS BIGINT)")


def create_table(name: str, table: KafkaTable, *, watermark_ms: int | None = None) -> str:
    """``CREATE TEMPORARY TABLE`` for ``table``: columns from its (projected) contract; a source
    (with ``watermark_ms``) also gets the topic each record came from."""
    extra = [] if watermark_ms is None else [
        "`source_topic` STRING METADATA FROM 'topic' VIRTUAL",
        f"WATERMARK FOR `occurred_at` AS `occurred_at` - {_interval(watermark_ms)}"]  # fmt: skip
    prefix = "value." if "value.format" in table.options else ""
    fmt = table.options[f"{prefix}format"]
    options = {**table.options, f"{prefix}{fmt}.schema": json.dumps(table.schema)}
    return (
        f"CREATE TEMPORARY TABLE `{name}` (\n  {column_ddl(table.schema, extra)}\n) "
        f"WITH (\n  {_options(options)}\n)"
    )


def source_schemas(actions: Mapping[str, Any], responses: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The reader schemas of the two sources: the contracts projected on what the job reads."""
    return project(actions, ACTIONS_FIELDS), project(responses, RESPONSES_FIELDS)


def _flag(condition: str) -> str:
    return f"CASE WHEN {condition} THEN 1 ELSE 0 END"


def _bucket(column: str, bounds: Sequence[int] = LATENCY_BOUNDS_MS) -> str:
    """The histogram bucket of ``column`` (NULL when it is NULL)."""
    whens = " ".join(f"WHEN {column} <= {bound} THEN {i}" for i, bound in enumerate(bounds))
    return f"CASE WHEN {column} IS NULL THEN CAST(NULL AS INT) {whens} ELSE {len(bounds)} END"


# A NOT NULL field of a nullable row (model_switched.to_model) is typed NOT NULL by the planner,
# which then cuts a COALESCE short after it: read it under a CASE, which is nullable.
ACTIVITY_VIEW = f"""
CREATE TEMPORARY VIEW activity AS
SELECT event_id, occurred_at AS ts, tenant_id, user_id, conversation_id, trace_id, client, source_topic,
  CASE WHEN action IS NOT NULL THEN 1 ELSE 0 END AS is_action,
  CASE WHEN kind IS NOT NULL THEN 1 ELSE 0 END AS is_answer,
  CAST(COALESCE(message_sent.model, regenerate_requested.model, conversation_created.model, model) AS STRING) AS model,
  CAST(COALESCE(message_sent.model, regenerate_requested.model, conversation_created.model,
    CASE WHEN model_switched IS NOT NULL THEN model_switched.to_model END, model) AS STRING) AS named_model,
  {_flag("action = 'SESSION_STARTED'")} AS session_started,
  {_flag("action = 'CONVERSATION_CREATED'")} AS conversation_created_n,
  {_flag("action = 'MESSAGE_SENT'")} AS message_sent_n,
  {_flag("action = 'REGENERATE_REQUESTED'")} AS regenerated,
  {_flag("action = 'GENERATION_STOPPED'")} AS stopped,
  {_flag("action = 'FEEDBACK_GIVEN' AND feedback_given.rating = 'UP'")} AS feedback_up,
  {_flag("action = 'FEEDBACK_GIVEN' AND feedback_given.rating = 'DOWN'")} AS feedback_down,
  {_flag("kind = 'COMPLETED'")} AS completed, {_flag("kind = 'FAILED'")} AS failed,
  CASE WHEN kind = 'COMPLETED' THEN CAST(COALESCE(prompt_tokens, 0) AS BIGINT) ELSE CAST(0 AS BIGINT) END AS prompt_tokens,
  CASE WHEN kind = 'COMPLETED' THEN CAST(COALESCE(completion_tokens, 0) AS BIGINT) ELSE CAST(0 AS BIGINT) END
    AS completion_tokens,
  CASE WHEN kind = 'COMPLETED' THEN COALESCE(cost_usd, CAST(0 AS DOUBLE)) ELSE CAST(0 AS DOUBLE) END AS cost_usd,
  CASE WHEN kind = 'COMPLETED' THEN latency_ms END AS latency_ms,
  CASE WHEN kind = 'COMPLETED' THEN time_to_first_token_ms END AS ttft_ms
FROM chat_activity
WHERE action IS NOT NULL OR kind IN ('COMPLETED', 'FAILED')
"""

def on_time_view(floor_ms: int | None) -> str:
    """Every event with the point it is late behind: the watermark, or the floor when higher."""
    watermark = "CURRENT_WATERMARK(ts)"
    if floor_ms is not None:
        floor = f"CAST(TO_TIMESTAMP_LTZ({floor_ms}, 3) AS TIMESTAMP(3))"  # the job's time zone is UTC
        watermark = f"CASE WHEN {watermark} IS NULL OR {watermark} < {floor} THEN {floor} ELSE {watermark} END"
    return f"""
CREATE TEMPORARY VIEW activity_marked AS
SELECT *, {watermark} AS watermark_at,
  {_bucket("latency_ms")} AS latency_bucket, {_bucket("ttft_ms")} AS ttft_bucket
FROM activity
"""


def _uuid(key: str) -> str:
    parts = [(1, 8), (9, 4), (13, 4), (17, 4), (21, 12)]
    pieces = ", '-', ".join(f"SUBSTRING(MD5({key}), {start}, {length})" for start, length in parts)
    return f"CONCAT({pieces})"


def _key(*parts: str) -> str:
    return "CONCAT_WS('|', " + ", ".join(parts) + ")"


def _ts_text(column: str) -> str:
    return f"DATE_FORMAT({column}, 'yyyy-MM-dd HH:mm:ss.SSS')"


def _sum(expr: str) -> str:
    return f"COALESCE(SUM(CAST({expr} AS BIGINT)), CAST(0 AS BIGINT))"


def _hist(bucket: str) -> str:
    cells = ", ".join(_sum(_flag(f"{bucket} = {i}")) for i in range(len(LATENCY_BOUNDS_MS) + 1))
    return f"ARRAY[{cells}]"


def score_sql(points: str) -> str:
    """The engagement score of ``points`` (see ``jobs.engagement.score``), in SQL."""
    return f"CAST(100.0 AS DOUBLE) * CAST({points} AS DOUBLE) / (CAST({points} AS DOUBLE) + CAST(10.0 AS DOUBLE))"


POINTS = ("2 * messages_sent + conversations_created + regenerations + 2 * feedback_up + feedback_down"
          " + sessions_started")  # fmt: skip


def _window_query(dimension: str, job_name: str) -> str:
    """One dimension's rows, with every column of ``analytics.engagement.v1`` in its order."""
    model = "model" if dimension == "model" else "CAST(NULL AS STRING)"
    user = "user_id" if dimension == "user" else f"'{PRINCIPAL}'"
    group = {"tenant": "", "model": ", model", "user": ", user_id"}[dimension]
    where = {"tenant": "", "model": "WHERE model IS NOT NULL", "user": ""}[dimension]
    who = "is_answer" if dimension == "model" else "is_action"
    key = _key(f"'{dimension}'", "tenant_id", f"COALESCE({model}, '')",
               "user_id" if dimension == "user" else "''", _ts_text("window_start"))  # fmt: skip
    score = score_sql(f"({POINTS})") if dimension == "user" else "CAST(NULL AS DOUBLE)"
    return f"""
SELECT {_uuid(key)} AS event_id, window_end AS occurred_at, tenant_id, {user} AS user_id,
  CAST(NULL AS STRING) AS conversation_id, CAST(NULL AS STRING) AS session_id, MD5({key}) AS trace_id,
  {_literal(job_name)} AS client, window_start, window_end, {model} AS model,
  active_users, active_conversations, sessions_started, conversations_created, messages_sent, regenerations,
  generations_stopped, feedback_up, feedback_down, ai_requests, ai_completed, ai_failed, prompt_tokens,
  completion_tokens, cost_usd, CAST(NULL AS DOUBLE) AS latency_p50_ms, CAST(NULL AS DOUBLE) AS latency_p95_ms,
  CAST(NULL AS DOUBLE) AS ttft_p50_ms, '{dimension}' AS dimension, latency_count, latency_sum_ms, latency_max_ms,
  latency_hist, ttft_count, ttft_sum_ms, ttft_max_ms, ttft_hist, {score} AS engagement_score
FROM (
  SELECT window_start, window_end, tenant_id{group},
    COUNT(DISTINCT user_id) FILTER (WHERE {who} = 1) AS active_users,
    COUNT(DISTINCT conversation_id) FILTER (WHERE {who} = 1) AS active_conversations,
    {_sum("session_started")} AS sessions_started, {_sum("conversation_created_n")} AS conversations_created,
    {_sum("message_sent_n")} AS messages_sent, {_sum("regenerated")} AS regenerations,
    {_sum("stopped")} AS generations_stopped, {_sum("feedback_up")} AS feedback_up,
    {_sum("feedback_down")} AS feedback_down, {_sum("completed + failed")} AS ai_requests,
    {_sum("completed")} AS ai_completed, {_sum("failed")} AS ai_failed,
    {_sum("prompt_tokens")} AS prompt_tokens, {_sum("completion_tokens")} AS completion_tokens,
    COALESCE(SUM(cost_usd), CAST(0 AS DOUBLE)) AS cost_usd,
    COUNT(latency_ms) AS latency_count,
    COALESCE(SUM(CAST(latency_ms AS DOUBLE)), CAST(0 AS DOUBLE)) AS latency_sum_ms,
    COALESCE(MAX(CAST(latency_ms AS DOUBLE)), CAST(0 AS DOUBLE)) AS latency_max_ms,
    {_hist("latency_bucket")} AS latency_hist,
    COUNT(ttft_ms) AS ttft_count,
    COALESCE(SUM(CAST(ttft_ms AS DOUBLE)), CAST(0 AS DOUBLE)) AS ttft_sum_ms,
    COALESCE(MAX(CAST(ttft_ms AS DOUBLE)), CAST(0 AS DOUBLE)) AS ttft_max_ms,
    {_hist("ttft_bucket")} AS ttft_hist
  FROM TABLE(TUMBLE(TABLE on_time, DESCRIPTOR(ts), {_interval(WINDOW_S * 1000)}))
  {where}
  GROUP BY window_start, window_end, tenant_id{group}
)"""


ON_TIME = """
CREATE TEMPORARY VIEW on_time AS
SELECT * FROM activity_marked WHERE watermark_at IS NULL OR ts > watermark_at
"""


def windows_insert(job_name: str) -> str:
    return "INSERT INTO engagement_windows\n" + "\nUNION ALL\n".join(
        _window_query(dimension, job_name) for dimension in ("tenant", "model", "user"))  # fmt: skip


def sessions_insert(gap_ms: int, job_name: str) -> str:
    key = _key("'session'", "tenant_id", "user_id", _ts_text("session_start"))
    return f"""
INSERT INTO engagement_sessions
SELECT {_uuid(key)} AS event_id, session_end AS occurred_at, tenant_id, user_id,
  CAST(NULL AS STRING) AS conversation_id, CAST(NULL AS STRING) AS session_id, MD5({key}) AS trace_id,
  {_literal(job_name)} AS client, session_start, session_end,
  {_millis_between("session_start", "session_end")} AS duration_ms,
  `turns`, `events`, `conversations`, `models`
FROM (
  SELECT tenant_id, user_id, MIN(ts) AS session_start, MAX(ts) AS session_end,
    {_sum("message_sent_n + regenerated")} AS `turns`, COUNT(*) AS `events`,
    COUNT(DISTINCT conversation_id) AS `conversations`,
    COALESCE(ARRAY_AGG(DISTINCT named_model) FILTER (WHERE named_model IS NOT NULL), ARRAY_REMOVE(ARRAY[''], '')) AS `models`
  FROM TABLE(SESSION(TABLE on_time PARTITION BY (tenant_id, user_id), DESCRIPTOR(ts), {_interval(gap_ms)}))
  GROUP BY window_start, window_end, tenant_id, user_id
)"""


LATE_INSERT = f"""
INSERT INTO late_events
SELECT event_id, ts AS occurred_at, tenant_id, user_id, conversation_id, CAST(NULL AS STRING) AS session_id,
  trace_id, client, source_topic, watermark_at,
  {_millis_between("ts", "watermark_at")} AS lateness_ms,
  CAST(LOCALTIMESTAMP AS TIMESTAMP(3)) AS detected_at
FROM activity_marked
WHERE watermark_at IS NOT NULL AND ts <= watermark_at
"""


def statements(spec: JobSpec) -> tuple[list[str], list[str]]:
    """(DDL to execute first, INSERTs to run together as one job)."""
    ddl = [
        create_table("chat_activity", spec.activity, watermark_ms=spec.watermark_delay_ms),
        create_table("engagement_windows", spec.windows),
        create_table("engagement_sessions", spec.sessions),
        create_table("late_events", spec.late),
        ACTIVITY_VIEW,
        on_time_view(spec.late_floor_ms),
        ON_TIME,
    ]
    return ddl, [windows_insert(spec.job_name), sessions_insert(spec.session_gap_ms, spec.job_name), LATE_INSERT]


def activity_reader(actions: Mapping[str, Any], responses: Mapping[str, Any]) -> dict[str, Any]:
    """One reader schema for both topics: the envelope fields (the same in every contract) first,
    then what the job reads of either, each nullable with a null default, so Avro resolves a
    chat action and an AI response alike (the fields of the other topic read as null)."""
    a, r = source_schemas(actions, responses)
    if a["fields"][:ENVELOPE] != r["fields"][:ENVELOPE]:
        raise SchemaMappingError("chat.actions.v1 and ai.responses.v1 no longer share their envelope fields")
    fields = list(a["fields"][:ENVELOPE])
    for field in [*a["fields"][ENVELOPE:], *r["fields"][ENVELOPE:]]:
        avro_type = field["type"]
        nullable = isinstance(avro_type, list) and "null" in avro_type
        fields.append({"name": field["name"], "type": avro_type if nullable else ["null", avro_type], "default": None})
    return {"type": "record", "name": "ChatActivity", "namespace": a.get("namespace", ""), "fields": fields}


ENVELOPE = 7
"""event_id, occurred_at, tenant_id, user_id, conversation_id, trace_id, client: read from both topics."""
