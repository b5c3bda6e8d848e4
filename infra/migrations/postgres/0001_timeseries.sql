-- Time-partitioned ("Timescale-style") tables behind one small DDL interface:
--   SELECT chatstream_create_timeseries(table, columns, time_column, chunk, retention);
--   SELECT * FROM chatstream_maintain_timeseries();   -- create ahead, drop past retention
-- With the TimescaleDB extension the table is a hypertable with a retention policy; without it,
-- native range partitions, one per chunk, plus a DEFAULT partition that catches rows outside the
-- created ranges (moved into their own partition when it is created). Callers do not care which.

CREATE TABLE IF NOT EXISTS chatstream_timeseries (
    table_name  text PRIMARY KEY,
    time_column text NOT NULL,
    chunk       interval NOT NULL,
    retention   interval NOT NULL,
    flavor      text NOT NULL CHECK (flavor IN ('timescaledb', 'native')),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION chatstream_timeseries_flavor() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
                THEN 'timescaledb' ELSE 'native' END
$$;

-- Partition of `p_table` starting at `p_start`, named <table>_pYYYYMMDD_HHMI (UTC).
CREATE OR REPLACE FUNCTION chatstream_partition_name(p_table text, p_start timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT p_table || '_p' || to_char(p_start AT TIME ZONE 'UTC', 'YYYYMMDD"_"HH24MI')
$$;

CREATE OR REPLACE FUNCTION chatstream_maintain_timeseries(
    p_now timestamptz DEFAULT now(), p_only text DEFAULT NULL
) RETURNS TABLE (table_name text, created integer, dropped integer)
LANGUAGE plpgsql AS $$
DECLARE
    r           record;
    child       record;
    v_step      double precision;
    v_start     timestamptz;
    v_end       timestamptz;
    v_name      text;
    v_has_rows  boolean;
    v_created   integer;
    v_dropped   integer;
    v_child_at  timestamptz;
BEGIN
    FOR r IN SELECT * FROM chatstream_timeseries t
             WHERE t.flavor = 'native' AND (p_only IS NULL OR t.table_name = p_only) LOOP
        v_created := 0;
        v_dropped := 0;
        v_step := extract(epoch FROM r.chunk);
        -- chunk-aligned (to the Unix epoch) from the retention horizon to three chunks ahead
        v_start := to_timestamp(floor(extract(epoch FROM p_now - r.retention) / v_step) * v_step);
        v_end := p_now + 3 * r.chunk;
        WHILE v_start < v_end LOOP
            v_name := chatstream_partition_name(r.table_name, v_start);
            IF to_regclass(quote_ident(v_name)) IS NULL THEN
                EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE %I >= $1 AND %I < $2)',
                               r.table_name || '_default', r.time_column, r.time_column)
                    INTO v_has_rows USING v_start, v_start + r.chunk;
                IF v_has_rows THEN
                    -- rows the DEFAULT partition caught: move them into the new partition
                    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                                   v_name, r.table_name);
                    EXECUTE format('WITH moved AS (DELETE FROM %I WHERE %I >= $1 AND %I < $2 RETURNING *) '
                                   'INSERT INTO %I SELECT * FROM moved',
                                   r.table_name || '_default', r.time_column, r.time_column, v_name)
                        USING v_start, v_start + r.chunk;
                    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                                   r.table_name, v_name, v_start, v_start + r.chunk);
                ELSE
                    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                                   v_name, r.table_name, v_start, v_start + r.chunk);
                END IF;
                v_created := v_created + 1;
            END IF;
            v_start := v_start + r.chunk;
        END LOOP;
        -- drop partitions that end before the retention horizon, and expired default rows
        FOR child IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                     WHERE i.inhparent = quote_ident(r.table_name)::regclass
                       AND c.relname ~ ('^' || r.table_name || '_p[0-9]{8}_[0-9]{4}$') LOOP
            v_child_at := to_timestamp(right(child.relname, 13), 'YYYYMMDD"_"HH24MI')::timestamp
                          AT TIME ZONE 'UTC';
            IF v_child_at + r.chunk <= p_now - r.retention THEN
                EXECUTE format('DROP TABLE %I', child.relname);
                v_dropped := v_dropped + 1;
            END IF;
        END LOOP;
        EXECUTE format('DELETE FROM %I WHERE %I < $1', r.table_name || '_default', r.time_column)
            USING p_now - r.retention;
        table_name := r.table_name;
        created := v_created;
        dropped := v_dropped;
        RETURN NEXT;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION chatstream_create_timeseries(
    p_table text, p_columns text, p_time_column text, p_chunk interval, p_retention interval
) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_flavor text;
BEGIN
    SELECT flavor INTO v_flavor FROM chatstream_timeseries WHERE table_name = p_table;
    IF FOUND THEN
        RETURN v_flavor;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
       AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS timescaledb;
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'timescaledb is installed but cannot load (%); using native partitions', SQLERRM;
        END;
    END IF;
    v_flavor := chatstream_timeseries_flavor();
    IF v_flavor = 'timescaledb' THEN
        EXECUTE format('CREATE TABLE IF NOT EXISTS %I (%s)', p_table, p_columns);
        EXECUTE format('SELECT create_hypertable(%L, %L, chunk_time_interval => %L::interval, if_not_exists => true)',
                       p_table, p_time_column, p_chunk);
        EXECUTE format('SELECT add_retention_policy(%L, %L::interval, if_not_exists => true)',
                       p_table, p_retention);
    ELSE
        EXECUTE format('CREATE TABLE IF NOT EXISTS %I (%s) PARTITION BY RANGE (%I)',
                       p_table, p_columns, p_time_column);
        EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF %I DEFAULT',
                       p_table || '_default', p_table);
    END IF;
    INSERT INTO chatstream_timeseries (table_name, time_column, chunk, retention, flavor)
    VALUES (p_table, p_time_column, p_chunk, p_retention, v_flavor);
    PERFORM chatstream_maintain_timeseries(now(), p_table);
    RETURN v_flavor;
END
$$;
