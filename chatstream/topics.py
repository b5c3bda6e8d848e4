"""Topics as declared in ``pipelines/topics.py``, and bringing a cluster in line with them.

``plan`` compares the declaration with the cluster (pure: it takes what the cluster has);
``apply`` carries the plan out with confluent-kafka's AdminClient. Partitions only grow; a topic
with more partitions than declared is reported, never shrunk (that would reorder keys).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
)

from chatstream.errors import ChatstreamError

DAY_MS = 24 * 3600 * 1000


class TopicError(ChatstreamError):
    """The cluster refused a topic change or could not be reached."""


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its name, partitions and the topic-level configs we manage."""

    name: str
    partitions: int
    retention_ms: int
    cleanup_policy: str = "delete"
    # the largest record: the gateway's body limit must fit in it (it refuses to start otherwise)
    max_message_bytes: int = 2 * 1024 * 1024
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def configs(self) -> dict[str, str]:
        return {
            "retention.ms": str(self.retention_ms),
            "cleanup.policy": self.cleanup_policy,
            "max.message.bytes": str(self.max_message_bytes),
            **self.extra,
        }


def dead_letter_name(topic: str) -> str:
    """``dlq.<topic>``: where records of ``topic`` that cannot be stored are parked."""
    return f"dlq.{topic}"


DEAD_LETTER_HEADROOM = 256 * 1024


def dead_letter(source: TopicSpec, retention_ms: int = 14 * DAY_MS) -> TopicSpec:
    """The dead-letter topic of ``source``: ``dlq.<source>``, one partition per source's, and
    room for the largest source record plus the headers that say why it is there."""
    return TopicSpec(dead_letter_name(source.name), source.partitions, retention_ms,
                     max_message_bytes=source.max_message_bytes + DEAD_LETTER_HEADROOM)  # fmt: skip


@dataclass(frozen=True)
class Existing:
    """What the cluster has for one topic."""

    partitions: int
    configs: Mapping[str, str]


@dataclass(frozen=True)
class Action:
    topic: str
    kind: str  # create | add_partitions | set_config | drift
    detail: str
    partitions: int = 0
    configs: Mapping[str, str] = field(default_factory=dict)


def plan(
    specs: Sequence[TopicSpec], existing: Mapping[str, Existing], replication_factor: int
) -> list[Action]:
    """What to do so the cluster matches ``specs``; empty when it already does."""
    actions: list[Action] = []
    for spec in specs:
        have = existing.get(spec.name)
        if have is None:
            actions.append(
                Action(spec.name, "create",
                       f"{spec.partitions} partitions, replication {replication_factor}",
                       spec.partitions, spec.configs)
            )  # fmt: skip
            continue
        if have.partitions < spec.partitions:
            actions.append(
                Action(spec.name, "add_partitions",
                       f"{have.partitions} -> {spec.partitions} partitions", spec.partitions)
            )  # fmt: skip
        elif have.partitions > spec.partitions:
            actions.append(
                Action(spec.name, "drift",
                       f"has {have.partitions} partitions, declared {spec.partitions}; "
                       "partitions never shrink: raise the declaration or recreate the topic")
            )  # fmt: skip
        changed = {k: v for k, v in spec.configs.items() if have.configs.get(k) != v}
        if changed:
            detail = ", ".join(f"{k}: {have.configs.get(k)} -> {v}" for k, v in changed.items())
            actions.append(Action(spec.name, "set_config", detail, configs=changed))
    return actions


class TopicAdmin:
    """The cluster side: read what exists, carry out a plan."""

    def __init__(self, bootstrap: str, timeout_s: float = 30.0) -> None:
        self.bootstrap = bootstrap
        self.timeout_s = timeout_s
        self.admin = AdminClient({"bootstrap.servers": bootstrap})

    def replication_factor(self) -> int:
        """Three where the cluster has three brokers, else as many as it has."""
        brokers = self._metadata().brokers
        return max(1, min(3, len(brokers)))

    def _metadata(self):  # type: ignore[no-untyped-def]
        try:
            return self.admin.list_topics(timeout=self.timeout_s)
        except KafkaException as exc:
            raise TopicError(f"Kafka at {self.bootstrap} not reachable: {exc}") from exc

    def existing(self, names: Sequence[str]) -> dict[str, Existing]:
        topics = self._metadata().topics
        present = [n for n in names if n in topics]
        if not present:
            return {}
        resources = [ConfigResource(ConfigResource.Type.TOPIC, n) for n in present]
        found: dict[str, Existing] = {}
        for resource, future in self.admin.describe_configs(resources).items():
            try:
                entries = future.result(timeout=self.timeout_s)
            except KafkaException as exc:
                raise TopicError(f"cannot read configs of {resource.name}: {exc}") from exc
            configs = {k: e.value for k, e in entries.items() if e.value is not None}
            found[resource.name] = Existing(len(topics[resource.name].partitions), configs)
        return found

    def require(self, names: Sequence[str]) -> dict[str, Existing]:
        """What the cluster has for ``names``; TopicError naming any that do not exist."""
        found = self.existing(names)
        missing = sorted(set(names) - set(found))
        if missing:
            raise TopicError(f"topic(s) {', '.join(missing)} do not exist: run `chatstream topics apply`")
        return found

    def apply(self, actions: Sequence[Action], replication_factor: int) -> None:
        creates = [
            NewTopic(a.topic, a.partitions, replication_factor, config=dict(a.configs))
            for a in actions
            if a.kind == "create"
        ]
        grows = [NewPartitions(a.topic, a.partitions) for a in actions if a.kind == "add_partitions"]
        futures: dict[Any, Any] = {}
        if creates:
            futures.update(self.admin.create_topics(creates, request_timeout=self.timeout_s))
        if grows:
            futures.update(self.admin.create_partitions(grows, request_timeout=self.timeout_s))
        for action in actions:
            if action.kind == "set_config":
                entries = [
                    ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                    for k, v in action.configs.items()
                ]
                resource = ConfigResource(ConfigResource.Type.TOPIC, action.topic, incremental_configs=entries)
                futures.update(self.admin.incremental_alter_configs([resource]))
        for key, future in futures.items():
            try:
                future.result(timeout=self.timeout_s)
            except KafkaException as exc:
                raise TopicError(f"{getattr(key, 'name', key)}: {exc.args[0].str()}") from exc
