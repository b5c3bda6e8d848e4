"""Faust's Kafka consumer, made to fetch without waiting: the dispatch job answers as records arrive.

Faust's aiokafka driver creates its consumer with ``fetch_max_wait_ms=1500`` and no setting to
change it. aiokafka keeps one fetch in flight per broker, and leaves out of it the partitions
whose records are still buffered; so right after a batch arrives, the next fetch covers only the
quiet partitions (and the usage table's changelog), and the broker holds it up to 1.5 s while
requests pile up on the busy ones: the job answered in bursts with 1.1 s gaps (measured by
``chatstream bench dispatch``, bench/RESULTS.md). A short wait costs a few more empty fetches.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

FETCH_MAX_WAIT_MS = 10


class _QuickFetchThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by AIOKafkaConsumer.start()
        return consumer


class _QuickFetchConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _QuickFetchThread(self, loop=self.loop, beacon=self.beacon)


def fetch_without_waiting(app: faust.App) -> None:
    """Make ``app``'s worker consumer fetch with ``FETCH_MAX_WAIT_MS`` (before the worker starts)."""
    app.transport.Consumer = _QuickFetchConsumer  # type: ignore[misc]
