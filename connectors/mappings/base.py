"""What every mapping is made of: ``Mapping`` itself, and the expressions its two renderings share."""

from __future__ import annotations

from collections.abc import Callable, Mapping as MappingOf
from dataclasses import dataclass
from typing import Any

from connectors.errors import MappingError

Row = tuple[Any, ...]


@dataclass(frozen=True)
class Mapping:
    """``to_row(value, topic, partition, offset)`` and ``engine_select(schema)``: one expression per
    column, where ``{kafka_topic}``, ``{kafka_partition}`` and ``{kafka_offset}`` stand for the
    record's coordinates. ``key`` and ``version`` are columns of ``columns``.

    ``to_row`` raises ``MappingError`` (or KeyError, TypeError, ValueError) for a record that
    cannot be a row: it is dead-lettered. ``engine_select`` then makes the engine's query fail
    (``throwIf``), so the set goes to Python, which finds that record."""

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


FIRST_MS, LAST_MS = -62_135_596_800_000, 253_402_300_799_999  # 0001-01-01 .. 9999-12-31T23:59:59.999Z


def within_years(column: str) -> str:
    """A timestamp-millis column as is, or a failed query beyond the years 1-9999: there the
    engine's text saturates and Python's datetime overflows, so the engine gives the set up and
    the Python decoder rejects the record at fault (every mapping's times go through this; a
    null stays null)."""
    return (f"if(throwIf(toUnixTimestamp64Milli({column}) NOT BETWEEN {FIRST_MS} AND {LAST_MS}, "
            f"'{column} outside the years 1-9999') = 0, {column}, {column})")  # fmt: skip


def not_null(expression: str, column: str, table: str) -> str:
    """``expression`` (of the nullable ``column``) as not nullable, or a failed query where it is
    null: a column ``table``'s rows cannot do without (``require`` is the Python rendering)."""
    value = f"assumeNotNull({expression})"
    return f"if(throwIf(isNull({expression}), '{table} needs {column}') = 0, {value}, {value})"


def require(value: MappingOf[str, Any], column: str, table: str) -> Any:
    """``value[column]``, or ``MappingError`` where it is null: ``not_null``'s Python twin."""
    found = value.get(column)
    if found is None:
        raise MappingError(f"cannot map to {table}: {column} is null, and {table} needs it")
    return found


KAFKA_COLUMNS = ("kafka_topic", "kafka_partition", "kafka_offset")
"""Where each row came from: the generic sink reads them back to resume after a crash."""
KAFKA_SELECT = ("{kafka_topic}", "{kafka_partition}", "{kafka_offset}")
"""``KAFKA_COLUMNS`` as the engine's placeholders for the record's coordinates."""
