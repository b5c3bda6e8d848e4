"""The dispatch job's errors: faults of its set-up, reported to a person in one line.

    ChatstreamError
    └── DispatchError
        ├── RoutingConfigError     the routing file cannot be read or is invalid
        └── ProviderSetupError     a deployment has no provider client

A request that cannot be answered is not an error here: the engine ends its event stream with
a ``Failed`` event that carries a machine-readable code.
"""

from __future__ import annotations

from chatstream.errors import ChatstreamError


class DispatchError(ChatstreamError):
    """Base of the dispatch job's errors."""


class RoutingConfigError(DispatchError):
    """The routing file is unreadable or invalid; the message names the file and the field."""


class ProviderSetupError(DispatchError):
    """The dispatcher was given no provider client for a deployment of its config."""
