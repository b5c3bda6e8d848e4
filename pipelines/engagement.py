"""The engagement job's wiring: what it reads and writes, and the figures its outputs share.

``LATENCY_BOUNDS_MS`` is part of the contract of ``analytics.engagement.v1`` (and so of the
``engagement_windows`` table): ``latency_hist[i]`` / ``ttft_hist[i]`` count values ``<= bound i``
and ``> bound i-1``; one last bucket holds larger values (27 buckets). Readers sum the arrays over
any set of windows and take a weighted quantile.
"""

from __future__ import annotations

from pipelines.topics import AI_RESPONSES, CHAT_ACTIONS, ENGAGEMENT, LATE_EVENTS, SESSIONS

LATENCY_BOUNDS_MS: tuple[int, ...] = (
    5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1000, 1500, 2000,
    3000, 4000, 5000, 7500, 10000, 15000, 20000, 30000, 60000, 120000,
)  # fmt: skip

SOURCES = (CHAT_ACTIONS.name, AI_RESPONSES.name)
WINDOWS_TOPIC = ENGAGEMENT.name
SESSIONS_TOPIC = SESSIONS.name
LATE_TOPIC = LATE_EVENTS.name

WINDOW_S = 60
"""The tumbling windows' length (the contract's one minute)."""
DIMENSIONS = ("tenant", "model", "user")

# Defaults of the job's settings (jobs/engagement/config.py).
OUT_OF_ORDERNESS_S = 5.0
ALLOWED_LATENESS_S = 10.0
IDLE_TIMEOUT_S = 30.0
SESSION_GAP_S = 30 * 60
CHECKPOINT_INTERVAL_S = 5.0
CONSUMER_GROUP = "chatstream-engagement"
PRINCIPAL = "svc:engagement"
"""user_id of derived events that are about no one user (tenant and model rows)."""
