"""Narrow a refused write down to the rows at fault, by bisection.

A store refused a write of ``n`` rows. Each half is tried again, and each half of a half that is
refused, down to single rows: the rows refused alone are the ones at fault; every other row
lands. ``k`` bad rows among ``n`` cost about ``2k log2(n)`` attempts. A refusal that is about the
write as a whole rather than any row (ClickHouse's "too many partitions for a single insert")
disappears as the halves get smaller, and then nothing is refused at all. A transient error
during narrowing propagates: the caller retries the whole write later.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from connectors.errors import RefusedWriteError


def narrow(indices: Sequence[int], attempt: Callable[[Sequence[int]], None],
           refusal: RefusedWriteError) -> list[tuple[int, RefusedWriteError]]:  # fmt: skip
    """Rows ``indices``, which the store refused together with ``refusal``, through
    ``attempt(part)``, halving what is refused; the rows refused alone, each with its error."""
    if len(indices) == 1:
        return [(indices[0], refusal)]
    refused: list[tuple[int, RefusedWriteError]] = []
    pending = [list(indices)]  # parts refused as a whole, to be halved
    while pending:
        part = pending.pop()
        middle = len(part) // 2
        for half in (part[:middle], part[middle:]):
            try:
                attempt(half)
            except RefusedWriteError as exc:
                if len(half) == 1:
                    refused.append((half[0], exc))
                else:
                    pending.append(half)
    return sorted(refused, key=lambda item: item[0])
