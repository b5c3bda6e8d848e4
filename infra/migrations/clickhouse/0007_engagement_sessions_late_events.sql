-- analytics.sessions.v1 (the engagement job): one row per user session (no gap longer than the
-- job's session gap, 30 minutes by default). event_id is deterministic (user and session start).
CREATE TABLE IF NOT EXISTS engagement_sessions
(
    event_id       UUID,
    occurred_at    DateTime64(3, 'UTC'),
    tenant_id      LowCardinality(String),
    user_id        String,
    session_start  DateTime64(3, 'UTC'),
    session_end    DateTime64(3, 'UTC'),
    duration_ms    UInt64,
    turns          UInt64,
    events         UInt64,
    conversations  UInt64,
    models         Array(LowCardinality(String)),
    kafka_topic    LowCardinality(String),
    kafka_partition UInt32,
    kafka_offset   UInt64,
    inserted_at    DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(session_start)
ORDER BY (tenant_id, session_start, event_id)
TTL session_start + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- analytics.late_events.v1: chat actions and AI responses that reached the engagement job behind
-- its watermark (beyond the allowed lateness), so in no window: each one, once, with by how much.
CREATE TABLE IF NOT EXISTS late_events
(
    event_id       UUID,
    occurred_at    DateTime64(3, 'UTC'),
    tenant_id      LowCardinality(String),
    user_id        String,
    source_topic   LowCardinality(String),
    watermark_at   DateTime64(3, 'UTC'),
    lateness_ms    Int64,
    detected_at    DateTime64(3, 'UTC'),
    kafka_topic    LowCardinality(String),
    kafka_partition UInt32,
    kafka_offset   UInt64,
    inserted_at    DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant_id, source_topic, occurred_at, event_id)
TTL occurred_at + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;
