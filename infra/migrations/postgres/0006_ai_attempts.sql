-- ai.requests.v1 for operations: one row per attempt at an answer, daily partitions on
-- occurred_at kept 30 days. The key is the event's identity (AI_ATTEMPT_KEY in
-- connectors/mappings/ai_attempts.py); it holds the partition column. No prompt text.
SELECT chatstream_create_timeseries(
    'ai_attempts',
    $cols$
        event_id               uuid             NOT NULL,
        occurred_at            timestamptz      NOT NULL,
        requested_at           timestamptz,
        tenant_id              text             NOT NULL,
        user_id                text             NOT NULL,
        conversation_id        text,
        session_id             text,
        trace_id               text             NOT NULL,
        client                 text,
        request_id             uuid             NOT NULL,
        message_id             text,
        attempt                integer          NOT NULL,
        deployment             text,
        reason                 text,
        provider               text             NOT NULL,
        model                  text             NOT NULL,
        stream                 boolean          NOT NULL,
        max_tokens             integer,
        temperature            double precision,
        prompt_tokens_estimate integer,
        prompt_messages        integer          NOT NULL,
        deadline_at            timestamptz,
        kafka_topic            text             NOT NULL,
        kafka_partition        integer          NOT NULL,
        kafka_offset           bigint           NOT NULL,
        PRIMARY KEY (event_id, occurred_at, tenant_id)
    $cols$,
    'occurred_at', interval '1 day', interval '30 days');
CREATE INDEX IF NOT EXISTS ai_attempts_tenant_time ON ai_attempts (tenant_id, occurred_at);
CREATE INDEX IF NOT EXISTS ai_attempts_request ON ai_attempts (request_id);
