from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from chatstream.avro.catalog import load_catalog, load_contract
from chatstream.avro.errors import RegistryError
from chatstream.avro.registry import ContractRegistry
from chatstream.settings import Settings
from tests.integration.conftest import chatstream


def test_every_schema_is_registered_and_readable_by_id(running_stack: Settings) -> None:
    with SchemaRegistryClient({"url": running_stack.schema_registry_url}) as client:
        for contract in load_catalog().values():
            latest = client.get_latest_version(contract.subject)
            by_id = client.get_schema(latest.schema_id)
            assert json.loads(by_id.schema_str) == contract.schema


def test_registering_again_is_idempotent(running_stack: Settings) -> None:
    with ContractRegistry(running_stack.schema_registry_url) as registry:
        for contract in load_catalog().values():
            first = registry.register(contract)
            again = registry.register(contract)
            assert (again.schema_id, again.version, again.new) == (first.schema_id, first.version, False)


def evolve(tmp_path: Path, topic: str, change: dict[str, object]) -> Path:
    """A copy of the ``ops.metrics.v1`` contract renamed to ``topic`` with one field changed."""
    schema = json.loads(load_catalog()["ops.metrics.v1"].path.read_text())
    fields = [f for f in schema["fields"] if f["name"] != change["name"]]
    fields.append(change)
    schema["fields"] = fields
    path = tmp_path / f"{topic}.avsc"
    path.write_text(json.dumps(schema))
    return path


def test_registry_rejects_incompatible_and_accepts_compatible_changes(
    running_stack: Settings, tmp_path: Path, unique: str, request: pytest.FixtureRequest
) -> None:
    registry = ContractRegistry(running_stack.schema_registry_url)
    request.addfinalizer(registry.close)
    topic = f"test.metrics{unique}.v1"
    original = tmp_path / "original"
    original.mkdir()
    shutil.copy(load_catalog()["ops.metrics.v1"].path, original / f"{topic}.avsc")
    v1 = registry.register(load_contract(original / f"{topic}.avsc"))
    assert v1.new

    # a new required field without a default: old data cannot be read with the new schema
    breaking = load_contract(evolve(tmp_path, topic, {"name": "region", "type": "string"}))
    assert registry.check(breaking).state == "incompatible"
    assert registry.check(breaking).incompatible_with == [v1.version]
    with pytest.raises(RegistryError, match="refused"):
        registry.register(breaking)

    # the same field with a default is a backward-compatible change
    compatible = load_contract(
        evolve(tmp_path, topic, {"name": "region", "type": "string", "default": "eu"})
    )
    assert registry.check(compatible).state == "compatible"
    v2 = registry.register(compatible)
    assert v2.version == v1.version + 1 and v2.new
    assert registry.check(compatible).state == "registered"


def test_schemas_check_command_passes_on_the_committed_contracts(running_stack: Settings) -> None:
    done = chatstream(running_stack, "schemas", "check", "--json")
    results = json.loads(done.stdout)
    assert {r["state"] for r in results} == {"registered"}
    assert len(results) == len(load_catalog())


def test_unreachable_registry_is_a_clear_error() -> None:
    contract = next(iter(load_catalog().values()))
    with ContractRegistry("http://127.0.0.1:9/apis/ccompat/v7") as registry:
        with pytest.raises(RegistryError, match="not reachable"):
            registry.check(contract)


@pytest.mark.parametrize("contract", ["analytics.engagement.v1", "ops.anomalies.v1"])
def test_a_contract_evolved_backward_compatibly_from_its_first_version(
    running_stack: Settings, tmp_path: Path, unique: str, request: pytest.FixtureRequest, contract: str
) -> None:
    """analytics.engagement.v1 gained the engagement job's columns, ops.anomalies.v1 its status and
    incident, with defaults: the registry (BACKWARD_TRANSITIVE) takes each over the version first
    published (kept in tests/integration/contracts)."""
    registry = ContractRegistry(running_stack.schema_registry_url)
    request.addfinalizer(registry.close)
    topic = f"test.{contract.split('.')[1]}{unique}.v1"
    first, now = tmp_path / "first", tmp_path / "now"
    first.mkdir()
    now.mkdir()
    shutil.copy(Path(__file__).parent / "contracts" / f"{contract}.first.avsc", first / f"{topic}.avsc")
    shutil.copy(load_catalog()[contract].path, now / f"{topic}.avsc")
    v1 = registry.register(load_contract(first / f"{topic}.avsc"))
    current = load_contract(now / f"{topic}.avsc")
    assert registry.check(current).state == "compatible"
    assert registry.register(current).version == v1.version + 1
