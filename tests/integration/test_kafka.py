from __future__ import annotations

import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from chatstream.settings import Settings


def make_topic(settings: Settings, name: str, partitions: int = 3) -> None:
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout=30)


def drain(settings: Settings, topic: str, isolation: str, expected: int) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": f"test-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "isolation.level": isolation,
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    empty_polls = 0
    try:
        while empty_polls < 10:
            msg = consumer.poll(1.0)
            if msg is None:
                empty_polls += 1 if len(values) >= expected else 0
                continue
            assert msg.error() is None, msg.error()
            values.append(msg.value())
    finally:
        consumer.close()
    return values


def test_transactional_produce_and_read_committed_consume(running_stack: Settings, unique: str) -> None:
    topic = f"test.txn.{unique}"
    make_topic(running_stack, topic)
    producer = Producer(
        {
            "bootstrap.servers": running_stack.kafka_bootstrap_servers,
            "transactional.id": f"test-{unique}",
            "enable.idempotence": True,
            "acks": "all",
        }
    )
    producer.init_transactions(30)

    producer.begin_transaction()
    for i in range(50):
        producer.produce(topic, key=f"k{i % 7}", value=f"committed-{i}".encode())
    producer.commit_transaction(30)

    producer.begin_transaction()
    for i in range(20):
        producer.produce(topic, key="k", value=f"aborted-{i}".encode())
    producer.flush(30)
    producer.abort_transaction(30)

    committed = drain(running_stack, topic, "read_committed", expected=50)
    assert sorted(committed) == sorted(f"committed-{i}".encode() for i in range(50))

    uncommitted = drain(running_stack, topic, "read_uncommitted", expected=70)
    assert len(uncommitted) == 70  # the aborted records are in the log, hidden by isolation


def test_topic_auto_creation_is_off(running_stack: Settings, unique: str) -> None:
    producer = Producer(
        {"bootstrap.servers": running_stack.kafka_bootstrap_servers, "message.timeout.ms": 3000}
    )
    errors: list[str] = []
    producer.produce(f"test.never.created.{unique}", b"x", on_delivery=lambda err, _m: errors.append(str(err)))
    producer.flush(15)
    admin = AdminClient({"bootstrap.servers": running_stack.kafka_bootstrap_servers})
    assert f"test.never.created.{unique}" not in admin.list_topics(timeout=10).topics
    assert len(errors) == 1 and errors[0] != "None"  # delivery failed: no topic was made


def test_declared_topics_exist_with_their_settings(running_stack: Settings) -> None:
    from pipelines.topics import ALL_TOPICS
    from chatstream.topics import TopicAdmin, plan

    admin = TopicAdmin(running_stack.kafka_bootstrap_servers)
    existing = admin.existing([t.name for t in ALL_TOPICS])
    assert set(existing) == {t.name for t in ALL_TOPICS}
    assert plan(ALL_TOPICS, existing, admin.replication_factor()) == []
    assert existing["ops.scaling_signals.v1"].configs["cleanup.policy"] == "compact,delete"
