"""The runner's writes, off the consuming thread: prepare on one thread, write on another.

A flush is first prepared (``sink.prepare``: decoding, no store I/O), then written, each stage a
single thread, so flushes land in the order they were taken while the next is prepared and the
one after is consumed. The stores' engines and drivers release the GIL while they work, so the
stages overlap for real. The writer parks the records rejected before decoding (not Confluent-
framed) as dead letters first, then calls ``sink.write``, which parks its own rejects before it
stores offsets. A transient failure is retried with backoff (decoding again if decoding was what
failed) until it lands or the pipeline is told to give up (stopping, a rebalance); then the
flush's future raises TransientWriteError.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from connectors.dlq import DeadLetters
from connectors.errors import SinkWriteError
from connectors.health import Progress, SinkMetrics
from connectors.policy import FlushPolicy, next_backoff
from connectors.sink import Batch, Reject, Sink, describe

log = logging.getLogger(__name__)


@dataclass
class Landed:
    rows: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)  # by source topic


@dataclass
class InFlight:
    """A flush taken from the buffers, and the consumer positions it completes."""

    batches: list[Batch]
    positions: dict[tuple[str, int], int]
    written: Future[Landed]


class WritePipeline:
    def __init__(self, sink: Sink, dead_letters: DeadLetters, policy: FlushPolicy, stopping: threading.Event,
                 progress: Progress, metrics: SinkMetrics) -> None:  # fmt: skip
        self.sink = sink
        self.dead_letters = dead_letters
        self.policy = policy
        self.stopping = stopping
        self.progress = progress
        self.metrics = metrics
        self.give_up = threading.Event()  # tells writes under way to stop retrying
        self._preparer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{sink.name}-prepare")
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{sink.name}-write")
        self._sets: deque[InFlight] = deque()

    def __len__(self) -> int:
        return len(self._sets)

    def submit(self, batches: list[Batch], early: list[Reject], positions: dict[tuple[str, int], int]) -> None:
        prepared = self._preparer.submit(self.sink.prepare, batches) if batches else None
        written = self._writer.submit(self._write, batches, early, prepared)
        self._sets.append(InFlight(batches, positions, written))

    def oldest(self) -> InFlight | None:
        return self._sets[0] if self._sets else None

    def pop(self) -> InFlight:
        return self._sets.popleft()

    def abandon(self) -> list[InFlight]:
        """Every flush still under way, given up and waited for (their writes may or may not land)."""
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
    def _write(self, batches: list[Batch], early: list[Reject], prepared: Future[Any] | None) -> Landed:
        landed = Landed()

        def dead_letter(rejects: list[Reject]) -> None:
            self.dead_letters.park(rejects)
            for reject in rejects:
                topic = reject.record.topic
                landed.dead_letters[topic] = landed.dead_letters.get(topic, 0) + 1

        delay = self.policy.backoff_initial_s
        while True:
            landed.dead_letters.clear()
            try:
                if early:
                    dead_letter(early)
                if batches:
                    ready = prepared.result() if prepared is not None else self.sink.prepare(batches)
                    landed.rows = self.sink.write(ready, dead_letter)
                return landed
            except SinkWriteError as exc:
                prepared = None  # decode again on the retry: the registry may have been the cause
                self.progress.failed(str(exc))
                if self.give_up.is_set() or self.stopping.is_set():
                    raise
                self.metrics.labels(self.metrics.retries).inc()
                log.warning("%s: write of %s failed (%s); retrying in %.1fs", self.sink.name, describe(batches), exc, delay)
                if self.give_up.wait(delay) or self.stopping.is_set():
                    raise
                delay = next_backoff(delay, self.policy)


def count_fallback(metrics: SinkMetrics, sink: str) -> Callable[[list[Batch], Exception], None]:
    """The decoder's ``on_fallback``: a WARNING with the records' coordinates, and a metric."""

    def on_fallback(batches: list[Batch], exc: Exception) -> None:
        log.warning("%s: the engine could not read %s (%s); decoding them in Python", sink, describe(batches),
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__)  # fmt: skip
        metrics.labels(metrics.fallbacks, topic=batches[0].topic).inc()

    return on_fallback
