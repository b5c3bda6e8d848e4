"""A ClickHouse server from chDB's engine: ``python chdb_server.py <data folder>``.

chDB embeds ClickHouse's server code; ``SYSTEM START LISTEN HTTP`` opens ClickHouse's own HTTP
interface on the ``listen_host`` and ``http_port`` of ``config.xml`` in the working directory.
The engine lives as long as one query runs, so a query that sleeps (one row a second, for
decades) holds it open until SIGTERM ends the process. Started and stopped by ``ClickHouse``
in ``clickhouse.py``.
"""

from __future__ import annotations

import sys

from chdb import _chdb

HOLD = "SELECT sleepEachRow(1) FROM numbers(1000000000) SETTINGS max_block_size = 1 FORMAT Null"


def main(data: str) -> None:
    _chdb.query(f"SYSTEM START LISTEN HTTP; {HOLD}", "TabSeparated", path=data)  # type: ignore[attr-defined]


if __name__ == "__main__":
    main(sys.argv[1])
