"""How each topic's records become rows of a table: one mapping per table, two renderings.

A ``Mapping`` holds the table's columns and the same mapping twice: ``to_row`` for records
decoded in Python (fastavro), and ``engine_select`` as ClickHouse expressions over the record's
Avro fields, for records decoded in ClickHouse's engine (``connectors.decoding``). A parity test
runs both over the same records and compares every column. Mappings take the topic's Avro schema
(the contract) as an argument; which topic drains into which table is ``pipelines/sinks.py``'s
business, not theirs.

A mapping also names the row's identity: ``key``, the columns that make two rows the same event
in every store (ClickHouse's sort key, PostgreSQL's primary key), and ``version``, the column
whose highest value wins when copies of one event differ elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping as MappingOf
from dataclasses import dataclass
from typing import Any

import orjson

Row = tuple[Any, ...]


@dataclass(frozen=True)
class Mapping:
    """``to_row(value, topic, partition, offset)`` and ``engine_select(schema)``: one expression per
    column, where ``{kafka_topic}``, ``{kafka_partition}`` and ``{kafka_offset}`` stand for the
    record's coordinates. ``key`` and ``version`` are columns of ``columns``."""

    table: str
    columns: tuple[str, ...]
    to_row: Callable[[MappingOf[str, Any], str, int, int], Row]
    engine_select: Callable[[dict[str, Any]], tuple[str, ...]]
    key: tuple[str, ...]
    version: str

    def __post_init__(self) -> None:
        unknown = [c for c in (*self.key, self.version) if c not in self.columns]
        if unknown or not self.key or self.version in self.key:
            raise ValueError(f"mapping of {self.table}: key {self.key} and version {self.version!r} "
                             f"must be distinct columns of it (unknown: {unknown})")  # fmt: skip


# -- chat.actions.v1 -> chat_events -----------------------------------------------------------

CHAT_EVENT_COLUMNS = (
    "event_id",
    "occurred_at",
    "tenant_id",
    "user_id",
    "conversation_id",
    "session_id",
    "trace_id",
    "client",
    "action",
    "message_id",
    "model",
    "text_length",
    "rating",
    "details",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
)


def chat_event_row(v: MappingOf[str, Any], topic: str, partition: int, offset: int) -> Row:
    """A ``ChatAction`` as a ``chat_events`` row; its action's details also as JSON text."""
    action: str = v["action"]
    detail: dict[str, Any] = v.get(action.lower()) or {}
    return (
        v["event_id"],
        v["occurred_at"],
        v["tenant_id"],
        v["user_id"],
        v.get("conversation_id"),
        v.get("session_id"),
        v["trace_id"],
        v.get("client"),
        action,
        detail.get("message_id"),
        detail.get("model") or detail.get("to_model"),
        detail.get("text_length"),
        detail.get("rating"),
        orjson.dumps(detail, default=str).decode(),
        topic,
        partition,
        offset,
    )


FIRST_MS, LAST_MS = -62_135_596_800_000, 253_402_300_799_999  # 0001-01-01 .. 9999-12-31T23:59:59.999Z


def within_years(column: str) -> str:
    """A timestamp-millis column as is, or a failed query beyond the years 1-9999: there the
    engine's text saturates and Python's datetime overflows, so the engine gives the set up and
    the Python decoder rejects the record at fault (every mapping's times go through this)."""
    return (f"if(throwIf(toUnixTimestamp64Milli({column}) NOT BETWEEN {FIRST_MS} AND {LAST_MS}, "
            f"'{column} outside the years 1-9999') = 0, {column}, {column})")  # fmt: skip


def chat_event_select(schema: dict[str, Any]) -> tuple[str, ...]:
    """``chat_event_row`` as ClickHouse expressions over the chat action's Avro columns."""
    fields = {f["name"]: f for f in schema["fields"]}
    details = {s.lower(): {f["name"] for f in fields[s.lower()]["type"][1]["fields"]}
               for s in fields["action"]["type"]["symbols"]}  # fmt: skip

    def pick(field: str, *, fallback: str | None = None, wrap: str = "{}") -> str:
        arms = [f"action = '{a.upper()}', {wrap.format(f'{a}.{field}')}" for a, names in details.items() if field in names]
        if fallback:
            arms += [f"action = '{a.upper()}', {a}.{fallback}" for a, names in details.items()
                     if fallback in names and field not in names]  # fmt: skip
        return f"multiIf({', '.join(arms)}, NULL)"

    as_json = ", ".join(f"action = '{a.upper()}', toJSONString({a})" for a in details)
    expressions = {
        "occurred_at": within_years("occurred_at"),
        "action": "toString(action)",
        "message_id": pick("message_id"),
        "model": pick("model", fallback="to_model"),
        "text_length": pick("text_length"),
        "rating": pick("rating", wrap="toString({})"),
        "details": f"multiIf({as_json}, '{{}}')",
        "kafka_topic": "{kafka_topic}",
        "kafka_partition": "{kafka_partition}",
        "kafka_offset": "{kafka_offset}",
    }
    return tuple(expressions.get(column, column) for column in CHAT_EVENT_COLUMNS)


CHAT_EVENT_KEY = ("tenant_id", "event_id", "action", "occurred_at")
"""What makes two chat actions the same event, in both stores: idempotency is per tenant, and
the same ``event_id`` with another action or another time is another event (kept, not dropped).
The gateway gives a retried event the same ``event_id``, action and ``occurred_at``."""

CHAT_EVENTS = Mapping("chat_events", CHAT_EVENT_COLUMNS, chat_event_row, chat_event_select,
                      key=CHAT_EVENT_KEY, version="kafka_offset")  # fmt: skip

MAPPINGS = {m.table: m for m in (CHAT_EVENTS,)}
"""Every mapping by its table: ``pipelines/sinks.py`` names tables, the CLI looks them up here."""
