"""Errors about the Avro contracts.

    ChatstreamError
    └── ContractError           an .avsc file is unreadable or not valid Avro
        └── RegistryError       the schema registry refused or could not be reached
"""

from __future__ import annotations

from chatstream.errors import ChatstreamError


class ContractError(ChatstreamError):
    """A schema file cannot be used as a contract."""


class RegistryError(ContractError):
    """The schema registry refused a schema or did not answer."""
