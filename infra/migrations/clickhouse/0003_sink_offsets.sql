-- Where each ClickHouse sink's consumer group has got to, per topic partition: the next offset
-- to read, written after a flush's rows landed and its dead letters were acknowledged. The sink
-- resumes after it (or Kafka's committed offset, if further) and skips the records past it that
-- the table already holds, so a flush cut short by a crash is completed, not doubled.
CREATE TABLE IF NOT EXISTS chatstream_sink_offsets
(
    consumer_group  String,
    topic           String,
    kafka_partition UInt32,
    next_offset     UInt64,
    updated_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(next_offset)
ORDER BY (consumer_group, topic, kafka_partition);
