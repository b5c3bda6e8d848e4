"""The transactional producer's refusal when no producer could register (no Kafka listening)."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from gateway.errors import KafkaUnavailableError
from gateway.producer import SLOT_WAIT_S, EventProducer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_request_waits_for_a_registered_producer_then_is_refused() -> None:
    producer = EventProducer(f"127.0.0.1:{free_port()}", transactional_id="unit-", ack_timeout_s=4)
    try:
        started = time.monotonic()
        with pytest.raises(KafkaUnavailableError, match="transaction coordinator is not reachable"):
            asyncio.run(producer.send("chat.actions.v1", [(b"k", b"v")]))
        assert SLOT_WAIT_S <= time.monotonic() - started < SLOT_WAIT_S + 2
        assert not producer.ready
    finally:
        producer.close(timeout_s=0)  # nothing to commit: the committer stops after its registration try
