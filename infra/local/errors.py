"""Errors of the local infrastructure.

    InfraError
    ├── PrerequisiteError   a tool the stack needs is missing (Java 17+, Maven, PostgreSQL)
    ├── FetchError          Maven could not fetch a service's artifacts
    └── ServiceStartError   a service did not come up in time (names its log file)

Each message is one line meant for a person; the CLI prints it without a stack trace.
"""

from __future__ import annotations

from chatstream.errors import ChatstreamError


class InfraError(ChatstreamError):
    """Base of everything the local stack reports to the user."""


class PrerequisiteError(InfraError):
    """A required tool is missing or too old."""


class FetchError(InfraError):
    """Downloading a service's artifacts failed."""


class ServiceStartError(InfraError):
    """A service was started but did not become ready."""
