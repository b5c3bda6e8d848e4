-- ops.anomalies.v1: the anomaly job's events, an anomaly's opening and its resolution (one
-- incident_id), kept 180 days. Dashboards draw them as annotations.
CREATE TABLE IF NOT EXISTS anomalies
(
    event_id       UUID,
    occurred_at    DateTime64(3, 'UTC'),
    tenant_id      LowCardinality(String),
    detector       LowCardinality(String),
    metric         LowCardinality(String),
    series_key     String,
    window_start   DateTime64(3, 'UTC'),
    window_end     DateTime64(3, 'UTC'),
    observed       Float64,
    expected       Nullable(Float64),
    lower_bound    Nullable(Float64),
    upper_bound    Nullable(Float64),
    score          Float64,
    threshold      Float64,
    severity       LowCardinality(String),
    status         LowCardinality(String),
    incident_id    Nullable(String),
    description    Nullable(String),
    trace_id       String,
    kafka_topic    LowCardinality(String),
    kafka_partition UInt32,
    kafka_offset   UInt64
)
ENGINE = ReplacingMergeTree(kafka_offset)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant_id, event_id, occurred_at)
TTL toDateTime(occurred_at) + INTERVAL 180 DAY
SETTINGS non_replicated_deduplication_window = 1000;
