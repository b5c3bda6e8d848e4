"""The SQL of decoding batches of Confluent-framed records in ClickHouse's engine (chDB, in-process).

The batches of one route (a topic's partitions) go, one after the other, to a scratch file that
``file(path, 'AvroConfluent')`` reads in one query, writer schemas coming from the registry; the
mapping's ``engine_select`` maps the Avro columns to the table's. Each row gets its own Kafka
partition and offset from its row number (the file is read on one thread, so in order): the file
is a few runs of consecutive offsets, one per batch unless a batch has gaps (transaction markers),
and each run is one arm of a ``multiIf``. One query per set rather than per partition: most of a
query's cost on a small batch is the analysis of the mapping, not the rows. ``connectors.decoding``
runs it: the ClickHouse sink inserts its Native output, the PostgreSQL sink COPYs its
tab-separated output.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from connectors.sink import Batch

_SCRATCH = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
MAX_RUNS = 64  # more runs of consecutive offsets than this: per-row arrays instead of multiIf arms


def quote(text: str) -> str:
    """A ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@contextmanager
def scratch_file(batches: Sequence[Batch]) -> Iterator[str]:
    """The batches' framed records, back to back, in a file that is removed afterwards."""
    fd, name = tempfile.mkstemp(prefix="chatstream-batch-", suffix=".avro", dir=_SCRATCH)
    try:
        with os.fdopen(fd, "wb") as scratch:
            for batch in batches:
                scratch.write(b"".join(batch.values))
        yield name
    finally:
        os.unlink(name)


def offset_runs(batches: Sequence[Batch]) -> list[tuple[int, int, int]]:
    """``(partition, first offset, count)`` for each run of consecutive offsets, in file order."""
    runs: list[tuple[int, int, int]] = []
    for batch in batches:
        if batch.contiguous:
            runs.append((batch.partition, batch.first_offset, batch.size))
            continue
        start = previous = batch.offsets[0]
        for offset in batch.offsets[1:]:
            if offset != previous + 1:
                runs.append((batch.partition, start, previous - start + 1))
                start = offset
            previous = offset
        runs.append((batch.partition, start, previous - start + 1))
    return runs


def coordinates(batches: Sequence[Batch]) -> tuple[str, str]:
    """ClickHouse expressions of each row's Kafka partition and offset, by its row number."""
    row = "rowNumberInAllBlocks()"
    runs = offset_runs(batches)
    if len(runs) > MAX_RUNS:
        partitions = ",".join(str(b.partition) for b in batches for _ in range(b.size))
        offsets = ",".join(str(o) for b in batches for o in b.offsets)
        return f"[{partitions}][{row} + 1]", f"[{offsets}][{row} + 1]"
    partition_arms: list[str] = []
    shift_arms: list[str] = []
    end = 0
    for partition, first, count in runs[:-1]:
        shift = first - end  # offset = row number + shift within this run
        end += count
        partition_arms += [f"{row} < {end}", str(partition)]
        shift_arms += [f"{row} < {end}", str(shift)]
    last_partition, last_first, _ = runs[-1]
    if not partition_arms:
        return str(last_partition), f"{row} + {last_first - end}"
    partition_expr = f"multiIf({', '.join([*partition_arms, str(last_partition)])})"
    shift_expr = f"multiIf({', '.join([*shift_arms, str(last_first - end)])})"
    return partition_expr, f"{row} + {shift_expr}"


def select_from(batches: Sequence[Batch], path: str, registry_url: str, expressions: Sequence[str]) -> str:
    """``SELECT <mapping> FROM file(...) SETTINGS ...`` for batches of one route (UTC timestamps);
    each expression named for its column, so formats that match columns by name (Native) fit."""
    route = batches[0].route
    assert all(b.route is route for b in batches)
    partition, offset = coordinates(batches)
    select = [
        expr.replace("{kafka_topic}", quote(route.topic))
        .replace("{kafka_partition}", partition)
        .replace("{kafka_offset}", offset)
        + f" AS {column}"
        for expr, column in zip(expressions, route.columns, strict=True)
    ]
    return (
        f"SELECT {', '.join(select)} FROM file({quote(path)}, 'AvroConfluent') "
        f"SETTINGS format_avro_schema_registry_url = {quote(registry_url)}, max_threads = 1, "
        "session_timezone = 'UTC'"
    )


DEFAULT_MAX_QUERY_SIZE = 262_144  # ClickHouse's, in bytes


def query_size(select: str) -> dict[str, int] | None:
    """The settings a query this long needs: a set with gaps between its offsets (a marker after
    each of a transactional producer's transactions) spells out every row's coordinates, which
    can pass ClickHouse's default limit on a query's size."""
    size = len(select.encode())
    return {"max_query_size": size + 1024} if size >= DEFAULT_MAX_QUERY_SIZE - 1024 else None


def set_token(batches: Sequence[Batch]) -> str:
    """One deduplication token for a set of batches: their tokens, hashed when there are many."""
    tokens = ",".join(b.dedup_token for b in batches)
    return tokens if len(batches) <= 4 else f"{batches[0].route.table}:sha256:{hashlib.sha256(tokens.encode()).hexdigest()}"


def by_route(batches: Sequence[Batch]) -> list[list[Batch]]:
    """The batches grouped by route (each group one query), in their order."""
    groups: dict[int, list[Batch]] = {}
    for batch in batches:
        groups.setdefault(id(batch.route), []).append(batch)
    return list(groups.values())
