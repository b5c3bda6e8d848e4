"""Synthetic chat traffic: tenants, users, sessions, conversations with realistic turns.

Pure: a seeded ``random.Random`` and a simulated clock. A day of product time is compressed
into the run: sessions start following a daily rhythm (quiet at night, busy in the afternoon),
and every event carries its simulated ``occurred_at`` and a UUIDv7 ``event_id`` from that time,
so a retried batch is the very same events.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from chatstream.ids import uuid7

MODELS = [("gpt-4o", "openai"), ("gpt-4o-mini", "openai"), ("claude-sonnet", "anthropic"), ("llama-3-70b", "simulated")]
LOCALES = ["en-US", "en-GB", "fr-FR", "de-DE", "es-ES", "ja-JP", "pt-BR"]
CLIENTS = ["librechat/0.7.5", "chatstream-web/1.2.0", "openai-python/1.40.0", "mobile-ios/3.1"]
DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Session:
    """One user's session: the events it produced, in order (posted with that user's token)."""

    tenant_id: str
    user_id: str
    events: list[dict[str, Any]]


@dataclass(frozen=True)
class Stamped:
    """One event with the user whose token posts it."""

    tenant_id: str
    user_id: str
    event: dict[str, Any]

    @property
    def at_ms(self) -> int:
        return int(self.event["occurred_at"])


def in_time_order(sessions: Iterable[Session], until_ms: int) -> list[Stamped]:
    """Every event of ``sessions`` up to ``until_ms``, in event-time order: history that ends now
    (a session still going on has no events in the future), as a live product produced it."""
    events = [Stamped(s.tenant_id, s.user_id, e) for s in sessions for e in s.events if e["occurred_at"] <= until_ms]
    events.sort(key=lambda stamped: stamped.at_ms)  # stable: a session's events keep their order
    return events


def daily_intensity(ms_of_day: int) -> float:
    """Relative activity over a day: trough around 04:00, peak around 15:00 (0.15 .. 1.0)."""
    hours = ms_of_day / 3_600_000
    return 0.15 + 0.85 * (0.5 - 0.5 * math.cos(2 * math.pi * (hours - 4) / 24)) ** 1.5


def uuid7_at(rng: random.Random, at_ms: int) -> str:
    return uuid7(at_ms, rng.getrandbits)


class TrafficModel:
    def __init__(self, *, seed: int = 7, tenants: int = 6, users_per_tenant: int = 40,
                 start_ms: int, span_ms: int = DAY_MS) -> None:  # fmt: skip
        self.rng = random.Random(seed)
        self.start_ms = start_ms
        self.span_ms = span_ms
        # tenant sizes follow a rough power law: a few big customers, a long tail
        self.tenants = [f"tenant-{i + 1:02d}" for i in range(tenants)]
        self.weights = [1 / (i + 1) ** 0.8 for i in range(tenants)]
        self.users = {t: [f"{t}-user-{j + 1:03d}" for j in range(users_per_tenant)] for t in self.tenants}

    def _session_start(self) -> int:
        """A start time drawn from the daily rhythm (rejection sampling over the span)."""
        while True:
            at = self.start_ms + self.rng.randrange(self.span_ms)
            if self.rng.random() < daily_intensity(at % DAY_MS):
                return at

    def sessions(self, total_events: int) -> Iterator[Session]:
        """Sessions until about ``total_events`` events were made, in start-time order per batch."""
        made = 0
        while made < total_events:
            session = self._session(self._session_start())
            made += len(session.events)
            yield session

    def flood(self, tenant: str, start_ms: int, minutes: int, per_minute: int) -> Session:
        """An injected anomaly: one of ``tenant``'s users sends ``per_minute`` messages a minute
        for ``minutes`` minutes into one conversation (a script gone wrong, a scraper)."""
        rng = self.rng
        user = self.users[tenant][-1]
        conversation = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        session_id = uuid7_at(rng, start_ms)
        model, provider = MODELS[0]
        events: list[dict[str, Any]] = []

        def emit(kind: str, at: int, detail: dict[str, Any]) -> None:
            events.append({"type": kind, "event_id": uuid7_at(rng, at), "occurred_at": at, "session_id": session_id,
                           "client": "flood-script/0.1", "conversation_id": conversation, kind: detail})  # fmt: skip

        emit("conversation_created", start_ms, {"model": model, "provider": provider})
        step_ms = 60_000 // per_minute
        for k in range(minutes * per_minute):
            emit("message_sent", start_ms + 1 + k * step_ms, {"message_id": f"msg-{rng.getrandbits(48):012x}", "text_length": 40,
                                                               "token_count": 10, "model": model})  # fmt: skip
        return Session(tenant, user, events)

    def _session(self, at: int) -> Session:
        rng = self.rng
        tenant = rng.choices(self.tenants, self.weights)[0]
        user = rng.choice(self.users[tenant])
        session_id = uuid7_at(rng, at)
        client = rng.choice(CLIENTS)
        events: list[dict[str, Any]] = []
        clock = [at]

        def emit(kind: str, conversation: str | None, detail: dict[str, Any] | None, gap_ms: int) -> None:
            clock[0] += gap_ms
            event: dict[str, Any] = {
                "type": kind,
                "event_id": uuid7_at(rng, clock[0]),
                "occurred_at": clock[0],
                "session_id": session_id,
                "client": client,
            }
            if conversation is not None:
                event["conversation_id"] = conversation
            if detail is not None:
                event[kind] = detail
            events.append(event)

        emit("session_started", None, {"user_agent": client, "locale": rng.choice(LOCALES)}, 0)
        for _ in range(rng.choices([1, 2, 3], [0.6, 0.3, 0.1])[0]):
            self._conversation(emit)
        emit("session_ended", None, {"duration_ms": clock[0] - at, "reason": rng.choice(["logout", "idle_timeout", "closed"])}, rng.randrange(5_000, 120_000))
        return Session(tenant, user, events)

    def _conversation(self, emit: Any) -> None:
        rng = self.rng
        conversation = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        model, provider = rng.choice(MODELS)
        emit("conversation_created", conversation, {"model": model, "provider": provider}, rng.randrange(500, 20_000))
        turns = max(1, int(rng.lognormvariate(1.2, 0.7)))
        for turn in range(turns):
            message_id = f"msg-{rng.getrandbits(48):012x}"
            answer_id = f"msg-{rng.getrandbits(48):012x}"
            length = int(rng.lognormvariate(4.2, 0.9))
            if rng.random() < 0.05:
                emit("attachment_uploaded", conversation, {
                    "attachment_id": f"att-{rng.getrandbits(32):08x}", "file_name": "notes.pdf",
                    "mime_type": "application/pdf", "size_bytes": rng.randrange(10_000, 5_000_000),
                }, rng.randrange(2_000, 30_000))  # fmt: skip
            emit("message_sent", conversation, {"message_id": message_id, "text_length": length,
                                                "token_count": max(1, length // 4), "model": model},
                 rng.randrange(3_000, 90_000))  # fmt: skip
            if rng.random() < 0.04:
                emit("message_edited", conversation, {"message_id": message_id, "text_length": max(1, length + rng.randrange(-20, 40))}, rng.randrange(2_000, 20_000))
            roll = rng.random()
            if roll < 0.06:
                emit("generation_stopped", conversation, {"message_id": answer_id, "tokens_generated": rng.randrange(5, 300)}, rng.randrange(1_000, 8_000))
            if roll < 0.12:
                emit("regenerate_requested", conversation, {"message_id": answer_id, "model": model}, rng.randrange(2_000, 15_000))
            if rng.random() < 0.15:
                rating = "UP" if rng.random() < 0.72 else "DOWN"
                detail = {"message_id": answer_id, "rating": rating}
                if rating == "DOWN" and rng.random() < 0.4:
                    detail["comment"] = rng.choice(["wrong answer", "too long", "made that up", "off topic"])
                emit("feedback_given", conversation, detail, rng.randrange(2_000, 30_000))
            if turn == 1 and rng.random() < 0.08:
                new_model, new_provider = rng.choice(MODELS)
                emit("model_switched", conversation, {"from_model": model, "to_model": new_model, "provider": new_provider}, rng.randrange(1_000, 5_000))
                model = new_model
        if rng.random() < 0.3:
            emit("conversation_renamed", conversation, {"title": rng.choice(["Trip plan", "SQL help", "Essay draft", "Bug hunt"])}, rng.randrange(1_000, 10_000))
        if rng.random() < 0.05:
            emit("conversation_archived", conversation, {"archived": True}, rng.randrange(1_000, 10_000))
        elif rng.random() < 0.03:
            emit("conversation_deleted", conversation, {"hard": False}, rng.randrange(1_000, 10_000))


def bad_requests() -> list[tuple[str, bytes, str]]:
    """Deliberately bad requests, each (label, body, token kind): the demo shows their rejection."""
    return [
        ("malformed JSON", b'{"type": "message_sent", ', "ok"),
        ("unknown event type", b'{"type": "message_liked", "conversation_id": "c"}', "ok"),
        ("schema violation", b'{"type": "message_sent", "conversation_id": "c", "message_sent": {"message_id": "m", "text_length": "long"}}', "ok"),
        ("another tenant's event", b'{"type": "session_started", "tenant_id": "someone-else"}', "ok"),
        ("no token", b'{"type": "session_started"}', "none"),
        ("forged token", b'{"type": "session_started"}', "forged"),
        ("oversized batch", b'{"events": [' + b",".join([b'{"type": "session_started"}'] * 1001) + b"]}", "ok"),
    ]
