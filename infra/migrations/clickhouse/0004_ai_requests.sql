-- ai.responses.v1 for product analytics: ONE ROW PER AI REQUEST. Every event of a request (its
-- chunks, then one COMPLETED or FAILED) carries the same request_id and requested_at and has the
-- same sort key, so ReplacingMergeTree collapses them; kafka_offset is the version, so the latest
-- event wins (the terminal one once the request ended; an in-flight request shows its latest
-- chunk). A replayed COMPLETED is the same row again: a request's cost is counted once. Query
-- with FINAL for exact figures. No answer text: content_length only (COMPLETED).
CREATE TABLE IF NOT EXISTS ai_requests
(
    request_id             UUID,
    requested_at           DateTime64(3, 'UTC'),
    occurred_at            DateTime64(3, 'UTC'),
    tenant_id              LowCardinality(String),
    user_id                String,
    conversation_id        Nullable(String),
    session_id             Nullable(String),
    trace_id               String,
    client                 LowCardinality(Nullable(String)),
    message_id             Nullable(String),
    status                 LowCardinality(String),
    provider               LowCardinality(String),
    model                  LowCardinality(String),
    chunks                 Int64,
    finish_reason          LowCardinality(Nullable(String)),
    prompt_tokens          Nullable(Int32),
    completion_tokens      Nullable(Int32),
    total_tokens           Nullable(Int32),
    tokens_estimated       Bool,
    cost_usd               Nullable(Float64),
    latency_ms             Nullable(Int64),
    time_to_first_token_ms Nullable(Int64),
    error_code             LowCardinality(Nullable(String)),
    error_message          Nullable(String),
    retryable              Nullable(Bool),
    attempts               Int32,
    fallback_used          Bool,
    content_length         Nullable(Int32),
    kafka_topic            LowCardinality(String),
    kafka_partition        UInt32,
    kafka_offset           UInt64,
    inserted_at            DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(kafka_offset)
PARTITION BY toYYYYMM(requested_at)
ORDER BY (tenant_id, requested_at, request_id)
TTL requested_at + INTERVAL 180 DAY
SETTINGS non_replicated_deduplication_window = 10000;
