-- ops.anomalies.v1 for operations: each anomaly event (opened, resolved; one incident_id), weekly
-- partitions on occurred_at kept 180 days. The key is the event's identity (ANOMALY_KEY in
-- connectors/mappings/anomalies.py); it holds the partition column.
SELECT chatstream_create_timeseries(
    'anomalies',
    $cols$
        event_id        uuid             NOT NULL,
        occurred_at     timestamptz      NOT NULL,
        tenant_id       text             NOT NULL,
        detector        text             NOT NULL,
        metric          text             NOT NULL,
        series_key      text             NOT NULL,
        window_start    timestamptz      NOT NULL,
        window_end      timestamptz      NOT NULL,
        observed        double precision NOT NULL,
        expected        double precision,
        lower_bound     double precision,
        upper_bound     double precision,
        score           double precision NOT NULL,
        threshold       double precision NOT NULL,
        severity        text             NOT NULL,
        status          text             NOT NULL,
        incident_id     text,
        description     text,
        trace_id        text             NOT NULL,
        kafka_topic     text             NOT NULL,
        kafka_partition integer          NOT NULL,
        kafka_offset    bigint           NOT NULL,
        PRIMARY KEY (event_id, occurred_at, tenant_id)
    $cols$,
    'occurred_at', interval '7 days', interval '180 days');
CREATE INDEX IF NOT EXISTS anomalies_series_time ON anomalies (series_key, occurred_at);
CREATE INDEX IF NOT EXISTS anomalies_incident ON anomalies (incident_id);
