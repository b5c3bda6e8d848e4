"""The scaling job: per service, forecast load a few minutes ahead and turn it into replicas.

Pure parts, no clients and no clock (the caller passes history, state and time):

    features     lag, rolling and calendar features of a load history at a fixed step
    forecaster   Forecaster: gradient-boosted forecast of the coming window's peak load, refitted
                 when the caller says, with a conformalised interval and a confidence; and
                 SeasonalNaiveForecaster, the yardstick
    policy       decide: forecast to desired replicas (capacity per replica, min/max, x2 up and /2
                 down per step, scale-down cooldown, reactive fallback at low confidence); and
                 reactive_replicas, the HPA's algorithm, for the baseline
    simulation   a cluster whose new replicas start after a delay: SLO-violation and replica minutes

``bench/scaling.py`` replays recorded traces through them (``chatstream bench scaling``).
"""
