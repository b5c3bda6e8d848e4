-- chat.actions.v1 for operations: one row per event, daily partitions kept 30 days.
-- The key is (event_id, occurred_at): a partitioned table's key must hold its partition column,
-- and the gateway makes a retried event carry the same occurred_at, so event_id stays unique.
SELECT chatstream_create_timeseries(
    'chat_events',
    $cols$
        event_id        uuid        NOT NULL,
        occurred_at     timestamptz NOT NULL,
        tenant_id       text        NOT NULL,
        user_id         text        NOT NULL,
        conversation_id text,
        session_id      text,
        trace_id        text        NOT NULL,
        client          text,
        action          text        NOT NULL,
        message_id      text,
        model           text,
        text_length     integer,
        rating          text,
        details         jsonb       NOT NULL,
        kafka_topic     text        NOT NULL,
        kafka_partition integer     NOT NULL,
        kafka_offset    bigint      NOT NULL,
        PRIMARY KEY (event_id, occurred_at)
    $cols$,
    'occurred_at', interval '1 day', interval '30 days');
CREATE INDEX IF NOT EXISTS chat_events_tenant_time ON chat_events (tenant_id, occurred_at);

-- Offsets the PostgreSQL sink consumed, committed in the same transaction as the rows.
CREATE TABLE IF NOT EXISTS chatstream_sink_offsets (
    consumer_group text    NOT NULL,
    topic          text    NOT NULL,
    kafka_partition integer NOT NULL,
    next_offset    bigint  NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, kafka_partition)
);
