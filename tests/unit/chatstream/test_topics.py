from __future__ import annotations

import pytest

from chatstream.topics import Existing, TopicSpec, dead_letter, plan
from pipelines.topics import ALL_TOPICS, DEAD_LETTER_TOPICS, EVENT_TOPICS

SPEC = TopicSpec("chat.actions.v1", partitions=6, retention_ms=1000)
MATCHING = Existing(6, {"retention.ms": "1000", "cleanup.policy": "delete", "max.message.bytes": "2097152", "segment.ms": "9"})


@pytest.mark.parametrize(
    ("existing", "kinds"),
    [
        ({}, ["create"]),
        ({"chat.actions.v1": MATCHING}, []),
        ({"chat.actions.v1": Existing(3, MATCHING.configs)}, ["add_partitions"]),
        ({"chat.actions.v1": Existing(12, MATCHING.configs)}, ["drift"]),
        ({"chat.actions.v1": Existing(6, {"retention.ms": "5", "cleanup.policy": "delete"})}, ["set_config"]),
        ({"chat.actions.v1": Existing(3, {"cleanup.policy": "compact"})}, ["add_partitions", "set_config"]),
    ],
)
def test_plan(existing: dict[str, Existing], kinds: list[str]) -> None:
    assert [a.kind for a in plan([SPEC], existing, replication_factor=1)] == kinds


def test_plan_changes_only_the_configs_that_differ() -> None:
    have = Existing(6, {"retention.ms": "5", "cleanup.policy": "delete", "max.message.bytes": "2097152"})
    (action,) = plan([SPEC], {SPEC.name: have}, 1)
    assert dict(action.configs) == {"retention.ms": "1000"}
    assert "5 -> 1000" in action.detail


def test_create_carries_partitions_and_configs() -> None:
    (action,) = plan([SPEC], {}, replication_factor=3)
    assert action.partitions == 6
    assert dict(action.configs) == {"retention.ms": "1000", "cleanup.policy": "delete", "max.message.bytes": "2097152"}
    assert "replication 3" in action.detail


def test_every_event_topic_has_a_dead_letter_topic() -> None:
    assert {t.name for t in DEAD_LETTER_TOPICS} == {f"dlq.{t.name}" for t in EVENT_TOPICS}
    assert dead_letter(SPEC).partitions == SPEC.partitions


def test_declared_topics_follow_the_naming_contract() -> None:
    import re

    pattern = re.compile(r"^(dlq\.)?[a-z]+\.[a-z_]+\.v\d+$")
    assert all(pattern.match(t.name) for t in ALL_TOPICS)
    assert len({t.name for t in ALL_TOPICS}) == len(ALL_TOPICS)


def test_a_dead_letter_topic_holds_its_largest_source_record_and_the_why() -> None:
    assert int(dead_letter(SPEC).configs["max.message.bytes"]) > int(SPEC.configs["max.message.bytes"])
