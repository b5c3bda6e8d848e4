"""Versioned DDL migrations for PostgreSQL and ClickHouse (``chatstream db migrate``)."""
