-- The engagement tables of issue 10's contract, for the analytics API, when the engagement job's
-- own migrations (0006 re-creates engagement_windows, 0007 creates engagement_sessions) are not
-- there. Every statement is a no-op after those: columns are added only if missing, 0001's
-- per-window percentiles dropped only if present, tables created only if absent. (0001's sort
-- key cannot be changed in place; 0006 re-creates the table with the contract's.)
ALTER TABLE engagement_windows
    ADD COLUMN IF NOT EXISTS dimension LowCardinality(String) DEFAULT 'tenant' AFTER occurred_at,
    ADD COLUMN IF NOT EXISTS user_id String DEFAULT '' AFTER model,
    ADD COLUMN IF NOT EXISTS latency_count UInt64 AFTER cost_usd,
    ADD COLUMN IF NOT EXISTS ttft_count UInt64 AFTER latency_count,
    ADD COLUMN IF NOT EXISTS latency_sum_ms Float64 AFTER ttft_count,
    ADD COLUMN IF NOT EXISTS ttft_sum_ms Float64 AFTER latency_sum_ms,
    ADD COLUMN IF NOT EXISTS latency_max_ms Float64 AFTER ttft_sum_ms,
    ADD COLUMN IF NOT EXISTS ttft_max_ms Float64 AFTER latency_max_ms,
    ADD COLUMN IF NOT EXISTS latency_hist Array(UInt64) AFTER ttft_max_ms,
    ADD COLUMN IF NOT EXISTS ttft_hist Array(UInt64) AFTER latency_hist,
    ADD COLUMN IF NOT EXISTS engagement_score Nullable(Float64) AFTER ttft_hist,
    DROP COLUMN IF EXISTS latency_p50_ms,
    DROP COLUMN IF EXISTS latency_p95_ms,
    DROP COLUMN IF EXISTS ttft_p50_ms;

ALTER TABLE engagement_windows MODIFY TTL window_start + INTERVAL 400 DAY;

CREATE TABLE IF NOT EXISTS engagement_sessions
(
    event_id      UUID,
    occurred_at   DateTime64(3, 'UTC'),
    tenant_id     LowCardinality(String),
    user_id       String,
    session_start DateTime64(3, 'UTC'),
    session_end   DateTime64(3, 'UTC'),
    duration_ms   UInt64,
    turns         UInt64,
    events        UInt64,
    conversations UInt64,
    models        Array(LowCardinality(String)),
    inserted_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(session_start)
ORDER BY (tenant_id, session_start, event_id)
TTL session_start + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;
