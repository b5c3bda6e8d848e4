-- analytics.engagement.v1: one row per tenant (and model) per window; replays collapse on event_id.
CREATE TABLE IF NOT EXISTS engagement_windows
(
    event_id              UUID,
    occurred_at           DateTime64(3, 'UTC'),
    tenant_id             LowCardinality(String),
    model                 LowCardinality(Nullable(String)),
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
    latency_p50_ms        Nullable(Float64),
    latency_p95_ms        Nullable(Float64),
    ttft_p50_ms           Nullable(Float64),
    inserted_at           DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(window_start)
ORDER BY (tenant_id, window_start, event_id)
SETTINGS non_replicated_deduplication_window = 1000;
