-- analytics.engagement.v1 (the engagement job): one row per one-minute event-time window and key:
-- dimension 'tenant', 'model' (the answering model) or 'user'. Replaces 0001's table, which nothing
-- ever wrote. event_id is deterministic (the same window and key, the same id), so a replay is the
-- same row again and collapses. latency_hist / ttft_hist count per bucket of pipelines/engagement.py's
-- LATENCY_BOUNDS_MS (27 buckets): sumForEach over any set of windows, then a weighted quantile.
DROP TABLE IF EXISTS engagement_windows;

CREATE TABLE IF NOT EXISTS engagement_windows
(
    event_id              UUID,
    occurred_at           DateTime64(3, 'UTC'),
    dimension             LowCardinality(String),
    tenant_id             LowCardinality(String),
    model                 LowCardinality(Nullable(String)),
    user_id               String,
    window_start          DateTime64(3, 'UTC'),
    window_end            DateTime64(3, 'UTC'),
    active_users          UInt64,
    active_conversations  UInt64,
    sessions_started      UInt64,
    conversations_created UInt64,
    messages_sent         UInt64,
    regenerations         UInt64,
    generations_stopped   UInt64,
    feedback_up           UInt64,
    feedback_down         UInt64,
    ai_requests           UInt64,
    ai_completed          UInt64,
    ai_failed             UInt64,
    prompt_tokens         UInt64,
    completion_tokens     UInt64,
    cost_usd              Float64,
    latency_count         UInt64,
    ttft_count            UInt64,
    latency_sum_ms        Float64,
    ttft_sum_ms           Float64,
    latency_max_ms        Float64,
    ttft_max_ms           Float64,
    latency_hist          Array(UInt64),
    ttft_hist             Array(UInt64),
    engagement_score      Nullable(Float64),
    kafka_topic           LowCardinality(String),
    kafka_partition       UInt32,
    kafka_offset          UInt64,
    inserted_at           DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(window_start)
ORDER BY (dimension, tenant_id, window_start, event_id)
TTL window_start + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;
