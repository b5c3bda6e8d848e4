"""Run the real Kafka, Apicurio, PostgreSQL and embedded ClickHouse as plain local processes."""
