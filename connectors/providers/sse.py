"""Server-sent events, as OpenAI-compatible servers stream them: a pure line decoder.

Only what a chat completions stream needs: ``data`` fields, joined with newlines when an event
has several, dispatched at the blank line that ends the event. Comments (lines starting with
``:``), ``event``, ``id`` and ``retry`` fields and unknown fields are ignored. Splitting bytes into
lines (CR, LF or CRLF) is the caller's, e.g. ``httpx.Response.aiter_lines``.
"""

from __future__ import annotations


class SSEDecoder:
    """Feed it lines without their line ending; it returns an event's data when one is complete."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        """The data of the event this (blank) line completes, or None."""
        if not line:
            if not self._data:
                return None
            data = "\n".join(self._data)
            self._data.clear()
            return data
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if name == "data":
            # One leading space belongs to the separator, not to the value.
            self._data.append(value[1:] if value.startswith(" ") else value)
        return None

    def flush(self) -> str | None:
        """At the end of the stream: the data of an event that lacked its closing blank line.

        The SSE standard drops such an event; servers that close right after ``data: [DONE]``
        without a blank line are common enough that it is returned instead, and a truncated JSON
        payload then fails to parse, which is the right error anyway.
        """
        return self.feed("")
