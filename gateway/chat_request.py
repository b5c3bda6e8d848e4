"""An OpenAI chat completion request, checked, and the chat action that carries it to Kafka.

The request body is OpenAI's (``POST /v1/chat/completions``). Fields chatstream honours:
``model`` (an alias of the routing config), ``messages``, ``stream``,
``stream_options.include_usage``, ``max_tokens`` / ``max_completion_tokens`` and
``temperature``. Sampling fields OpenAI clients commonly send (``top_p``, ``presence_penalty``,
``frequency_penalty``, ``stop``, ``seed``, ``user``, ...) are accepted and not used; what cannot
be honoured at all (``n`` > 1, ``tools``, image or audio parts) is refused with 400 naming the
field, never silently dropped. Pure: ids and the clock come in as arguments.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.auth import Identity
from gateway.errors import MalformedRequestError

ROLES = {"system": "SYSTEM", "developer": "SYSTEM", "user": "USER", "assistant": "ASSISTANT",
         "tool": "TOOL", "function": "TOOL"}  # fmt: skip


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Any = None  # a string, a list of content parts or null: checked in parse_chat_request


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)  # true is not 1.0, "yes" is not true
    model: str = Field(min_length=1, max_length=256)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=2**31 - 1)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=2**31 - 1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    n: int | None = Field(default=None, ge=1)
    tools: list[Any] | None = None
    functions: list[Any] | None = None

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage

    @property
    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


def parse_chat_request(body: bytes) -> ChatCompletionRequest:
    """The request, or ``MalformedRequestError`` (400) whose ``param`` names the field at fault."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequestError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise MalformedRequestError("the body must be a JSON object")
    try:
        request = ChatCompletionRequest.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = _param(first["loc"])
        raise MalformedRequestError(f"{param}: {first['msg']}", param=param) from exc
    if request.n not in (None, 1):
        raise MalformedRequestError("only n=1 is supported", param="n")
    if request.tools or request.functions:
        raise MalformedRequestError("tools and functions are not supported", param="tools" if request.tools else "functions")
    for index, message in enumerate(request.messages):
        _check_content(message.content, f"messages[{index}].content")
    return request


def _check_content(content: Any, param: str) -> None:
    """A string, null, or a list of text parts: what OpenAI takes that chatstream can honour."""
    if content is None or isinstance(content, str):
        return
    if not isinstance(content, list):
        raise MalformedRequestError("content must be a string or a list of content parts", param=param)
    for index, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise MalformedRequestError("a content part needs a type", param=f"{param}[{index}].type")
        if part["type"] != "text":
            raise MalformedRequestError(f"content parts of type {part['type']!r} are not supported; send text",
                                        param=f"{param}[{index}]")  # fmt: skip
        if not isinstance(part.get("text"), str):
            raise MalformedRequestError("a text part needs its text", param=f"{param}[{index}].text")


def _param(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def prompt_of(request: ChatCompletionRequest) -> list[dict[str, str]]:
    """The messages as ``CompletionMessage`` records (text parts joined)."""
    return [{"role": ROLES[m.role], "content": _text(m.content)} for m in request.messages]


def _text(content: Any) -> str:
    """Checked content (``_check_content``) as text: text parts joined."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part["text"] for part in content)


def message_sent(
    request: ChatCompletionRequest,
    identity: Identity,
    *,
    event_id: str,
    request_id: str,
    message_id: str,
    conversation_id: str,
    session_id: str | None,
    trace_id: str,
    client: str | None,
    now_ms: int,
    deadline_ms: int,
    reply_partition: int,
    reply_to: str,
) -> dict[str, Any]:
    """The ``MESSAGE_SENT`` chat action for the request: the last message is the user's new one;
    ``completion`` asks the dispatch job for the answer and says where it goes."""
    prompt = prompt_of(request)
    last = prompt[-1]["content"]
    return {
        **_action(identity, event_id, now_ms, conversation_id, session_id, trace_id, client),
        "action": "MESSAGE_SENT",
        "message_sent": ("io.chatstream.events.MessageSent", {
            "message_id": message_id,
            "parent_message_id": None,
            "text_length": len(last),
            "token_count": None,
            "content": last,
            "model": request.model,
            "attachment_ids": [],
        }),
        "completion": ("io.chatstream.events.CompletionRequest", {
            "request_id": request_id,
            "messages": prompt,
            "stream": request.stream,
            "max_tokens": request.token_limit,
            "temperature": request.temperature,
            "reply_partition": reply_partition,
            "reply_to": reply_to,
            "deadline_at": deadline_ms,
        }),
    }  # fmt: skip


def generation_stopped(
    identity: Identity, *, event_id: str, request_id: str, message_id: str | None, conversation_id: str,
    session_id: str | None, trace_id: str, client: str | None, now_ms: int, tokens_generated: int | None,
) -> dict[str, Any]:  # fmt: skip
    """The ``GENERATION_STOPPED`` chat action the gateway sends when a client leaves mid-answer."""
    return {
        **_action(identity, event_id, now_ms, conversation_id, session_id, trace_id, client),
        "action": "GENERATION_STOPPED",
        "generation_stopped": ("io.chatstream.events.GenerationStopped", {
            "message_id": message_id, "request_id": request_id, "tokens_generated": tokens_generated,
        }),
    }  # fmt: skip


def _action(identity: Identity, event_id: str, now_ms: int, conversation_id: str, session_id: str | None,
            trace_id: str, client: str | None) -> dict[str, Any]:  # fmt: skip
    """The fields every chat action has."""
    return {"event_id": event_id, "occurred_at": now_ms, "tenant_id": identity.tenant_id, "user_id": identity.user_id,
            "conversation_id": conversation_id, "session_id": session_id, "trace_id": trace_id, "client": client}  # fmt: skip
