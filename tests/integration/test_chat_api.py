"""The OpenAI-compatible chat API through Kafka and the dispatch job, on the real stack.

One gateway with two workers and one dispatch job serve the module, with a routing file of
simulated deployments written for it: a steady one, a flaky one that fails after a few tokens
(the mid-stream fallback), and a slow one (for disconnects and a killed worker).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient

from chatstream.avro.registry import registry_fetcher
from chatstream.avro.serde import ConfluentDecoder
from chatstream.readiness import wait_ready
from chatstream.settings import Settings
from connectors.providers.base import PromptMessage
from connectors.providers.simulated import simulated_answer
from pipelines.topics import AI_RESPONSES, CHAT_ACTIONS
from tests.integration.platform import Component, bearer, wait_gateway_ready

ROUTING = """
[aliases.steady]
deployments = ["steady"]

[aliases.midstream]
strategy = "lowest_cost"            # the flaky one is cheaper, so it is always tried first
deployments = ["flaky", "backup"]

[aliases.slow]
deployments = ["slow"]

[deployments.steady]
provider = "simulated"
model = "simulated-steady"
output_price_per_1k = 0.002
[deployments.steady.simulated]
ttft_ms = 10
tokens_per_s = 1000
answer_tokens = 24

[deployments.flaky]
provider = "simulated"
model = "simulated-flaky"
output_price_per_1k = 0.001
[deployments.flaky.simulated]
ttft_ms = 10
tokens_per_s = 1000
answer_tokens = 40
fail_after_tokens = 7

[deployments.backup]
provider = "simulated"
model = "simulated-backup"
output_price_per_1k = 0.003
[deployments.backup.simulated]
ttft_ms = 10
tokens_per_s = 1000
answer_tokens = 40

[deployments.slow]
provider = "simulated"
model = "simulated-slow"
[deployments.slow.simulated]
ttft_ms = 10
tokens_per_s = 10
answer_tokens = 300

[tenants.tight]
rpm = 2

[resilience]
max_retries = 0

