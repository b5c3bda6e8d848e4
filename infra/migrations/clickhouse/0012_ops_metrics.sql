-- ops.metrics.v1: each service instance's load at a fixed interval (requests/s, events/s,
-- in-flight streams, consumer lag, latency percentiles, errors, CPU, memory, replicas), one row
-- per measurement, kept 30 days. Labels: a JSON object (JSONExtractString(labels, 'topic')).
CREATE TABLE IF NOT EXISTS ops_metrics
(
    event_id       UUID,
    occurred_at    DateTime64(3, 'UTC'),
    tenant_id      LowCardinality(String),
    service        LowCardinality(String),
    instance       String,
    name           LowCardinality(String),
    value          Float64,
    unit           Nullable(String),
    labels         String,
    trace_id       String,
    kafka_topic    LowCardinality(String),
    kafka_partition UInt32,
    kafka_offset   UInt64
)
ENGINE = ReplacingMergeTree(kafka_offset)
PARTITION BY toYYYYMMDD(occurred_at)
ORDER BY (tenant_id, event_id, occurred_at)
TTL toDateTime(occurred_at) + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 1000;
