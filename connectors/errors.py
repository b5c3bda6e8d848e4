"""The sinks' errors: what a failure means for the records, decided once, at the boundary.

    SinkError
    ├── MappingError            a record decodes but cannot become a row: it is dead-lettered
    └── SinkWriteError          a write did not land; nothing past it is committed
        ├── TransientWriteError the store, the registry or the dead-letter topic cannot take it
        │                       now (unreachable, timeout, "try again", not set up): the same
        │                       write is retried with backoff
        └── RefusedWriteError   the store refused records of the write (a value out of a column's
                                range, a character it cannot hold, too many partitions in one
                                insert): the write is narrowed down to the records at fault,
                                which are dead-lettered with this error, and the rest lands

Transient errors are recognised positively, from the store's own codes (``classify`` in each
sink's module); anything a store says that is not known to be transient is a refusal.
"""

from __future__ import annotations

from chatstream.errors import ChatstreamError


class SinkError(ChatstreamError):
    """Base of the sinks' errors."""


class MappingError(SinkError):
    """A record that cannot be mapped to the table's row."""


class SinkWriteError(SinkError):
    """The store did not take the write; nothing of it may be committed."""


class TransientWriteError(SinkWriteError):
    """Try the same write again later: the records are fine."""


class RefusedWriteError(SinkWriteError):
    """The store refused something in the write: find the records at fault."""