[chunks]
max_tokens = 4
max_ms = 20
"""

TIMEOUT_S = 5  # first token and idle: what a client waits when the job is gone


@pytest.fixture(scope="module")
def chat_settings(running_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    routing = tmp_path_factory.mktemp("routing") / "models.toml"
    routing.write_text(ROUTING)
    return running_stack.model_copy(update={"gateway_port": running_stack.port_base + 88, "models_file": routing})


def chat_env(settings: Settings) -> dict[str, str]:
    return {"CHATSTREAM_GATEWAY_PORT": str(settings.gateway_listen_port), "CHATSTREAM_MODELS_FILE": str(settings.models_file),
            "CHATSTREAM_CHAT_FIRST_TOKEN_TIMEOUT_S": str(TIMEOUT_S), "CHATSTREAM_CHAT_IDLE_TIMEOUT_S": str(TIMEOUT_S)}  # fmt: skip


def start_dispatch(settings: Settings) -> Component:
    job = Component(settings, "job", "dispatch", env=chat_env(settings)).start()
    assert wait_ready(f"http://127.0.0.1:{settings.dispatch_port}", timeout_s=90, alive=job.running), job.log_tail()
    return job


@pytest.fixture(scope="module")
def platform(chat_settings: Settings) -> Iterator[dict[str, Component]]:
    gateway = Component(chat_settings, "gateway", "--workers", "2", env=chat_env(chat_settings)).start()
    job = start_dispatch(chat_settings)
    components = {"gateway": gateway, "dispatch": job}
    try:
        wait_gateway_ready(chat_settings, gateway)
        yield components
    finally:
        for component in components.values():
            if component.running():
                component.stop()


OPEN_CLIENTS: list[openai.OpenAI] = []


@pytest.fixture(autouse=True)
def close_clients() -> Iterator[None]:
    """The SDK clients a test made are closed after it (their sockets would outlive it)."""
    yield
    while OPEN_CLIENTS:
        OPEN_CLIENTS.pop().close()


def sdk(settings: Settings, tenant: str, api_key: str | None = None) -> openai.OpenAI:
    token = api_key or bearer(settings, tenant)["Authorization"].removeprefix("Bearer ")
    client = openai.OpenAI(base_url=f"{settings.gateway_url}/v1", api_key=token, max_retries=0, timeout=30)
    OPEN_CLIENTS.append(client)
    return client


def expected(content: str, tokens: int) -> str:
    return "".join(simulated_answer((PromptMessage("user", content),), tokens))


def stream_chat(client: httpx.Client, settings: Settings, tenant: str, model: str, content: str,
                stop_after_chunks: int | None = None) -> tuple[httpx.Response, str, list[dict[str, Any]]]:  # fmt: skip
    """POST a streaming completion over ``client`` and read its SSE; the text and the events.
    ``stop_after_chunks``: leave (close the connection) after that many text chunks."""
    body = {"model": model, "messages": [{"role": "user", "content": content}], "stream": True}
    text, events = "", []
    with client.stream("POST", "/v1/chat/completions", json=body, headers=bearer(settings, tenant)) as response:
        if response.status_code != 200:
            response.read()
            return response, text, events
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                events.append({"done": True})
                break
            event = orjson.loads(line[6:])
            events.append(event)
            if event.get("choices") and event["choices"][0]["delta"].get("content"):
                text += event["choices"][0]["delta"]["content"]
                if stop_after_chunks is not None and sum(1 for e in events if e.get("choices")) > stop_after_chunks:
                    break
    return response, text, events


def read_topic(settings: Settings, topic: str, wanted: set[str], key: str, timeout_s: float = 20,
               until: Any = None) -> list[tuple[int, dict[str, Any]]]:  # fmt: skip
    """Every record of ``topic`` whose ``key`` field (a request id) is in ``wanted``, as
    (partition, record); reads until ``until(records)`` holds or the timeout."""
    registry = SchemaRegistryClient({"url": settings.schema_registry_url})
    decode = ConfluentDecoder(registry_fetcher(registry)).decode
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": f"test-{uuid.uuid4()}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})  # fmt: skip
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    consumer.assign([TopicPartition(topic, p, 0) for p in metadata.partitions])
    found: list[tuple[int, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                if message.error():
                    continue
                record = decode(message.value() or b"")
                if str(_field(record, key)) in wanted:
                    found.append((message.partition() or 0, record))
            if until is not None and until(found):
                break
    finally:
        consumer.close()
        registry.__exit__()
    return found


def _field(record: dict[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        value = (value or {}).get(part)
    return value


def test_the_openai_sdk_chats_through_kafka_and_the_job(chat_settings: Settings, platform: dict[str, Component]) -> None:
    client = sdk(chat_settings, "acme")
    assert {m.id for m in client.models.list().data} == {"steady", "midstream", "slow"}

    whole = client.chat.completions.create(model="steady", messages=[{"role": "user", "content": "hello whole"}])
    assert whole.object == "chat.completion" and whole.model == "steady"
    assert whole.choices[0].message.content == expected("hello whole", 24)
    assert whole.choices[0].finish_reason == "stop"
    assert whole.usage is not None and whole.usage.completion_tokens == 24

    text, usage, finish = "", None, None
    for chunk in client.chat.completions.create(model="steady", messages=[{"role": "user", "content": "hello stream"}],
                                                stream=True, stream_options={"include_usage": True}):  # fmt: skip
        assert chunk.object == "chat.completion.chunk"
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        usage = chunk.usage or usage
    assert text == expected("hello stream", 24) and finish == "stop"
    assert usage is not None and usage.total_tokens == usage.prompt_tokens + 24

    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="gpt-nonexistent", messages=[{"role": "user", "content": "x"}])
    assert unknown.value.code == "model_not_found" and unknown.value.param == "model"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="steady", messages=[{"role": "user", "content": "x"}], n=2)
    assert bad.value.param == "n"
    with pytest.raises(openai.AuthenticationError):
        sdk(chat_settings, "acme", api_key="not-a-token").models.list()


def test_a_tenants_rpm_is_enforced_by_the_job_from_its_usage_table(chat_settings: Settings,
                                                                    platform: dict[str, Component]) -> None:  # fmt: skip
    client = sdk(chat_settings, "tight")
    for i in range(2):
        answer = client.chat.completions.create(model="steady", messages=[{"role": "user", "content": f"tight {i}"}])
        assert answer.choices[0].message.content == expected(f"tight {i}", 24)
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="steady", messages=[{"role": "user", "content": "tight 2"}])
    assert limited.value.code == "tenant_rate_limited"
    assert 1 <= int(limited.value.response.headers["retry-after"]) <= 61
    other = sdk(chat_settings, "acme").chat.completions.create(model="steady", messages=[{"role": "user", "content": "x"}])
    assert other.choices[0].finish_reason == "stop"  # one tenant's limit is its own


def completed_answers(settings: Settings) -> float:
    metrics = httpx.get(f"http://127.0.0.1:{settings.dispatch_port}/metrics", timeout=10).text
    return sum(float(line.split()[-1]) for line in metrics.splitlines()
               if line.startswith('chatstream_dispatch_answers_total{outcome="completed"}'))  # fmt: skip


def test_concurrent_answers_are_each_charged_to_their_tenant(chat_settings: Settings,
                                                             platform: dict[str, Component]) -> None:  # fmt: skip
    """The job counts an answer once its tenant's usage is stored; 20 at once must all count
    (a charge written through Faust's current event failed once the agent had moved on)."""
    import concurrent.futures

    before = completed_answers(chat_settings)

    def chat(i: int) -> str:
        with httpx.Client(base_url=chat_settings.gateway_url, timeout=30) as client:
            return stream_chat(client, chat_settings, f"burst-{i % 4}", "steady", f"burst {i}")[1]

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        texts = list(pool.map(chat, range(20)))
    assert texts == [expected(f"burst {i}", 24) for i in range(20)]
    deadline = time.monotonic() + 10
    while completed_answers(chat_settings) < before + 20 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert completed_answers(chat_settings) == before + 20


def test_each_gateway_worker_reads_only_its_own_reply_partition(chat_settings: Settings, platform: dict[str, Component]) -> None:
    ids: dict[str, str] = {}
    for i in range(16):  # a new connection each time: the kernel spreads them over the two workers
        with httpx.Client(base_url=chat_settings.gateway_url, timeout=30) as client:
            response, text, _ = stream_chat(client, chat_settings, "acme", "steady", f"spread {i}")
        assert response.status_code == 200 and text == expected(f"spread {i}", 24)
        ids[response.headers["x-request-id"]] = f"spread {i}"
    replies = read_topic(chat_settings, AI_RESPONSES.name, set(ids), "request_id",
                         until=lambda found: sum(r["kind"] == "COMPLETED" for _, r in found) == len(ids))  # fmt: skip
    partitions = {str(r["request_id"]): set() for _, r in replies}
    for partition, record in replies:
        partitions[str(record["request_id"])].add(partition)
    assert set(partitions) == set(ids)
    assert all(len(p) == 1 for p in partitions.values()), partitions  # one partition per request
    assert set().union(*partitions.values()) == {0, 1}  # the two workers' reply partitions, both used


def test_a_provider_failing_mid_stream_falls_back_without_repeating_text(chat_settings: Settings,
                                                                           platform: dict[str, Component]) -> None:  # fmt: skip
    with httpx.Client(base_url=chat_settings.gateway_url, timeout=30) as client:
        response, text, events = stream_chat(client, chat_settings, "acme", "midstream", "fall back please")
    assert response.status_code == 200
    assert text == expected("fall back please", 40)  # the flaky deployment's 7 tokens, then the backup's rest
    assert events[-1] == {"done": True} and events[-2]["choices"][0]["finish_reason"] == "stop"
    request_id = response.headers["x-request-id"]
    done = read_topic(chat_settings, AI_RESPONSES.name, {request_id}, "request_id",
                      until=lambda found: any(r["kind"] == "COMPLETED" for _, r in found))  # fmt: skip
    completed = [r for _, r in done if r["kind"] == "COMPLETED"]
    assert len(completed) == 1 and completed[0]["fallback_used"] and completed[0]["attempts"] == 2
    assert completed[0]["model"] == "simulated-backup" and completed[0]["content"] == text
    chunks = [r for _, r in done if r["kind"] == "CHUNK"]
    assert [c["sequence"] for c in chunks] == list(range(len(chunks)))
    assert "".join(c["delta"] for c in chunks) == text


def test_a_client_that_leaves_stops_the_generation(chat_settings: Settings, platform: dict[str, Component]) -> None:
    with httpx.Client(base_url=chat_settings.gateway_url, timeout=30) as client:
        response, text, _ = stream_chat(client, chat_settings, "acme", "slow", "i will leave", stop_after_chunks=2)
    assert response.status_code == 200 and text
    request_id = response.headers["x-request-id"]
    stopped = read_topic(chat_settings, CHAT_ACTIONS.name, {request_id}, "generation_stopped.request_id",
                         until=lambda found: bool(found))  # fmt: skip
    assert [r["action"] for _, r in stopped] == ["GENERATION_STOPPED"]
    answers = read_topic(chat_settings, AI_RESPONSES.name, {request_id}, "request_id",
                         until=lambda found: any(r["kind"] != "CHUNK" for _, r in found))  # fmt: skip
    final = [r for _, r in answers if r["kind"] != "CHUNK"]
    assert len(final) == 1 and final[0]["kind"] == "FAILED" and final[0]["error_code"] == "cancelled"
    # 300 tokens at 10/s would take 30 s: the provider call was cancelled, not finished
    assert sum(1 for _, r in answers if r["kind"] == "CHUNK") < 100


def test_a_killed_dispatch_worker_ends_every_stream_with_an_error_and_bills_nothing_twice(
    chat_settings: Settings, platform: dict[str, Component]
) -> None:
    import concurrent.futures

    def slow_chat(i: int) -> tuple[httpx.Response, str, list[dict[str, Any]], float]:
        with httpx.Client(base_url=chat_settings.gateway_url, timeout=60) as client:
            started = time.monotonic()
            response, text, events = stream_chat(client, chat_settings, "acme", "slow", f"killed {i}")
            return response, text, events, time.monotonic() - started

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(slow_chat, i) for i in range(6)]
        time.sleep(3)  # every stream has begun (10 tokens/s, 300 tokens: 30 s each)
        platform["dispatch"].kill()
        results = [f.result(timeout=60) for f in futures]
    ids = set()
    for response, text, events, took_s in results:
        assert response.status_code == 200 and text, response.text
        assert "error" in events[-1] and events[-1]["error"]["code"] == "timeout", events[-1]  # never a hang
        assert took_s < 3 + TIMEOUT_S + 10
        ids.add(response.headers["x-request-id"])

    # with the job down, a new request is refused within the first-token timeout: 504, OpenAI's shape
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError) as down:
        sdk(chat_settings, "acme").chat.completions.create(model="steady", messages=[{"role": "user", "content": "x"}])
    assert down.value.status_code == 504 and down.value.code == "timeout"
    assert time.monotonic() - started < TIMEOUT_S + 5

    platform["dispatch"] = start_dispatch(chat_settings)  # the requests it re-reads are past no deadline yet
    time.sleep(5)
    answers = read_topic(chat_settings, AI_RESPONSES.name, ids, "request_id", timeout_s=10)
    completed: dict[str, int] = {}
    for _, record in answers:
        if record["kind"] == "COMPLETED":
            completed[str(record["request_id"])] = completed.get(str(record["request_id"]), 0) + 1
    assert all(count <= 1 for count in completed.values()), completed  # billed at most once per request
    client = sdk(chat_settings, "acme")  # and the restarted job answers again
    again = client.chat.completions.create(model="steady", messages=[{"role": "user", "content": "after restart"}])
    assert again.choices[0].message.content == expected("after restart", 24)
