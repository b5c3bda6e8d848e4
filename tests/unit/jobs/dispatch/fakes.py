"""Fakes behind the dispatch engine's seams: a clock that sleeping advances, scripted providers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.providers.base import Finish, ProviderError, ProviderEvent, ProviderRequest, TextDelta, Timeouts
from jobs.dispatch.config import RoutingConfig


class FakeClock:
    """Milliseconds that move only when told to; ``sleep`` moves them and records the wait."""

    def __init__(self, now_ms: int = 1_700_000_000_000) -> None:
        self.now_ms = now_ms
        self.sleeps: list[float] = []

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: float) -> None:
        self.now_ms += int(ms)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds * 1000)


@dataclass(frozen=True)
class Wait:
    """A script step: the provider takes this long (on the fake clock) before its next item."""

    ms: float


class Hang:
    """A script step: the provider waits for ever (until cancelled or closed)."""


Step = str | Finish | ProviderError | Wait | Hang


@dataclass
class ScriptedProvider:
    """Each call to ``stream`` plays the next script: text deltas, waits, a finish or an error.

    Calls beyond the scripts replay the last one. ``closed`` counts streams whose ``finally``
    ran; ``requests`` keeps what each call was asked.
    """

    clock: FakeClock
    scripts: Sequence[Sequence[Step]]
    kind: str = "fake"
    requests: list[ProviderRequest] = field(default_factory=list)
    closed: int = 0

    def stream(self, request: ProviderRequest, timeouts: Timeouts) -> AsyncIterator[ProviderEvent]:
        script = self.scripts[min(len(self.requests), len(self.scripts) - 1)]
        self.requests.append(request)
        return self._play(script)

    async def _play(self, script: Sequence[Step]) -> AsyncIterator[ProviderEvent]:
        try:
            for step in script:
                if isinstance(step, Wait):
                    self.clock.advance(step.ms)
                elif isinstance(step, Hang):
                    await asyncio.Event().wait()
                elif isinstance(step, ProviderError):
                    raise step
                elif isinstance(step, Finish):
                    yield step
                else:
                    yield TextDelta(step)
        finally:
            self.closed += 1


def answer(*steps: Step, reason: str = "stop") -> list[Step]:
    """A script that ends well: ``steps`` (texts, waits), then a finish."""
    return [*steps, Finish(reason)]


def routing(
    deployments: dict[str, dict[str, Any]],
    aliases: dict[str, dict[str, Any]] | None = None,
    **sections: dict[str, Any],
) -> RoutingConfig:
    """A config from plain tables (as the TOML file would give), simulated by default."""
    tables = {name: {"provider": "simulated", "model": f"model-{name}", **table} for name, table in deployments.items()}
    aliases = aliases or {"chat": {"deployments": list(deployments)}}
    return RoutingConfig.model_validate({"aliases": aliases, "deployments": tables, **sections})
