from __future__ import annotations

import io

import fastavro
import pytest

from chatstream.avro.catalog import Contract, load_catalog
from tests.samples import sample_event

CATALOG = load_catalog()


@pytest.mark.parametrize("contract", CATALOG.values(), ids=CATALOG.keys())
def test_every_contract_round_trips_a_full_event(contract: Contract) -> None:
    parsed = fastavro.parse_schema(contract.schema)
    event = sample_event(contract)
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, event)
    buffer.seek(0)
    decoded = fastavro.schemaless_reader(buffer, parsed)
    assert str(decoded["event_id"]) == event["event_id"]
    assert set(decoded) == {f["name"] for f in contract.schema["fields"]}


@pytest.mark.parametrize("contract", CATALOG.values(), ids=CATALOG.keys())
def test_a_minimal_event_needs_only_the_required_fields(contract: Contract) -> None:
    """Optional fields really are optional: a writer may leave every one of them out."""
    parsed = fastavro.parse_schema(contract.schema)
    full = sample_event(contract)
    minimal = {f["name"]: full[f["name"]] for f in contract.schema["fields"] if "default" not in f}
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, minimal)
    buffer.seek(0)
    decoded = fastavro.schemaless_reader(buffer, parsed)
    for f in contract.schema["fields"]:
        if "default" in f:
            assert decoded[f["name"]] == f["default"], f["name"]
