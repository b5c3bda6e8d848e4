"""Stream jobs, one package each: pure logic beside the thin wiring to Kafka."""
