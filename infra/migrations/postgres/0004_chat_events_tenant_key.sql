-- chat_events is keyed by the event's identity in both stores: (tenant_id, event_id, action,
-- occurred_at), ClickHouse's sort key (connectors/mappings.py, CHAT_EVENT_KEY). Idempotency is
-- per tenant: the same event_id from two tenants is two events, as is the same event_id with
-- another action or another time; 0003's (event_id, occurred_at) kept only the first of them.
-- The key keeps (event_id, occurred_at) first: lookups by event id still use it, and it holds
-- the partition column, as a partitioned table's (and a hypertable's) key must.
-- Native partitions and TimescaleDB chunks alike: the parent's key is dropped and added again,
-- and PostgreSQL (or TimescaleDB) does the same on every partition (chunk). Every row already
-- there is unique under the new key (it was under a part of it). The table is locked while the
-- new index is built (one pass over the 30 days kept): the sinks wait, then go on.
DO $$
DECLARE
    v_key text;
BEGIN
    SELECT conname INTO v_key FROM pg_constraint
    WHERE conrelid = 'chat_events'::regclass AND contype = 'p';
    IF v_key IS NOT NULL THEN
        EXECUTE format('ALTER TABLE chat_events DROP CONSTRAINT %I', v_key);
    END IF;
END
$$;
ALTER TABLE chat_events ADD CONSTRAINT chat_events_pkey PRIMARY KEY (event_id, occurred_at, tenant_id, action);
