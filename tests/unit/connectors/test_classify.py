"""Which store errors are transient (retry as is) and which are refusals (narrow, dead-letter)."""

from __future__ import annotations

import psycopg
import pytest
from clickhouse_connect.driver import exceptions as ch

from connectors import clickhouse_sink, postgres_sink
from connectors.errors import RefusedWriteError, TransientWriteError


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (psycopg.OperationalError("connection refused"), TransientWriteError),
        (psycopg.errors.AdminShutdown("terminating connection"), TransientWriteError),
        (psycopg.errors.SerializationFailure("could not serialize"), TransientWriteError),
        (psycopg.errors.TooManyConnections("too many clients"), TransientWriteError),
        (psycopg.errors.UndefinedTable('relation "chat_events" does not exist'), TransientWriteError),
        (psycopg.errors.NumericValueOutOfRange('value "2147483648" is out of range for type integer'), RefusedWriteError),
        (psycopg.errors.CharacterNotInRepertoire('invalid byte sequence for encoding "UTF8": 0x00'), RefusedWriteError),
        (psycopg.errors.InvalidTextRepresentation("invalid input syntax for type uuid"), RefusedWriteError),
        (psycopg.errors.CheckViolation("new row violates check constraint"), RefusedWriteError),
        # an OperationalError to psycopg, but a value no retry makes fit
        (psycopg.errors.ProgramLimitExceeded("index row size 8024 exceeds btree version 4 maximum 2704"), RefusedWriteError),
        (psycopg.errors.LockNotAvailable("could not obtain lock"), TransientWriteError),
        (psycopg.errors.DiskFull("could not extend file"), TransientWriteError),
    ],
)
def test_postgres(error: Exception, kind: type) -> None:
    assert postgres_sink.classify(error) is kind


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ch.OperationalError("Error executing HTTP request"), TransientWriteError),
        (ConnectionRefusedError(111, "Connection refused"), TransientWriteError),
        (RuntimeError("Code: 252. DB::Exception: Too many parts (3001). Merges are processing significantly slower"), TransientWriteError),
        (ch.DatabaseError("Table default.chat_events does not exist", code=60), TransientWriteError),
        (RuntimeError("Code: 241. DB::Exception: Memory limit (total) exceeded"), TransientWriteError),
        (RuntimeError("Code: 252. DB::Exception: Too many partitions for single INSERT block (more than 100)."), RefusedWriteError),
        (RuntimeError("Code: 376. DB::Exception: Cannot parse uuid not-a-uuid"), RefusedWriteError),
        (ch.DataError("Cannot parse input", code=27), RefusedWriteError),
        (OverflowError("int too big to convert"), RefusedWriteError),
    ],
)
def test_clickhouse(error: Exception, kind: type) -> None:
    assert clickhouse_sink.classify(error) is kind
