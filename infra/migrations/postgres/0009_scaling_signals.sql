-- ops.scaling_signals.v1 for operations: the scaling job's signals, daily partitions on
-- occurred_at kept 90 days. The key is the signal's identity (SCALING_SIGNAL_KEY in
-- connectors/mappings/scaling_signals.py); it holds the partition column.
SELECT chatstream_create_timeseries(
    'scaling_signals',
    $cols$
        event_id             uuid             NOT NULL,
        occurred_at          timestamptz      NOT NULL,
        target               text             NOT NULL,
        metric               text             NOT NULL,
        observed             double precision NOT NULL,
        forecast             double precision NOT NULL,
        forecast_lower       double precision,
        forecast_upper       double precision,
        horizon_s            integer          NOT NULL,
        capacity_per_replica double precision NOT NULL,
        current_replicas     integer,
        desired_replicas     integer          NOT NULL,
        min_replicas         integer          NOT NULL,
        max_replicas         integer          NOT NULL,
        reason               text             NOT NULL,
        model                text             NOT NULL,
        trace_id             text             NOT NULL,
        kafka_topic          text             NOT NULL,
        kafka_partition      integer          NOT NULL,
        kafka_offset         bigint           NOT NULL,
        PRIMARY KEY (event_id, occurred_at, target)
    $cols$,
    'occurred_at', interval '1 day', interval '90 days');
CREATE INDEX IF NOT EXISTS scaling_signals_target_time ON scaling_signals (target, occurred_at);
