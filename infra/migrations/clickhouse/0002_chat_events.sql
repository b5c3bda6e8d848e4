-- chat.actions.v1 for product analytics: one wide row per event. The common fields and the
-- detail fields dashboards filter on most (message_id, model, text_length, rating) are typed
-- columns; the whole detail record of the action is kept as JSON text in `details`.
-- ReplacingMergeTree collapses replays of an event (same key); kafka_offset is its version, so
-- the newest copy wins and max(kafka_offset) per partition survives merges (the sink resumes
-- from it after a crash).
CREATE TABLE IF NOT EXISTS chat_events
(
    event_id        UUID,
    occurred_at     DateTime64(3, 'UTC'),
    tenant_id       LowCardinality(String),
    user_id         String,
    conversation_id Nullable(String),
    session_id      Nullable(String),
    trace_id        String,
    client          LowCardinality(Nullable(String)),
    action          LowCardinality(String),
    message_id      Nullable(String),
    model           LowCardinality(Nullable(String)),
    text_length     Nullable(Int32),
    rating          LowCardinality(Nullable(String)),
    details         String,
    kafka_topic     LowCardinality(String),
    kafka_partition UInt32,
    kafka_offset    UInt64,
    inserted_at     DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(kafka_offset)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant_id, action, occurred_at, event_id)
SETTINGS non_replicated_deduplication_window = 10000;
