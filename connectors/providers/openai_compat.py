"""OpenAI-compatible chat completions over HTTP: :class:`OpenAIProvider`.

One attempt is one ``POST {base_url}/chat/completions`` with ``stream: true`` and
``stream_options.include_usage``, to OpenAI or to a server that speaks its API (vLLM, llama.cpp's
server, Ollama, DeepSeek, ...). The server-sent events become :class:`TextDelta` items (each
non-empty ``choices[0].delta.content``) and one :class:`Finish` with the last ``finish_reason`` and
the usage chunk's counts (``None`` when the server sends none). ``data: [DONE]`` ends the stream
(a ``[DONE]`` without any finish reason gives reason ``unknown``); a stream that ends without it
and without a finish reason failed. The wire format itself is in :mod:`openai_wire`.

Continuation (``request.continue_from`` set: a fallback during a stream), three modes:

``prefill``
    The partial answer goes last, as ``{"role": "assistant", "content": continue_from}``, and the
    server continues that message: llama.cpp's server and Ollama do so as is; vLLM only with
    ``continue_final_message: true, add_generation_prompt: false`` in the body (without them it
    opens a new assistant turn); DeepSeek on its beta prefix-completion endpoint.
``vllm-prefill``
    ``prefill`` plus vLLM's ``continue_final_message: true, add_generation_prompt: false``.
``instruct``
    For servers that always open a new turn (OpenAI itself): the partial answer as an assistant
    message, then a user message asking to continue exactly where it stops, repeating nothing.
    Models follow this loosely; the answer may overlap the partial one.

Either way the provider yields what the server sends: trimming a repeated overlap is the
dispatch job's business.

Budgets (:class:`Timeouts`): connecting beyond ``connect_s`` is phase ``connect``; no text and no
finish within ``first_token_s`` of sending is phase ``first_token``; the whole attempt beyond
``total_s`` is phase ``total``. The deadlines are checked around each read, never across a
``yield``, so they never cancel the consumer (whose time still counts toward ``total_s``). The
response is closed on every way out: the end, an error, ``aclose()`` or a cancelled task.

Errors are translated here (the tree is drawn in :mod:`connectors.providers.base`): connection
refused is a connect error; HTTP 429 a rate limit with ``retry_after_s`` from ``retry-after-ms`` or
``Retry-After`` (seconds or an HTTP date); 5xx, an error object mid-stream, malformed JSON, a lost
connection or a stream cut short are server errors; any other status is a request error
(``model_not_found`` for 404, ``auth_error`` for 401 and 403, else ``bad_request``). Messages name
the provider and carry the server's own message, shortened.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Mapping
from datetime import datetime, timezone
from typing import TypeVar

import httpx
import orjson

from connectors.providers.base import (
    Continuation,
    Finish,
    ProviderConnectError,
    ProviderEvent,
    ProviderRequest,
    ProviderServerError,
    ProviderTimeoutError,
    TextDelta,
    Timeouts,
    Usage,
)
from connectors.providers.openai_wire import chat_body, error_for_status, parse_chunk
from connectors.providers.sse import SSEDecoder

T = TypeVar("T")

# Enough for many concurrent streams per process; a request waiting longer than connect_s for
# a free connection fails with a connect timeout.
_LIMITS = httpx.Limits(max_connections=512, max_keepalive_connections=64)
# After [DONE] the body should end at once; reading it to its end lets the connection be
# reused, but a server that holds it open is not waited for beyond this.
_DRAIN_S = 1.0


class OpenAIProvider:
    """A client of one OpenAI-compatible server, with one connection pool; ``aclose`` closes it.

    ``extra_headers`` go with every request and win over the ``Authorization`` header made from
    ``api_key`` (for servers that take their key in another header).
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None = None,
        kind: str = "openai",
        continuation: Continuation = "prefill",
        transport: httpx.AsyncBaseTransport | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        url = httpx.URL(base_url.rstrip("/") + "/chat/completions")
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"provider base_url must be an http(s) URL, not {base_url!r}")
        if continuation not in ("prefill", "vllm-prefill", "instruct"):
            raise ValueError(f"continuation must be 'prefill', 'vllm-prefill' or 'instruct', not {continuation!r}")
        self.kind = kind
        self.continuation: Continuation = continuation
        self._url = url
        port = f":{url.port}" if url.port else ""
        self._where = f"{kind} at {url.scheme}://{url.host}{port}"
        headers = {"Accept": "text/event-stream"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        headers.update(extra_headers or {})
        # trust_env=False: nothing below main() reads the environment (proxies, certificates).
        self._client = httpx.AsyncClient(
            transport=transport, headers=headers, limits=_LIMITS, trust_env=False
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def stream(
        self, request: ProviderRequest, timeouts: Timeouts
    ) -> AsyncIterator[ProviderEvent]:
        """One attempt; see :class:`connectors.providers.base.Provider` and the module docstring."""
        loop = asyncio.get_running_loop()
        sent_at = loop.time()
        total_at = sent_at + timeouts.total_s
        first_at = min(sent_at + timeouts.first_token_s, total_at)
        http_timeout = httpx.Timeout(
            timeouts.total_s, connect=timeouts.connect_s, pool=timeouts.connect_s
        )
        http_request = self._client.build_request(
            "POST",
            self._url,
            content=orjson.dumps(chat_body(request, self.continuation)),
            headers={"Content-Type": "application/json"},
            timeout=http_timeout,
        )
        response: httpx.Response | None = None
        try:
            sending = self._client.send(http_request, stream=True)
            response = await self._before(sending, first_at, total_at, timeouts)
            if not response.is_success:
                body = await self._before(response.aread(), first_at, total_at, timeouts)
                now = datetime.now(timezone.utc)
                raise error_for_status(response.status_code, response.headers, body, now, self._where)
            lines = response.aiter_lines()
            decoder = SSEDecoder()
            started = False  # text or a finish came: from then on only the total budget counts
            reason: str | None = None
            usage: Usage | None = None
            done = False
            while not done:
                deadline = total_at if started else first_at
                line = await self._before(anext(lines, None), deadline, total_at, timeouts)
                data = decoder.feed(line) if line is not None else decoder.flush()
                if data == "[DONE]":
                    done = True
                elif data is not None:
                    chunk = parse_chunk(data, self._where)
                    usage = chunk.usage or usage
                    reason = chunk.finish_reason or reason
                    started = started or bool(chunk.text) or reason is not None
                    if chunk.text:
                        yield TextDelta(chunk.text)
                if line is None:
                    break
            if not done and reason is None:
                message = f"{self._where}: stream ended early (no [DONE], no finish reason)"
                raise ProviderServerError(message)
            if done:
                await _drain(lines, min(total_at, loop.time() + _DRAIN_S))
            yield Finish(reason or "unknown", usage)
        except httpx.ConnectTimeout as exc:
            message = f"{self._where}: no connection within {timeouts.connect_s} s"
            raise ProviderTimeoutError(message, "connect") from exc
        except httpx.PoolTimeout as exc:
            message = f"{self._where}: no free connection within {timeouts.connect_s} s"
            raise ProviderTimeoutError(message, "connect") from exc
        except httpx.TimeoutException as exc:
            raise ProviderTimeoutError(f"{self._where}: the server stalled ({exc!r})", "total") from exc
        except httpx.ConnectError as exc:
            raise ProviderConnectError(f"{self._where}: could not connect ({exc})") from exc
        except httpx.HTTPError as exc:
            raise ProviderServerError(f"{self._where}: connection lost ({exc!r})") from exc
        finally:
            if response is not None:
                with contextlib.suppress(httpx.HTTPError):  # done with it either way
                    await response.aclose()

    async def _before(
        self, step: Awaitable[T], deadline: float, total_at: float, timeouts: Timeouts
    ) -> T:
        """Await one step of the attempt; past ``deadline`` it fails with that deadline's phase."""
        try:
            async with asyncio.timeout_at(deadline):
                return await step
        except TimeoutError as exc:
            if deadline >= total_at:
                message = f"{self._where}: the attempt took over {timeouts.total_s} s"
                raise ProviderTimeoutError(message, "total") from exc
            message = f"{self._where}: no text within {timeouts.first_token_s} s"
            raise ProviderTimeoutError(message, "first_token") from exc


async def _drain(lines: AsyncIterator[str], deadline: float) -> None:
    """Read what is left of the body (nothing, normally) so the connection can be reused."""
    try:
        async with asyncio.timeout_at(deadline):
            async for _ in lines:
                pass
    except (TimeoutError, httpx.HTTPError):
        pass  # the answer is complete; the connection is closed instead of reused
