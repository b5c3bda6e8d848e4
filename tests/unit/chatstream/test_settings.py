from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from chatstream.settings import Settings, redact_url


def test_local_endpoints_follow_port_base(tmp_path: Path) -> None:
    s = Settings(state_dir=tmp_path, port_base=21000)
    assert s.kafka_bootstrap_servers == "127.0.0.1:21092"
    assert s.schema_registry_url == "http://127.0.0.1:21081/apis/ccompat/v7"
    assert s.postgres_url() == "postgresql://chatstream:chatstream@127.0.0.1:21432/chatstream"
    assert s.clickhouse_url == "http://127.0.0.1:21123/"  # chDB's engine, served by `infra up`
    assert all(s.is_local(c) for c in ("kafka", "registry", "postgres", "clickhouse"))


def test_external_endpoints_win_and_are_not_local(tmp_path: Path) -> None:
    s = Settings(
        state_dir=tmp_path,
        kafka_bootstrap="broker:9092",
        registry_url="http://sr:8081",
        postgres_dsn=SecretStr("postgresql://u:p@db:5432/x"),
        clickhouse_dsn="http://default:pw@ch:8123/analytics",
    )
    assert s.kafka_bootstrap_servers == "broker:9092"
    assert s.schema_registry_url == "http://sr:8081"
    assert s.registry_admin_url is None
    assert s.postgres_url() == "postgresql://u:p@db:5432/x"
    assert s.clickhouse_url == "http://default:pw@ch:8123/analytics"
    assert not any(s.is_local(c) for c in ("kafka", "registry", "postgres", "clickhouse"))


def test_settings_read_the_environment_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATSTREAM_PORT_BASE", "30000")
    monkeypatch.setenv("CHATSTREAM_KAFKA_VERSION", "4.0.0")
    s = Settings()
    assert s.kafka_port == 30092
    assert s.kafka_version == "4.0.0"


def test_settings_are_frozen_and_validated() -> None:
    s = Settings()
    with pytest.raises(ValidationError):
        s.port_base = 1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Settings(port_base=80)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:secret@h:5/db", "postgresql://u:***@h:5/db"),
        ("http://h:8123/db", "http://h:8123/db"),
        ("chdb:///tmp/x", "chdb:///tmp/x"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_a_relative_state_dir_becomes_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert Settings(state_dir=Path("rel/state")).state_dir == tmp_path / "rel" / "state"
