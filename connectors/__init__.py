"""Sinks (Kafka to ClickHouse, Kafka to PostgreSQL) and model-provider clients."""
