"""The engagement job (PyFlink, Flink SQL): chat activity aggregated in event time, exactly once.

Reads ``chat.actions.v1`` and ``ai.responses.v1``; writes one-minute windows per tenant, model and
user to ``analytics.engagement.v1``, user sessions to ``analytics.sessions.v1`` and events that
arrived too late to ``analytics.late_events.v1``, through Flink's transactional Kafka sink.

Pure parts, no Flink and no I/O:

    avro_types    contracts as Flink SQL columns; the projections the sources read
    sql           the job as SQL text (views, windows, sessions, late events, event ids)
    score         the engagement score (the same formula as the SQL), and histogram buckets
    checkpoints   which retained checkpoint a start resumes from
    config        the job's settings

The wiring (``app``) builds the TableEnvironment, submits the statements as one job and watches it.
Errors: ``errors`` (one tree under ``EngagementError``).
"""
