"""A saved KRaft cluster id starting with '-' (one fresh state directory in 64 drew one, and
kafka-storage took it for an option) is replaced: the real StorageTool formats, the broker starts.

A broker of its own in a fresh state directory (ports of its own), on the session stack's jars.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient

from chatstream.settings import Settings
from infra.local.kafka import LocalKafka


@pytest.fixture
def fresh_kafka(running_stack: Settings, unique: str) -> Iterator[LocalKafka]:
    settings = Settings(
        state_dir=running_stack.state_dir / f"kafka-{unique}", port_base=running_stack.port_base + 600
    )
    kafka = LocalKafka(settings)
    kafka.home.mkdir(parents=True)
    # The session stack resolved the same Kafka version's jars: no second Maven run.
    shutil.copy(LocalKafka(running_stack).classpath_file, kafka.classpath_file)
    try:
        yield kafka
    finally:
        kafka.stop()
        shutil.rmtree(settings.state_dir, ignore_errors=True)


def test_a_saved_cluster_id_starting_with_a_dash_is_replaced_and_the_broker_starts(
    fresh_kafka: LocalKafka,
) -> None:
    kafka = fresh_kafka
    (kafka.home / "cluster-id").write_text("-AECAwQFBgcICQoLDA0ODw\n")  # an id that was never formatted

    kafka.start()

    cluster_id = (kafka.home / "cluster-id").read_text().strip()
    assert len(cluster_id) == 22 and not cluster_id.startswith("-")
    assert f"cluster.id={cluster_id}\n" in (kafka.data / "meta.properties").read_text()
    admin = AdminClient({"bootstrap.servers": kafka.settings.kafka_bootstrap_servers})
    assert admin.describe_cluster().result(timeout=30).cluster_id == cluster_id
