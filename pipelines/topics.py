"""Every topic of the platform and its settings; ``chatstream topics apply`` makes them so."""

from __future__ import annotations

from chatstream.topics import DAY_MS, TopicSpec, dead_letter

CHAT_ACTIONS = TopicSpec("chat.actions.v1", partitions=6, retention_ms=7 * DAY_MS)
AI_REQUESTS = TopicSpec("ai.requests.v1", partitions=6, retention_ms=7 * DAY_MS)
AI_RESPONSES = TopicSpec("ai.responses.v1", partitions=6, retention_ms=3 * DAY_MS)
ENGAGEMENT = TopicSpec("analytics.engagement.v1", partitions=3, retention_ms=30 * DAY_MS)
SESSIONS = TopicSpec("analytics.sessions.v1", partitions=3, retention_ms=30 * DAY_MS)
LATE_EVENTS = TopicSpec("analytics.late_events.v1", partitions=3, retention_ms=30 * DAY_MS)
ANOMALIES = TopicSpec("ops.anomalies.v1", partitions=3, retention_ms=14 * DAY_MS)
# Keyed by scaling target: compaction keeps each target's latest signal for controllers.
SCALING_SIGNALS = TopicSpec(
    "ops.scaling_signals.v1", partitions=3, retention_ms=7 * DAY_MS, cleanup_policy="compact,delete"
)
METRICS = TopicSpec("ops.metrics.v1", partitions=3, retention_ms=14 * DAY_MS)

# The chat API's records on chat.actions.v1, marked for the dispatch job (which reads these only,
# undecoded otherwise): DISPATCH_HEADER is b"request" or b"stop", REQUEST_HEADER the request id.
DISPATCH_HEADER = "chatstream-dispatch"
REQUEST_HEADER = "chatstream-request-id"

EVENT_TOPICS = (
    CHAT_ACTIONS,
    AI_REQUESTS,
    AI_RESPONSES,
    ENGAGEMENT,
    SESSIONS,
    LATE_EVENTS,
    ANOMALIES,
    SCALING_SIGNALS,
    METRICS,
)
DEAD_LETTER_TOPICS = tuple(dead_letter(topic) for topic in EVENT_TOPICS)
ALL_TOPICS = EVENT_TOPICS + DEAD_LETTER_TOPICS
