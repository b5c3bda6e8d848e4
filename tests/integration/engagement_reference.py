"""The engagement job's outputs for a list of events, computed in plain Python (the test's oracle).

Written from the contract (``/README.md``'s engagement section and analytics.engagement.v1's
docs), not from the job's SQL: per one-minute window and tenant / model / user, counts, sums,
maxima, histograms and the engagement score; per user, sessions split at gaps longer than the
session gap.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipelines.engagement import LATENCY_BOUNDS_MS

WINDOW_MS = 60_000


@dataclass(frozen=True)
class Event:
    """One chat action or AI answer, as the test sends it."""

    ts_ms: int
    user: str
    conversation: str | None
    action: str | None = None  # a chat action's type
    kind: str | None = None  # an AI answer's COMPLETED / FAILED
    model: str | None = None  # named by the action (message, regeneration, new conversation) or answering
    to_model: str | None = None  # MODEL_SWITCHED
    rating: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: int | None = None
    ttft_ms: int | None = None
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def is_action(self) -> bool:
        return self.action is not None


def _bucket(value: float) -> int:
    for i, bound in enumerate(LATENCY_BOUNDS_MS):
        if value <= bound:
            return i
    return len(LATENCY_BOUNDS_MS)


def _text(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{ms % 1000:03d}"


def derived_id(*parts: str) -> str:
    return str(uuid.UUID(hashlib.md5("|".join(parts).encode()).hexdigest()))


def _figures(events: list[Event], who: str) -> dict[str, Any]:
    present = [e for e in events if (e.is_action if who == "action" else not e.is_action)]
    answers = [e for e in events if not e.is_action]
    completed = [e for e in answers if e.kind == "COMPLETED"]
    latencies = [e.latency_ms for e in completed if e.latency_ms is not None]
    ttfts = [e.ttft_ms for e in completed if e.ttft_ms is not None]

    def hist(values: list[int]) -> list[int]:
        cells = [0] * (len(LATENCY_BOUNDS_MS) + 1)
        for value in values:
            cells[_bucket(value)] += 1
        return cells

    def count(action: str, rating: str | None = None) -> int:
        return sum(1 for e in events if e.action == action and (rating is None or e.rating == rating))

    return {
        "active_users": len({e.user for e in present}),
        "active_conversations": len({e.conversation for e in present if e.conversation is not None}),
        "sessions_started": count("SESSION_STARTED"),
        "conversations_created": count("CONVERSATION_CREATED"),
        "messages_sent": count("MESSAGE_SENT"),
        "regenerations": count("REGENERATE_REQUESTED"),
        "generations_stopped": count("GENERATION_STOPPED"),
        "feedback_up": count("FEEDBACK_GIVEN", "UP"),
        "feedback_down": count("FEEDBACK_GIVEN", "DOWN"),
        "ai_requests": len(answers),
        "ai_completed": len(completed),
        "ai_failed": sum(1 for e in answers if e.kind == "FAILED"),
        "prompt_tokens": sum(e.prompt_tokens for e in completed),
        "completion_tokens": sum(e.completion_tokens for e in completed),
        "cost_usd": sum(e.cost_usd for e in completed),
        "latency_count": len(latencies),
        "latency_sum_ms": float(sum(latencies)),
        "latency_max_ms": float(max(latencies, default=0)),
        "latency_hist": hist(latencies),
        "ttft_count": len(ttfts),
        "ttft_sum_ms": float(sum(ttfts)),
        "ttft_max_ms": float(max(ttfts, default=0)),
        "ttft_hist": hist(ttfts),
    }


def score(figures: dict[str, Any]) -> float:
    """README: points = 2·messages + conversations created + regenerations + 2·thumbs up
    + thumbs down + sessions started; score = 100 · points / (points + 10)."""
    points = (2 * figures["messages_sent"] + figures["conversations_created"] + figures["regenerations"]
              + 2 * figures["feedback_up"] + figures["feedback_down"] + figures["sessions_started"])  # fmt: skip
    return 100.0 * points / (points + 10.0)


def expected_windows(tenant: str, events: list[Event]) -> dict[str, dict[str, Any]]:
    """Every window row, by its event id."""
    groups: dict[tuple[str, str, str, int], list[Event]] = defaultdict(list)
    for e in events:
        start = e.ts_ms - e.ts_ms % WINDOW_MS
        groups[("tenant", "", "", start)].append(e)
        groups[("user", "", e.user, start)].append(e)
        if e.model is not None:
            groups[("model", e.model, "", start)].append(e)
    rows = {}
    for (dimension, model, user, start), members in groups.items():
        row = _figures(members, "answer" if dimension == "model" else "action")
        row.update(dimension=dimension, tenant_id=tenant, model=model or None,
                   user_id=user if dimension == "user" else "svc:engagement",
                   window_start=start, window_end=start + WINDOW_MS,
                   engagement_score=score(row) if dimension == "user" else None)  # fmt: skip
        rows[derived_id(dimension, tenant, model, user, _text(start))] = row
    return rows


def expected_sessions(tenant: str, events: list[Event], gap_ms: int) -> dict[str, dict[str, Any]]:
    """Every session row, by its event id: a user's events split where the gap exceeds ``gap_ms``."""
    by_user: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        by_user[e.user].append(e)
    rows = {}
    for user, mine in by_user.items():
        mine.sort(key=lambda e: e.ts_ms)
        sessions: list[list[Event]] = [[mine[0]]]
        for e in mine[1:]:
            if e.ts_ms - sessions[-1][-1].ts_ms > gap_ms:
                sessions.append([])
            sessions[-1].append(e)
        for members in sessions:
            start, end = members[0].ts_ms, members[-1].ts_ms
            models = {m for e in members for m in (e.model, e.to_model) if m is not None}
            rows[derived_id("session", tenant, user, _text(start))] = {
                "user_id": user, "session_start": start, "session_end": end, "duration_ms": end - start,
                "turns": sum(1 for e in members if e.action in ("MESSAGE_SENT", "REGENERATE_REQUESTED")),
                "events": len(members), "conversations": len({e.conversation for e in members if e.conversation}),
                "models": sorted(models),
            }  # fmt: skip
    return rows
