"""The anomaly job's detection, pure: no clients, no clock.

- ``baseline``: how far a value lies from what the series' recent history (and season) expects;
- ``forest``: a fitted IsolationForest scored one point at a time;
- ``detector``: one series' detector, both combined into a score in [0, 1] with an explanation;
- ``incident``: one open anomaly per series until it resolves;
- ``series``: which minute-level series the job watches, and how records become their points;
- ``events``: the ``ops.anomalies.v1`` records (opened, resolved) and a webhook's text;
- ``watch``: one series' detector and incident, stepped minute by minute, with its state.
"""
