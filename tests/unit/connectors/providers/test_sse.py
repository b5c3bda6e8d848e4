"""The server-sent events decoder: which lines make an event, and what its data is."""

from __future__ import annotations

import pytest

from connectors.providers.sse import SSEDecoder


def decode(lines: list[str]) -> list[str]:
    decoder = SSEDecoder()
    events = [data for line in lines if (data := decoder.feed(line)) is not None]
    last = decoder.flush()
    return events + ([last] if last is not None else [])


@pytest.mark.parametrize(
    ("lines", "events"),
    [
        (["data: {}", "", "data: [DONE]", ""], ["{}", "[DONE]"]),
        (["data:{}", ""], ["{}"]),  # the space after the colon is optional
        (["data:  two spaces", ""], [" two spaces"]),  # only one is the separator's
        (["data: a", "data: b", ""], ["a\nb"]),  # several data lines make one event
        ([": keep-alive", "", "data: x", ""], ["x"]),  # comments are not events
        (["event: message", "id: 7", "retry: 100", "data: x", ""], ["x"]),  # other fields ignored
        (["", "", "data: x", "", ""], ["x"]),  # blank lines without data dispatch nothing
        (["data", ""], [""]),  # a field name alone has an empty value
        (["data: [DONE]"], ["[DONE]"]),  # closed without the final blank line
    ],
)
def test_events_are_their_data_lines_up_to_a_blank_line(lines: list[str], events: list[str]) -> None:
    assert decode(lines) == events
