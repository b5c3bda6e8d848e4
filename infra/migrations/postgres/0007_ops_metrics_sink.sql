-- ops_metrics is filled by the generic PostgreSQL sink (ops.metrics.v1): a row is the event,
-- keyed (event_id, occurred_at, tenant_id) as in ClickHouse (connectors/mappings/ops_metrics.py,
-- OPS_METRIC_KEY), with the Kafka coordinates every sink table keeps. The coordinates are
-- nullable: rows written before this migration have none. The key is dropped and added again on
-- the parent; PostgreSQL (or TimescaleDB) does the same on every partition (chunk).
ALTER TABLE ops_metrics ADD COLUMN IF NOT EXISTS kafka_topic text;
ALTER TABLE ops_metrics ADD COLUMN IF NOT EXISTS kafka_partition integer;
ALTER TABLE ops_metrics ADD COLUMN IF NOT EXISTS kafka_offset bigint;
DO $$
DECLARE
    v_key text;
BEGIN
    SELECT conname INTO v_key FROM pg_constraint
    WHERE conrelid = 'ops_metrics'::regclass AND contype = 'p';
    IF v_key IS NOT NULL THEN
        EXECUTE format('ALTER TABLE ops_metrics DROP CONSTRAINT %I', v_key);
    END IF;
END
$$;
ALTER TABLE ops_metrics ADD CONSTRAINT ops_metrics_pkey PRIMARY KEY (event_id, occurred_at, tenant_id);
CREATE INDEX IF NOT EXISTS ops_metrics_service_time ON ops_metrics (service, name, occurred_at);
