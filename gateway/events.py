"""Chat actions as clients send them (JSON) into Avro records of ``chat.actions.v1``.

A client event is the Avro record with two conveniences: ``type`` is the action in snake_case
(``message_sent``), and ``occurred_at`` may be an ISO-8601 string as well as epoch milliseconds.
Its details sit under the key named after the type, exactly as in the schema:

    {"type": "feedback_given", "conversation_id": "c1",
     "feedback_given": {"message_id": "m7", "rating": "UP"}}

``event_id`` (kept when given, else a UUIDv7), ``occurred_at`` (else now) and ``trace_id`` (else
the request's) are filled in; ``tenant_id`` and ``user_id`` come from the token and, when a body
states them, must match it. Pure: the clock and the id source are passed in.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastavro.validation import ValidationError, validate

from chatstream.avro.serde import ConfluentEncoder
from chatstream.ids import uuid7, uuid7_time_ms
from gateway.auth import Identity

MAX_FUTURE_MS = 24 * 3600 * 1000
DAY_MS = 24 * 3600 * 1000
TRACE_ID = re.compile(r"[0-9a-f]{32}")
INT_RANGE = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


@dataclass(frozen=True)
class FieldError:
    index: int
    field: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message}


@dataclass(frozen=True)
class Normalized:
    """The outcome for one request: encoded (key, value) pairs, or what is wrong."""

    encoded: list[tuple[bytes, bytes]]
    event_ids: list[str]
    errors: list[FieldError]
    forbidden: list[FieldError]


class ChatActionShape:
    """What a chat action may contain, read once from the ``chat.actions.v1`` schema."""

    def __init__(self, schema: dict[str, Any], encoder: ConfluentEncoder, *, max_age_days: int = 30) -> None:
        """``max_age_days``: how old an ``occurred_at`` may be (the stores' shortest retention)."""
        self.schema = schema
        self.encoder = encoder
        self.max_age_ms = max_age_days * DAY_MS
        fields = {f["name"]: f for f in schema["fields"]}
        self.types = {s.lower(): s for s in fields["action"]["type"]["symbols"]}
        self.detail_fields = {
            name: {f["name"] for f in fields[name]["type"][1]["fields"]} for name in self.types
        }
        # detail records by full name: the union branch named up front (fastavro's tuple
        # notation: no trial validation of the branch per event), and error paths back to JSON
        self._detail_record = {name: f"{schema['namespace']}.{fields[name]['type'][1]['name']}" for name in self.types}
        self._record_of_detail = {full: name for name, full in self._detail_record.items()}
        # ``completion`` is the chat API's own (gateway.chat): a client's action may not ask for answers
        self.allowed = (set(fields) - {"action", "completion"}) | {"type"}
        # every integer of a detail is a count, length, size or duration: 0 up to its Avro range
        self.integers = {
            name: [(f["name"], INT_RANGE[kind][1]) for f in fields[name]["type"][1]["fields"]
                   if (kind := _integer_kind(f["type"])) is not None]
            for name in self.types
        }  # fmt: skip

    def normalize(
        self,
        raw_events: list[Any],
        identity: Identity,
        *,
        now_ms: int,
        trace_id: str,
        new_id: Callable[[int], str] = uuid7,
        check_nul: bool = True,
    ) -> Normalized:
        """``check_nul=False`` when the request body has no ``\\u0000`` (JSON's only way to a NUL)."""
        encoded: list[tuple[bytes, bytes]] = []
        event_ids: list[str] = []
        errors: list[FieldError] = []
        forbidden: list[FieldError] = []
        for index, raw in enumerate(raw_events):
            record = self._record(index, raw, identity, now_ms, trace_id, new_id, errors, forbidden)
            if record is None:
                continue
            if check_nul:
                nul = [FieldError(index, path, "NUL characters are not allowed in text") for path in _nul_paths(raw)]
                if nul:
                    errors += nul
                    continue
            kind = record["action"].lower()
            detail = record[kind]
            record[kind] = (self._detail_record[kind], detail)
            try:
                value = self.encoder.encode(record)
            except (TypeError, ValueError, KeyError, AttributeError, OverflowError):
                record[kind] = detail
                errors += self._schema_errors(index, record)
                continue
            key = record.get("conversation_id") or record.get("session_id") or identity.user_id
            encoded.append((key.encode(), value))
            event_ids.append(record["event_id"])
        return Normalized(encoded, event_ids, errors, forbidden)

    def _record(
        self,
        index: int,
        raw: Any,
        identity: Identity,
        now_ms: int,
        trace_id: str,
        new_id: Callable[[int], str],
        errors: list[FieldError],
        forbidden: list[FieldError],
    ) -> dict[str, Any] | None:
        if not isinstance(raw, dict):
            errors.append(FieldError(index, "", "an event must be a JSON object"))
            return None
        before = len(errors)
        kind = raw.get("type")
        if not isinstance(kind, str) or kind not in self.types:
            known = ", ".join(sorted(self.types))
            errors.append(FieldError(index, "type", f"unknown event type {kind!r}; one of: {known}"))
            return None
        for name in raw:
            if name not in self.allowed:
                errors.append(FieldError(index, name, "unknown field"))
            elif name in self.types and name != kind and raw[name] is not None:
                errors.append(FieldError(index, name, f"details of type {name}, not of {kind}"))
        detail = raw.get(kind)
        if detail is None:
            detail = {}
        if not isinstance(detail, dict):
            errors.append(FieldError(index, kind, "must be a JSON object"))
        else:
            for name in detail:
                if name not in self.detail_fields[kind]:
                    errors.append(FieldError(index, f"{kind}.{name}", "unknown field"))
            for name, highest in self.integers[kind]:
                value = detail.get(name)
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, int):  # 5.5, 5.0 and true are not integers
                    errors.append(FieldError(index, f"{kind}.{name}", f"must be an integer, got {value!r}"[:200]))
                elif not 0 <= value <= highest:
                    errors.append(FieldError(index, f"{kind}.{name}", f"must be between 0 and {highest}, got {value}"))
        for claim, expected in (("tenant_id", identity.tenant_id), ("user_id", identity.user_id)):
            if claim in raw and raw[claim] != expected:
                forbidden.append(FieldError(index, claim, f"differs from the token's {claim}"))
        event_id = raw.get("event_id")
        default_time: int | None = now_ms
        if event_id is None:
            event_id = new_id(now_ms)
        else:
            try:
                parsed_id = uuid.UUID(event_id)
                event_id = str(parsed_id)
                # a retry must be the same event: its time comes from the client or the id
                default_time = uuid7_time_ms(parsed_id)
            except (ValueError, TypeError, AttributeError):
                errors.append(FieldError(index, "event_id", "must be a UUID"))
        if "occurred_at" not in raw and default_time is None:
            errors.append(FieldError(
                index, "occurred_at",
                "required with a client-supplied event_id that is not a UUIDv7 "
                "(a retried event must carry the same occurred_at)",
            ))  # fmt: skip
            return None
        occurred_at = _epoch_ms(raw.get("occurred_at", default_time))
        if occurred_at is None:
            errors.append(FieldError(index, "occurred_at", "must be epoch milliseconds or ISO-8601 with a zone"))
        elif occurred_at > now_ms + MAX_FUTURE_MS:
            errors.append(FieldError(index, "occurred_at", "more than a day in the future"))
        elif occurred_at < now_ms - self.max_age_ms:
            errors.append(FieldError(index, "occurred_at", f"more than {self.max_age_ms // DAY_MS} days in the past "
                                                            "(older than the stores keep)"))  # fmt: skip
        given_trace = raw.get("trace_id")
        if given_trace is not None and (not isinstance(given_trace, str) or not TRACE_ID.fullmatch(given_trace)
                                        or given_trace == "0" * 32):  # fmt: skip
            errors.append(FieldError(index, "trace_id", "must be a W3C trace id: 32 lowercase hex characters, not all zero"))
        if len(errors) > before:
            return None
        record = {k: v for k, v in raw.items() if k != "type"}
        record.update(
            event_id=event_id,
            occurred_at=occurred_at,
            tenant_id=identity.tenant_id,
            user_id=identity.user_id,
            action=self.types[kind],
        )
        record[kind] = detail
        record.setdefault("trace_id", trace_id)
        return record

    def _schema_errors(self, index: int, record: dict[str, Any]) -> list[FieldError]:
        """Every schema violation of ``record``, as JSON paths (the slow path, errors only)."""
        try:
            validate(record, self.encoder.parsed, raise_errors=True)
        except ValidationError as exc:
            found = [self._field_error(index, e) for e in exc.errors]
            # fastavro also reports the union holding a bad record as "not null": keep the deepest
            deep = {f.field.split(".")[0] for f in found if "." in f.field}
            kept = [f for f in found if f.field not in deep] or found
            return list({f.field: f for f in reversed(kept)}.values())[::-1]  # one per field
        return [FieldError(index, "", "does not fit the chat.actions.v1 schema")]

    def _field_error(self, index: int, error: Any) -> FieldError:
        record_name, _, field = str(error.field).rpartition(".")
        prefix = self._record_of_detail.get(record_name)
        path = f"{prefix}.{field}" if prefix else field
        schema = error.schema
        if isinstance(schema, dict) and schema.get("type") == "enum":
            return FieldError(index, path, f"expected one of {', '.join(schema['symbols'])}, got {error.datum!r}")
        expected = schema if isinstance(schema, str) else schema.get("type", "a valid value")
        if expected == "null" and isinstance(error.datum, dict):
            return FieldError(index, path, "does not match the schema")
        return FieldError(index, path, f"expected {expected}, got {error.datum!r}"[:200])


def _epoch_ms(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            return None
        return int(parsed.timestamp() * 1000)
    return None


def _integer_kind(avro_type: Any) -> str | None:
    """``int`` or ``long`` for an (optionally nullable) Avro integer without a logical type."""
    for branch in avro_type if isinstance(avro_type, list) else [avro_type]:
        if isinstance(branch, str) and branch in INT_RANGE:
            return branch
    return None


def _nul_paths(value: Any, path: str = "") -> list[str]:
    """The JSON paths of every string holding a NUL character."""
    if isinstance(value, str):
        return [path] if "\x00" in value else []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _nul_paths(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _nul_paths(v, f"{path}[{i}]")]
    return []
