"""What the gateway checks before it serves: settings that cannot work and a topic that is not
ready are refused at start-up with one line saying what to change, never found by clients later.
"""

from __future__ import annotations

from chatstream.errors import ChatstreamError
from chatstream.settings import Settings
from chatstream.topics import Existing, TopicAdmin

# Room a record needs in a Kafka batch beyond its key and value (batch and record headers),
# and what the gateway adds to a client's event when it encodes it (ids, times, trace id).
RECORD_OVERHEAD = 4096


class GatewaySetupError(ChatstreamError):
    """The gateway cannot serve with these settings or this cluster."""


def check_limits(settings: Settings) -> None:
    """Each worker's share of a tenant's burst must hold the largest batch the gateway takes."""
    burst = settings.rate_limit_burst / settings.gateway_workers
    if burst < settings.max_batch_events:
        raise GatewaySetupError(
            f"a tenant's burst per gateway worker ({settings.rate_limit_burst:g} / "
            f"{settings.gateway_workers} workers = {burst:g} events) is below the largest batch "
            f"({settings.max_batch_events} events): no such batch could ever be accepted. Raise "
            "CHATSTREAM_RATE_LIMIT_BURST or lower CHATSTREAM_MAX_BATCH_EVENTS"
        )


def require_topics(bootstrap: str, topics: list[str]) -> dict[str, Existing]:
    """What the cluster has for the gateway's topics; TopicError naming any that is missing."""
    return TopicAdmin(bootstrap, timeout_s=10).require(topics)


def max_message_bytes(topic: Existing) -> int:
    """The largest record the topic takes (its ``max.message.bytes``)."""
    return int(topic.configs.get("max.message.bytes", 1_048_588))


def check_body_fits(settings: Settings, topic_limit: int) -> None:
    """Every event a body within the limit can hold must fit in one Kafka record."""
    if settings.max_body_bytes + RECORD_OVERHEAD > topic_limit:
        raise GatewaySetupError(
            f"CHATSTREAM_MAX_BODY_BYTES ({settings.max_body_bytes}) does not fit the topic's records: "
            f"max.message.bytes is {topic_limit} and a record needs {RECORD_OVERHEAD} bytes more. "
            "Lower CHATSTREAM_MAX_BODY_BYTES, or raise max.message.bytes in pipelines/topics.py and run "
            "`chatstream topics apply`"
        )


def transactional_id(settings: Settings, worker: int) -> str:
    """Stable per instance, port and worker: a restarted worker fences its predecessor at once."""
    return f"chatstream-gateway-{settings.instance}-{settings.gateway_listen_port}-{worker}"
