"""Event ids: UUIDv7 (RFC 9562), time-ordered, so ids sort roughly by when events happened."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable


def uuid7(at_ms: int, randbits: Callable[[int], int] = secrets.randbits) -> str:
    """A version-7 UUID for ``at_ms``: 48-bit time, version, 74 random bits, variant."""
    rand = randbits(74)
    value = (
        (at_ms & ((1 << 48) - 1)) << 80
        | 0x7 << 76
        | (rand >> 62) << 64
        | 0x2 << 62
        | (rand & ((1 << 62) - 1))
    )
    return str(uuid.UUID(int=value))


def uuid7_time_ms(value: uuid.UUID) -> int | None:
    """The time a UUIDv7 was made for, or None for other versions."""
    return value.int >> 80 if value.version == 7 else None
