"""The contracts on the wire: Confluent's framing, readable by confluent-kafka's own deserializer."""

from __future__ import annotations

import struct
import uuid
from datetime import datetime

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from chatstream.avro.catalog import load_catalog
from chatstream.settings import Settings
from tests.samples import sample_event


def test_a_chat_action_in_confluent_wire_format_round_trips(running_stack: Settings) -> None:
    contract = load_catalog()["chat.actions.v1"]
    event = sample_event(contract)
    marker = str(uuid.uuid4())
    event["conversation_id"] = marker
    with SchemaRegistryClient({"url": running_stack.schema_registry_url}) as registry:
        registered = registry.get_latest_version(contract.subject)
        serialize = AvroSerializer(
            registry, contract.canonical, conf={"auto.register.schemas": False, "use.latest.version": True}
        )
        deserialize = AvroDeserializer(registry)
        ctx = SerializationContext(contract.topic, MessageField.VALUE)
        payload = serialize(event, ctx)
        assert payload is not None
        assert payload[0] == 0 and struct.unpack(">I", payload[1:5])[0] == registered.schema_id

        producer = Producer({"bootstrap.servers": running_stack.kafka_bootstrap_servers, "acks": "all", "enable.idempotence": True})
        delivered: list[tuple[int, int]] = []
        producer.produce(contract.topic, key=marker.encode(), value=payload,
                         on_delivery=lambda err, m: delivered.append((m.partition(), m.offset())))  # fmt: skip
        assert producer.flush(30) == 0 and len(delivered) == 1
        (partition, offset), = delivered

        consumer = Consumer(
            {"bootstrap.servers": running_stack.kafka_bootstrap_servers, "group.id": f"test-{marker}", "enable.auto.commit": False}
        )
        consumer.assign([TopicPartition(contract.topic, partition, offset)])  # read exactly that record
        found = None
        try:
            for _ in range(30):
                msg = consumer.poll(1.0)
                if msg is not None and msg.error() is None:
                    found = msg
                    break
        finally:
            consumer.close()
        assert found is not None
        decoded = deserialize(found.value(), ctx)
    assert str(decoded["event_id"]) == event["event_id"]
    assert found.key() == marker.encode() and decoded["conversation_id"] == marker
    assert isinstance(decoded["occurred_at"], datetime)  # timestamp-millis as a real timestamp
    assert decoded["action"] == event["action"]
