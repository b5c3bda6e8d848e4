"""One valid sample value per contract, built from the schema itself (for round-trip tests)."""

from __future__ import annotations

import uuid
from typing import Any

from chatstream.avro.catalog import Contract


def sample(avro_type: Any, name: str = "") -> Any:
    """A plausible value of ``avro_type``: non-null branches filled, so every field is exercised."""
    if isinstance(avro_type, list):
        return sample([t for t in avro_type if t != "null"][0], name)
    if isinstance(avro_type, str):
        return {
            "string": str(uuid.uuid4()) if name.endswith("_id") else f"{name}-value",
            "int": 7,
            "long": 1_790_000_000_000,
            "double": 0.5,
            "float": 0.25,
            "boolean": True,
            "bytes": b"x",
        }[avro_type]
    kind = avro_type["type"]
    if avro_type.get("logicalType") == "uuid":
        return str(uuid.uuid4())
    if avro_type.get("logicalType") == "timestamp-millis":
        return 1_790_000_000_000
    if kind == "record":
        return {f["name"]: sample(f["type"], f["name"]) for f in avro_type["fields"]}
    if kind == "enum":
        return avro_type["symbols"][0]
    if kind == "array":
        return [sample(avro_type["items"], name)]
    if kind == "map":
        return {"k": sample(avro_type["values"], name)}
    return sample(kind, name)


def sample_event(contract: Contract) -> dict[str, Any]:
    return sample(contract.schema)  # type: ignore[no-any-return]
