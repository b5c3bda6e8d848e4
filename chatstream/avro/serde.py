"""Confluent's wire format with fastavro: magic byte 0, 4-byte big-endian schema id, Avro binary.

Readable by every Kafka-ecosystem tool (Flink ``avro-confluent``, ClickHouse ``AvroConfluent``,
kcat, confluent-kafka's deserializers). Encoding is per record on the hot path, so the writer
schema is parsed once and the framing is a fixed 5-byte prefix.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from typing import Any

import fastavro

from chatstream.avro.errors import ContractError

MAGIC = 0
_HEADER = struct.Struct(">bI")


class WireFormatError(ContractError):
    """Bytes that are not a Confluent-framed Avro record, or whose schema cannot be had."""


class ConfluentEncoder:
    """Encode records of one schema, registered as ``schema_id``."""

    def __init__(self, schema: dict[str, Any], schema_id: int) -> None:
        self.schema_id = schema_id
        self.parsed = fastavro.parse_schema(schema)
        self._header = _HEADER.pack(MAGIC, schema_id)

    def encode(self, record: dict[str, Any]) -> bytes:
        """Raises ``TypeError``/``ValueError`` (fastavro's) when the record does not fit."""
        buffer = io.BytesIO()
        buffer.write(self._header)
        fastavro.schemaless_writer(buffer, self.parsed, record)
        return buffer.getvalue()


class ConfluentDecoder:
    """Decode framed records of any schema id, fetching writer schemas once each.

    ``fetch_schema(schema_id) -> dict`` is the registry lookup (injected, so tests need no
    registry); parsed schemas are cached for the decoder's life (ids are immutable). The fetcher
    raises ``WireFormatError`` for an id the registry does not have (the record is bad) and
    anything else for a registry it cannot reach (the record is fine; try again later).
    """

    def __init__(self, fetch_schema: Callable[[int], dict[str, Any]]) -> None:
        self._fetch = fetch_schema
        self._schemas: dict[int, Any] = {}

    def decode(self, payload: bytes | None) -> dict[str, Any]:
        if payload is None or len(payload) < 5:
            raise WireFormatError("not Confluent wire format: fewer than 5 bytes")
        magic, schema_id = _HEADER.unpack_from(payload)
        if magic != MAGIC:
            raise WireFormatError(f"not Confluent wire format: magic byte {magic}, expected 0")
        parsed = self._schemas.get(schema_id)
        if parsed is None:
            parsed = fastavro.parse_schema(self._fetch(schema_id))
            self._schemas[schema_id] = parsed
        try:
            record = fastavro.schemaless_reader(io.BytesIO(payload[5:]), parsed, None)
        except OverflowError as exc:  # fastavro's logical types, as Python's date and time
            raise WireFormatError(f"Avro body of schema id {schema_id} holds a value out of range, such as a date "
                                  f"or time outside the years 1-9999 ({exc})") from exc  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - fastavro raises many kinds on corrupt input
            raise WireFormatError(f"Avro body does not decode with schema id {schema_id}: {exc}") from exc
        if not isinstance(record, dict):
            raise WireFormatError(f"schema id {schema_id} is not a record schema")
        return record
