-- ops.metrics.v1: service measurements, one row per event, kept 14 days in daily partitions.
SELECT chatstream_create_timeseries(
    'ops_metrics',
    $cols$
        event_id    uuid             NOT NULL,
        occurred_at timestamptz      NOT NULL,
        tenant_id   text             NOT NULL,
        service     text             NOT NULL,
        instance    text             NOT NULL,
        name        text             NOT NULL,
        value       double precision NOT NULL,
        unit        text,
        labels      jsonb            NOT NULL DEFAULT '{}',
        trace_id    text             NOT NULL,
        PRIMARY KEY (event_id, occurred_at)
    $cols$,
    'occurred_at', interval '1 day', interval '14 days');
CREATE INDEX IF NOT EXISTS ops_metrics_name_time ON ops_metrics (name, occurred_at);
