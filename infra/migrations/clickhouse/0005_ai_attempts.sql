-- ai.requests.v1 for product analytics: one row per attempt at an answer (first try, retry,
-- fallback), the deployment chosen and why. Copies of an attempt event collapse on the key, the
-- highest kafka_offset winning. No prompt text: prompt_messages counts the messages.
CREATE TABLE IF NOT EXISTS ai_attempts
(
    event_id               UUID,
    occurred_at            DateTime64(3, 'UTC'),
    requested_at           Nullable(DateTime64(3, 'UTC')),
    tenant_id              LowCardinality(String),
    user_id                String,
    conversation_id        Nullable(String),
    session_id             Nullable(String),
    trace_id               String,
    client                 LowCardinality(Nullable(String)),
    request_id             UUID,
    message_id             Nullable(String),
    attempt                Int32,
    deployment             LowCardinality(Nullable(String)),
    reason                 Nullable(String),
    provider               LowCardinality(String),
    model                  LowCardinality(String),
    stream                 Bool,
    max_tokens             Nullable(Int32),
    temperature            Nullable(Float64),
    prompt_tokens_estimate Nullable(Int32),
    prompt_messages        Int32,
    deadline_at            Nullable(DateTime64(3, 'UTC')),
    kafka_topic            LowCardinality(String),
    kafka_partition        UInt32,
    kafka_offset           UInt64,
    inserted_at            DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(kafka_offset)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant_id, occurred_at, event_id)
TTL occurred_at + INTERVAL 180 DAY
SETTINGS non_replicated_deduplication_window = 10000;
