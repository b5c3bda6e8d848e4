-- ops.scaling_signals.v1: the scaling job's signals (per service, horizon and minute: the
-- forecast, its interval and the replicas asked for), kept 90 days.
CREATE TABLE IF NOT EXISTS scaling_signals
(
    event_id             UUID,
    occurred_at          DateTime64(3, 'UTC'),
    target               LowCardinality(String),
    metric               LowCardinality(String),
    observed             Float64,
    forecast             Float64,
    forecast_lower       Nullable(Float64),
    forecast_upper       Nullable(Float64),
    horizon_s            Int32,
    capacity_per_replica Float64,
    current_replicas     Nullable(Int32),
    desired_replicas     Int32,
    min_replicas         Int32,
    max_replicas         Int32,
    reason               String,
    model                LowCardinality(String),
    trace_id             String,
    kafka_topic          LowCardinality(String),
    kafka_partition      UInt32,
    kafka_offset         UInt64
)
ENGINE = ReplacingMergeTree(kafka_offset)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (target, event_id, occurred_at)
TTL toDateTime(occurred_at) + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 1000;
