"""The anomaly job's wiring: which topics it watches (and how each becomes series points), and
where its anomalies go."""

from __future__ import annotations

from jobs.anomaly.series import from_engagement, from_metric
from pipelines.topics import ANOMALIES, ENGAGEMENT, METRICS

SOURCES = {METRICS.name: from_metric, ENGAGEMENT.name: from_engagement}
ANOMALIES_TOPIC = ANOMALIES.name
