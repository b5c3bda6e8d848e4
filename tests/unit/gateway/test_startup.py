"""Settings the gateway cannot serve with are refused before it starts."""

from __future__ import annotations

import pytest

from chatstream.settings import Settings
from gateway.startup import RECORD_OVERHEAD, GatewaySetupError, check_body_fits, check_limits


def test_a_burst_per_worker_below_the_batch_limit_is_refused() -> None:
    with pytest.raises(GatewaySetupError, match=r"400 / 2 workers = 200 events\) is below the largest batch \(1000"):
        check_limits(Settings(rate_limit_burst=400, gateway_workers=2, max_batch_events=1000))
    check_limits(Settings(rate_limit_burst=2000, gateway_workers=2, max_batch_events=1000))


def test_the_body_limit_must_fit_the_topics_records() -> None:
    settings = Settings(max_body_bytes=1 << 20)
    check_body_fits(settings, (1 << 20) + RECORD_OVERHEAD)
    with pytest.raises(GatewaySetupError, match="max.message.bytes is 1048588"):
        check_body_fits(settings, 1_048_588)
