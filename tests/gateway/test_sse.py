"""The SSE decoder the gateway reads translated providers' streams with."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from heliport.gateway.sse import SseDecoder

STREAM = (
    b'event: message_start\r\ndata: {"a":1}\r\n\r\n: ping\r\n\r\n'
    b'data: {"b":\r\ndata: 2}\r\n\r\nevent: done\ndata: [DONE]\n\n'
)
EVENTS = [("message_start", '{"a":1}'), ("message", '{"b":\n2}'), ("done", "[DONE]")]


def test_whole_stream() -> None:
    assert SseDecoder().feed(STREAM) == EVENTS


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_split_gives_the_same_events(cuts: list[int]) -> None:
    decoder = SseDecoder()
    events = []
    bounds = [0, *sorted(cuts), len(STREAM)]
    for start, end in itertools.pairwise(bounds):
        events.extend(decoder.feed(STREAM[start:end]))
    assert events == EVENTS
