"""The contracts themselves: valid, self-contained, Flink-readable, common fields everywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chatstream.avro.catalog import Contract, load_catalog, load_contract
from chatstream.avro.errors import ContractError
from pipelines.topics import EVENT_TOPICS

CATALOG = load_catalog()
COMMON = [
    "event_id",
    "occurred_at",
    "tenant_id",
    "user_id",
    "conversation_id",
    "session_id",
    "trace_id",
    "client",
]


def unions(avro_type: Any) -> list[list[Any]]:
    """Every union anywhere inside ``avro_type``."""
    if isinstance(avro_type, list):
        return [avro_type] + [u for t in avro_type for u in unions(t)]
    if isinstance(avro_type, dict):
        found: list[list[Any]] = []
        for f in avro_type.get("fields", []):
            found += unions(f["type"])
        for key in ("items", "values"):
            if key in avro_type:
                found += unions(avro_type[key])
        return found
    return []


def test_every_event_topic_has_exactly_one_contract() -> None:
    assert sorted(CATALOG) == sorted(t.name for t in EVENT_TOPICS)


@pytest.mark.parametrize("contract", CATALOG.values(), ids=CATALOG.keys())
def test_common_fields_lead_every_contract_with_one_shape(contract: Contract) -> None:
    names = [f["name"] for f in contract.schema["fields"]]
    assert names[: len(COMMON)] == COMMON
    reference = CATALOG["chat.actions.v1"].schema["fields"][: len(COMMON)]
    assert contract.schema["fields"][: len(COMMON)] == reference
    by_name = {f["name"]: f for f in contract.schema["fields"]}
    assert by_name["event_id"]["type"] == {"type": "string", "logicalType": "uuid"}
    assert by_name["occurred_at"]["type"] == {"type": "long", "logicalType": "timestamp-millis"}


@pytest.mark.parametrize("contract", CATALOG.values(), ids=CATALOG.keys())
def test_only_nullable_unions_so_flink_can_read_every_field(contract: Contract) -> None:
    for union in unions(contract.schema):
        assert len(union) == 2 and union[0] == "null", f"{contract.topic}: union {union}"


@pytest.mark.parametrize("contract", CATALOG.values(), ids=CATALOG.keys())
def test_optional_fields_default_to_null(contract: Contract) -> None:
    for f in contract.schema["fields"]:
        if isinstance(f["type"], list):
            assert f.get("default", "missing") is None, f["name"]


def test_chat_action_has_one_detail_field_per_action() -> None:
    schema = CATALOG["chat.actions.v1"].schema
    fields = {f["name"]: f for f in schema["fields"]}
    symbols = fields["action"]["type"]["symbols"]
    assert len(symbols) == 14
    for symbol in symbols:
        detail = fields[symbol.lower()]
        assert detail["type"][0] == "null" and detail["type"][1]["type"] == "record"


def test_subject_follows_topic_name_strategy() -> None:
    assert CATALOG["chat.actions.v1"].subject == "chat.actions.v1-value"
    assert CATALOG["chat.actions.v1"].record_name == "io.chatstream.events.ChatAction"


def test_canonical_is_compact_json_of_the_file() -> None:
    contract = CATALOG["ops.metrics.v1"]
    assert json.loads(contract.canonical) == json.loads(contract.path.read_text())
    assert "\n" not in contract.canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not readable JSON"),
        ('{"type": "record", "name": "X", "fields": [{"name": "a", "type": "nope"}]}', "not a valid Avro"),
        ('"string"', "must be a record"),
    ],
)
def test_bad_schema_files_are_named_in_the_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.topic.v1.avsc"
    path.write_text(text)
    with pytest.raises(ContractError, match=message) as info:
        load_contract(path)
    assert str(path) in str(info.value)


def test_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="no .avsc files"):
        load_catalog(tmp_path)
