from __future__ import annotations

from pathlib import Path

from chatstream.settings import Settings
from infra.local.kafka import server_properties
from infra.local.registry import jdbc_settings, jvm_options


def props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_kafka_runs_kraft_single_node_with_working_transactions(tmp_path: Path) -> None:
    p = props(server_properties(Settings(port_base=25000), tmp_path / "data"))
    assert p["process.roles"] == "broker,controller"
    assert p["listeners"] == "PLAINTEXT://127.0.0.1:25092,CONTROLLER://127.0.0.1:25093"
    assert p["transaction.state.log.replication.factor"] == "1"
    assert p["transaction.state.log.min.isr"] == "1"
    assert p["offsets.topic.replication.factor"] == "1"
    assert p["auto.create.topics.enable"] == "false"
    assert p["log.dirs"] == str(tmp_path / "data")


def test_apicurio_datasource_from_postgres_url() -> None:
    env = jdbc_settings("postgresql://chatstream:pw@127.0.0.1:19432/apicurio")
    assert env == {
        "APICURIO_DATASOURCE_URL": "jdbc:postgresql://127.0.0.1:19432/apicurio",
        "APICURIO_DATASOURCE_USERNAME": "chatstream",
        "APICURIO_DATASOURCE_PASSWORD": "pw",
    }


def test_apicurio_validates_pooled_connections_so_it_survives_a_postgres_restart() -> None:
    options = jvm_options(384)
    assert options[0] == "-Xmx384m"
    # Apicurio 3.0 names its PostgreSQL datasource "postgresql" (Quarkus' Agroal pool).
    assert "-Dquarkus.datasource.postgresql.jdbc.validate-on-borrow=true" in options
    assert "-Dquarkus.datasource.postgresql.jdbc.background-validation-interval=30S" in options
