"""The root of every error chatstream reports to a person.

    ChatstreamError
    ├── infra.local.errors.InfraError       the local stack (prerequisites, fetch, start)
    ├── chatstream.avro.errors.ContractError schemas: unreadable .avsc, registry refusals
    └── pipelines / db errors               topics and migrations

The CLI prints ``str(error)`` as one line (plus any detail lines) and exits non-zero; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations


class ChatstreamError(Exception):
    """An error with a message meant for the user."""
