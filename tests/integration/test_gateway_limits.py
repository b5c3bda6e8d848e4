"""Limits that hold on the real gateway: an oversized head is refused as it arrives and costs
the others nothing, stalled connections are closed, a batch over the burst is the client's to
split, the largest event the body limit allows fits in Kafka, and settings that cannot work are
refused at start."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from chatstream.settings import Settings
from tests.integration.platform import Component, bearer, wait_gateway_ready

READ_TIMEOUT_S = 2
STALLED = 200


@pytest.fixture
def gateway(running_stack: Settings) -> Iterator[Component]:
    component = Component(running_stack, "gateway", env={
        "CHATSTREAM_REQUEST_READ_TIMEOUT_S": str(READ_TIMEOUT_S),
        "CHATSTREAM_RATE_LIMIT_EVENTS_PER_S": "200", "CHATSTREAM_RATE_LIMIT_BURST": "1000",
        "CHATSTREAM_MAX_BATCH_EVENTS": "1000"}).start()  # fmt: skip
    wait_gateway_ready(running_stack, component)
    yield component
    assert component.stop() == 0, component.log_tail()


def message(size: int = 1) -> dict[str, object]:
    return {"type": "message_sent", "conversation_id": "c1", "message_sent": {"message_id": "m" * size, "text_length": 3}}


def test_heads_stalls_bursts_and_sizes(running_stack: Settings, gateway: Component, unique: str) -> None:
    settings = running_stack
    host, port = settings.gateway_host, settings.gateway_listen_port
    headers = bearer(settings, f"limits-{unique}")
    with httpx.Client(base_url=settings.gateway_url, timeout=30, headers=headers) as client:
        # a 64 MB Authorization header: 431 once the head passes the limit, the rest never read
        big = socket.create_connection((host, port))
        big.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ")
        started = time.monotonic()
        try:
            for _ in range(1024):
                big.sendall(b"a" * 65536)
        except OSError:
            pass  # the gateway closed the connection: it stopped reading
        big.settimeout(5)
        assert big.recv(200).startswith(b"HTTP/1.1 431 ")
        assert time.monotonic() - started < 5
        big.close()

        # stalled clients: half-sent heads and bodies are answered 408 and closed
        stalled = []
        auth = f"Authorization: {headers['Authorization']}\r\n".encode()
        for i in range(STALLED):
            conn = socket.create_connection((host, port))
            conn.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\n" if i % 2 else  # head never ends
                         b"POST /v1/events HTTP/1.1\r\nHost: x\r\n" + auth +  # body never ends
                         b"Content-Length: 100\r\n\r\n{")  # fmt: skip
            stalled.append(conn)
        assert client.post("/v1/events", json=message()).status_code == 202  # others are served meanwhile
        time.sleep(READ_TIMEOUT_S + 2)
        closed = 0
        for conn in stalled:
            conn.settimeout(2)
            try:
                answer = conn.recv(100)
                closed += answer.startswith(b"HTTP/1.1 408 ") or answer == b""
            except OSError:
                pass
            conn.close()
        assert closed == STALLED

        # a batch over the tenant's burst could never be accepted: 413 saying why, not 429
        over = client.post("/v1/events", content=orjson.dumps({"events": [message()] * 1001}))
        assert over.status_code == 413, over.text
        # (the burst is 1000 and the batch limit 1000: 1001 is over both; the burst is checked
        # with the batch limit at start, so the gateway cannot be configured into a forever-429)

        # the largest event a 1 MiB body holds fits in one Kafka record (2 MiB topics): 202
        largest = client.post("/v1/events", content=orjson.dumps(message(1_000_000)))
        assert largest.status_code == 202, largest.text[:300]


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"CHATSTREAM_RATE_LIMIT_BURST": "400", "CHATSTREAM_MAX_BATCH_EVENTS": "1000"}, "is below the largest batch"),
        ({"CHATSTREAM_MAX_BODY_BYTES": str(4 << 20)}, "does not fit the topic's records"),
    ],
)
def test_settings_that_cannot_work_are_refused_at_start(running_stack: Settings, env: dict[str, str], said: str) -> None:
    gateway = Component(running_stack, "gateway", env={**env, "CHATSTREAM_GATEWAY_PORT": str(running_stack.port_base + 79)}).start()
    assert gateway.process is not None
    assert gateway.process.wait(timeout=60) == 1
    output = gateway.output().strip().splitlines()
    assert len(output) == 1 and output[0].startswith("error: ") and said in output[0], output
