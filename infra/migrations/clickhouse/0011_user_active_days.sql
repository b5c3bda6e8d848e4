-- One row per tenant, UTC day and user with any chat action that day: what day-N retention reads
-- (GET /v1/analytics/retention), instead of scanning chat_events for every user's first day.
-- Filled by a materialized view on every insert into chat_events, and once from what chat_events
-- already holds. ReplacingMergeTree on the whole key: replays and the backfill collapse (queries
-- GROUP BY the key, so rows not merged yet count once too).
CREATE TABLE IF NOT EXISTS user_active_days
(
    tenant_id LowCardinality(String),
    day       Date,
    user_id   String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (tenant_id, day, user_id)
TTL day + INTERVAL 400 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS user_active_days_mv TO user_active_days AS
SELECT tenant_id, toDate(occurred_at) AS day, user_id
FROM chat_events
GROUP BY tenant_id, day, user_id;

INSERT INTO user_active_days
SELECT tenant_id, toDate(occurred_at) AS day, user_id
FROM chat_events
GROUP BY tenant_id, day, user_id;
