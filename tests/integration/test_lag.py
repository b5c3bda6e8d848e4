"""Catching up with a transactional topic: its partitions end with a commit marker that takes an
offset and is never delivered, so "lag 0" never comes for a consumer that commits the last record
read + 1 (as Faust does); ``data_end_offsets`` is the goal such a consumer can reach."""

from __future__ import annotations

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from chatstream.lag import data_end_offsets, end_offsets, wait_committed
from chatstream.settings import Settings


def test_a_transactions_marker_is_not_a_record_to_wait_for(running_stack: Settings, unique: str) -> None:
    bootstrap = running_stack.kafka_bootstrap_servers
    topic = f"test-lag-{unique}"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept until the topic is made: its futures need it
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"test-lag-{unique}"})
    producer.init_transactions(30)
    producer.begin_transaction()
    for i in range(3):
        producer.produce(topic, f"r{i}".encode(), partition=0)
    producer.commit_transaction(30)

    assert end_offsets(bootstrap, topic) == {0: 4} and data_end_offsets(bootstrap, topic) == {0: 3}
    group = f"test-lag-{unique}"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        assert not wait_committed(bootstrap, group, topic, {0: 3}, timeout_s=1)
        consumer.commit(offsets=[TopicPartition(topic, 0, 3)], asynchronous=False)  # the last record + 1
        assert wait_committed(bootstrap, group, topic, data_end_offsets(bootstrap, topic), timeout_s=10)
    finally:
        consumer.close()
