"""Server-sent events in both directions, for streams the gateway translates.

Providers' streams arrive in arbitrary TCP pieces; :class:`SseDecoder` turns them into whole events
(``event`` name and joined ``data`` lines, as the SSE spec reads them). Pass-through streams never
come here: they are relayed as bytes. The decoder is a few lines over ``bytes.split``, so it costs
less than any general parser we measured, and it never holds more than one unfinished event.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["DONE", "SseDecoder", "data_event", "named_event"]

DONE = b"data: [DONE]\n\n"
_encode = msgspec.json.encode


class SseDecoder:
    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        """The events completed by ``chunk``: ``(event name or "message", data)``."""
        data = self._buffer + chunk
        # A CRLF may be split across two reads: hold a trailing CR back until its LF arrives.
        held = b"\r" if data.endswith(b"\r") else b""
        data = (data[:-1] if held else data).replace(b"\r\n", b"\n")
        *blocks, rest = data.split(b"\n\n")
        self._buffer = rest + held
        events: list[tuple[str, str]] = []
        for block in blocks:
            name = "message"
            lines: list[str] = []
            for line in block.decode("utf-8", "replace").split("\n"):
                if line.startswith("data:"):
                    lines.append(line[6:] if line.startswith("data: ") else line[5:])
                elif line.startswith("event:"):
                    name = line[6:].strip()
            if lines:
                events.append((name, "\n".join(lines)))
        return events


def data_event(obj: Any) -> bytes:
    """``data: <json>`` (OpenAI chat streams carry no event names)."""
    return b"data: " + _encode(obj) + b"\n\n"


def named_event(name: str, obj: Any) -> bytes:
    """``event: <name>`` + ``data: <json>`` (Responses streams)."""
    return b"event: " + name.encode() + b"\ndata: " + _encode(obj) + b"\n\n"
