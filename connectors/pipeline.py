"""The sink runner's writes, off the consuming thread: prepare on one thread, write on another.

A set of batches is first prepared (``sink.prepare``: decoding, no store I/O), then written
(``sink.write_many``), each stage a single thread, so sets land in the order they were taken
while the next set is prepared and the one after is consumed. The stores' engines and drivers
release the GIL while they work, so the stages overlap for real. A write that fails is retried
with backoff on the writer thread until it lands, or until told to give up (stopping, a
rebalance), then it raises SinkWriteError.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from connectors.sink import Batch, BatchingSink, Reject, SinkWriteError

log = logging.getLogger(__name__)

Written = list[tuple[Batch, list[Reject]]]  # each batch of a set with its rejects


@dataclass
class InFlight:
    """A set taken from the buffers, and the consumer positions it completes."""

    batches: list[Batch]
    positions: dict[tuple[str, int], int]
    written: Future[Written]


class WritePipeline:
    def __init__(self, sink: BatchingSink, backoff: tuple[float, float], stopping: threading.Event,
                 on_failure: Callable[[str], None]) -> None:  # fmt: skip
        self.sink = sink
        self.backoff_initial_s, self.backoff_max_s = backoff
        self.stopping = stopping
        self.on_failure = on_failure
        self.give_up = threading.Event()  # tells writes under way to stop retrying
        self._preparer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{sink.name}-prepare")
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{sink.name}-write")
        self._sets: deque[InFlight] = deque()

    def __len__(self) -> int:
        return len(self._sets)

    def submit(self, batches: list[Batch], positions: dict[tuple[str, int], int], retry: bool) -> None:
        prepared = self._preparer.submit(self.sink.prepare, batches) if batches else None
        written = self._writer.submit(self._write_all, batches, prepared, retry)
        self._sets.append(InFlight(batches, positions, written))

    def oldest(self) -> InFlight | None:
        return self._sets[0] if self._sets else None

    def pop(self) -> InFlight:
        return self._sets.popleft()

    def abandon(self) -> list[InFlight]:
        """Every set still under way, given up and waited for (their writes may or may not land)."""
        self.give_up.set()
        sets = list(self._sets)
        self._sets.clear()
        for s in sets:
            s.written.exception()
        self.give_up.clear()
        return sets

    def shutdown(self) -> None:
        self.give_up.set()
        self._preparer.shutdown(wait=True)
        self._writer.shutdown(wait=True)

    # -- on the writer thread -----------------------------------------------------------------
    def _write_all(self, batches: list[Batch], prepared: Future[Any] | None, retry: bool) -> Written:
        if not batches:
            return []
        try:
            ready = prepared.result() if prepared is not None else None
        except SinkWriteError:
            ready = None  # e.g. the registry was unreachable: write_many prepares again, retried
        rejects = self._write(batches, ready, retry)
        by_partition: dict[tuple[str, int], list[Reject]] = {}
        for reject in rejects:
            by_partition.setdefault((reject.record.topic, reject.record.partition), []).append(reject)
        return [(batch, by_partition.get((batch.topic, batch.partition), [])) for batch in batches]

    def _write(self, batches: list[Batch], prepared: Any, retry: bool) -> list[Reject]:
        delay = self.backoff_initial_s
        while True:
            try:
                return self.sink.write_many(batches, prepared)
            except SinkWriteError as exc:
                self.on_failure(str(exc))
                if not retry or self.stopping.is_set() or self.give_up.is_set():
                    raise
                log.warning("%s: write of %s failed (%s); retrying in %.1fs", self.sink.name,
                            ", ".join(b.dedup_token for b in batches), exc, delay)  # fmt: skip
                if self.give_up.wait(delay) or self.stopping.is_set():
                    raise
                delay = min(delay * 2, self.backoff_max_s)
