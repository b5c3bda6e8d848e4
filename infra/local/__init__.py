"""Run the real Kafka, Apicurio, PostgreSQL and ClickHouse (chDB's engine, served over HTTP) as plain local processes."""
