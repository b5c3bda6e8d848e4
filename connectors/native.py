"""Decode a batch of Confluent-framed records in ClickHouse's engine (chDB, in-process).

The records go to a scratch file that ``file(path, 'AvroConfluent')`` reads, writer schemas
coming from the registry; a route's ``native_select`` maps the Avro columns to the table's,
each row given its own Kafka offset (``rowNumberInAllBlocks`` indexes the batch's offsets, read
on one thread so the order is the file's). Both sinks use it: ClickHouse inserts the SELECT,
PostgreSQL COPYs its tab-separated output.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chatstream.avro.serde import WireFormatError
from connectors.sink import Batch, MappingError, RawRecord, Reject, Row, SinkWriteError, SourceRecord

_SCRATCH = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())


def quote(text: str) -> str:
    """A ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@contextmanager
def scratch_file(records: Sequence[RawRecord]) -> Iterator[str]:
    """The records' framed bytes, back to back, in a file that is removed afterwards."""
    fd, name = tempfile.mkstemp(prefix="chatstream-batch-", suffix=".avro", dir=_SCRATCH)
    try:
        with os.fdopen(fd, "wb") as scratch:
            for record in records:
                scratch.write(record.value)
        yield name
    finally:
        os.unlink(name)


def select_from(batch: Batch, records: Sequence[RawRecord], path: str, registry_url: str) -> str:
    """``SELECT <mapping> FROM file(...) SETTINGS ...`` for one batch (UTC timestamps)."""
    route = batch.route
    assert route.native_select is not None
    offsets = ",".join(str(r.offset) for r in records)
    select = [
        expr.replace("{kafka_topic}", quote(route.topic))
        .replace("{kafka_partition}", str(batch.partition))
        .replace("{kafka_offset}", f"[{offsets}][rowNumberInAllBlocks() + 1]")
        for expr in route.native_select()
    ]
    return (
        f"SELECT {', '.join(select)} FROM file({quote(path)}, 'AvroConfluent') "
        f"SETTINGS format_avro_schema_registry_url = {quote(registry_url)}, max_threads = 1, "
        "session_timezone = 'UTC'"
    )


def decode_each(
    batch: Batch, records: Sequence[RawRecord], decode: Callable[[bytes], dict[str, Any]]
) -> tuple[list[Row], list[Reject]]:
    """The fallback for a batch the engine cannot read: decode and map record by record in
    Python; records that fail are rejects (dead letters). A registry that cannot be reached is
    not the records' fault: that is a SinkWriteError, and the batch is retried."""
    rows: list[Row] = []
    rejects: list[Reject] = []
    for record in records:
        try:
            value = decode(record.value)
            rows.append(batch.route.to_row(SourceRecord(record.topic, record.partition, record.offset, value)))
        except WireFormatError as exc:
            rejects.append(Reject(record, exc))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            rejects.append(Reject(record, MappingError(f"cannot map to {batch.route.table}: {exc}")))
        except Exception as exc:  # noqa: BLE001 - registry unreachable: the record is fine
            raise SinkWriteError(f"cannot decode {record.topic}[{record.partition}]@{record.offset} yet: {exc}") from exc
    return rows, rejects
