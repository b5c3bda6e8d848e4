-- ai.responses.v1 for operations: ONE ROW PER AI REQUEST, daily partitions on requested_at kept
-- 30 days. The key is the request's identity (connectors/mappings/ai_requests.py,
-- AI_REQUEST_KEY): every event of a request has it, so the sink's merge collapses them into one
-- row, the highest kafka_offset winning (the terminal COMPLETED/FAILED once the request ended).
-- A replayed COMPLETED is the same row again: a request is billed once. No answer text.
SELECT chatstream_create_timeseries(
    'ai_requests',
    $cols$
        request_id             uuid             NOT NULL,
        requested_at           timestamptz      NOT NULL,
        occurred_at            timestamptz      NOT NULL,
        tenant_id              text             NOT NULL,
        user_id                text             NOT NULL,
        conversation_id        text,
        session_id             text,
        trace_id               text             NOT NULL,
        client                 text,
        message_id             text,
        status                 text             NOT NULL,
        provider               text             NOT NULL,
        model                  text             NOT NULL,
        chunks                 bigint           NOT NULL,
        finish_reason          text,
        prompt_tokens          integer,
        completion_tokens      integer,
        total_tokens           integer,
        tokens_estimated       boolean          NOT NULL,
        cost_usd               double precision,
        latency_ms             bigint,
        time_to_first_token_ms bigint,
        error_code             text,
        error_message          text,
        retryable              boolean,
        attempts               integer          NOT NULL,
        fallback_used          boolean          NOT NULL,
        content_length         integer,
        kafka_topic            text             NOT NULL,
        kafka_partition        integer          NOT NULL,
        kafka_offset           bigint           NOT NULL,
        PRIMARY KEY (request_id, requested_at, tenant_id)
    $cols$,
    'requested_at', interval '1 day', interval '30 days');
CREATE INDEX IF NOT EXISTS ai_requests_tenant_time ON ai_requests (tenant_id, requested_at);
