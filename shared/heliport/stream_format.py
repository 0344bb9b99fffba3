"""``Helicone-Stream-Force-Format: true``: re-frame a relayed SSE stream on event boundaries.

Providers' streams reach heliport in whatever pieces TCP and the provider's writer made, and the
relay passes them on as they come: one chunk may end in the middle of an event, even mid-line.
Spec-following SSE clients (the official SDKs) buffer across chunks and do not care; clients that
parse each chunk on its own (Helicone's docs name Ruby's) need every chunk to hold whole events.
With the header, :class:`SseFramer` sits between the upstream and the client: it sends everything
up to the last event boundary in what has arrived, and holds the unfinished event after it until
its end comes. The bytes are never changed, only where the chunks break; the log copy (the tee)
sees the chunks the client sees.

An event boundary is a blank line: a line terminator right after another one, where the SSE spec
lets a line end in CRLF, LF or CR (so ``\\n\\n``, ``\\r\\n\\r\\n``, ``\\r\\r`` and their mixes). A CR
that is the last byte received is ambiguous (a whole terminator, or the first half of a CRLF whose
LF is on its way), so the event before it is held until the next byte says which: a ``\\r\\n\\r\\n``
stream is never cut between its CR and LF. (A stream that ends its lines in bare CRs, which no LLM
provider sends, thereby gets each event one upstream chunk late.)

Limits: an unfinished event is held up to :data:`MAX_HELD_BYTES`; past that, what is held is sent
unaligned (so a stream that never produces a boundary still flows, with at most that much delay and
memory) and :attr:`SseFramer.overflows` counts it. At the end of the stream whatever is left is
sent as the last chunk. Without the header none of this exists on the path.

Helicone's own worker merges chunks shorter than 50 bytes into the next one for this header; the
framing here is the stronger guarantee the header's documentation describes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence

__all__ = ["MAX_HELD_BYTES", "SseFramer", "is_event_stream", "reframe", "reframe_chunks"]

#: The most of one unfinished event held back before it is sent unaligned (1 MiB: OpenAI's largest
#: events, a Responses ``response.completed`` carrying the whole answer or a partial image, fit).
MAX_HELD_BYTES = 1 << 20

_LF = 0x0A
_CR = 0x0D


def is_event_stream(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether response headers (raw pairs, any case) say ``Content-Type: text/event-stream``."""
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.lstrip().lower().startswith(b"text/event-stream")
    return False


def _last_boundary(data: bytes, start: int, end: int) -> int:
    """The index just past the last event boundary (blank line) ending in ``data[start:end]``; -1 if none.

    A CR at ``end - 1`` is taken as a whole line terminator: the caller leaves out an ambiguous last CR.
    """
    best = -1
    i = data.rfind(b"\n\n", start, end)
    if i >= 0:
        best = i + 2  # LF or CRLF, then LF
    if data.find(b"\r", start, end) < 0:  # the usual stream: LF only, nothing more to look for
        return best
    i = data.rfind(b"\n\r\n", start, end)
    if i >= 0:
        best = max(best, i + 3)  # LF or CRLF, then CRLF
    i = data.rfind(b"\r\r", start, end)
    if i >= 0:
        # CR, then CR or CRLF (the first CR is whole: a CR follows it)
        after = i + 2
        best = max(best, after + 1 if after < end and data[after] == _LF else after)
    i = data.rfind(b"\n\r", start, end)
    if i >= 0 and (i + 2 == end or data[i + 2] != _LF):
        best = max(best, i + 2)  # LF or CRLF, then a bare CR (a CRLF is the pattern above)
    return best


class SseFramer:
    """Turns chunks of an SSE stream into chunks that each end on an event boundary.

    ``feed`` returns what may be sent now (often ``b""``: the chunk ended mid-event), ``flush`` what
    is left at the end. Concatenated, the outputs are exactly the inputs.
    """

    __slots__ = ("_held", "_size", "_tail", "limit", "overflows")

    def __init__(self, limit: int = MAX_HELD_BYTES) -> None:
        self.limit = limit
        #: How many times an unfinished event outgrew ``limit`` and was sent unaligned.
        self.overflows = 0
        self._held: list[bytes] = []
        self._size = 0
        #: The last (up to 3) bytes of the stream so far: a boundary may straddle two chunks.
        self._tail = b""

    @property
    def held(self) -> int:
        """Bytes received and not yet returned."""
        return self._size

    def feed(self, chunk: bytes) -> bytes:
        if not chunk:
            return b""
        tail = self._tail
        # Search the new bytes plus the tail before them; positions are then shifted into `chunk`.
        region = tail + chunk if tail else chunk
        end = len(region)
        if region[-1] == _CR:
            end -= 1  # a CRLF may be split here: whether a boundary ends at this CR waits for the next byte
        cut = _last_boundary(region, 0, end) - len(tail)
        self._tail = region[-3:]
        held = self._held
        if cut < 0:  # no boundary yet: hold the chunk (or, past the limit, give up on aligning this event)
            held.append(chunk)
            self._size += len(chunk)
            if self._size > self.limit:
                self.overflows += 1
                return self._take()
            return b""
        if cut == len(chunk):
            if not held:
                return chunk  # the common case: a chunk of whole events
            held.append(chunk)
            return self._take()
        ready = [*held, chunk[:cut]] if held else [chunk[:cut]]
        rest = chunk[cut:]
        self._held = [rest]
        self._size = len(rest)
        return b"".join(ready)

    def notes(self, *, failed: bool) -> list[str]:
        """What the log should know once the stream is over (``failed``: it broke, and what is held is dropped)."""
        notes = []
        if failed and self._size:
            notes.append(f"Helicone-Stream-Force-Format: {self._size} bytes of an unfinished event were not sent")
        if self.overflows:
            notes.append(
                f"Helicone-Stream-Force-Format: {self.overflows} event(s) outgrew {self.limit} bytes "
                "and were sent unaligned"
            )
        return notes

    def flush(self) -> bytes:
        """What is left at the end of the stream (an unfinished last event is sent as it is)."""
        return self._take()

    def _take(self) -> bytes:
        data = b"".join(self._held)
        self._held = []
        self._size = 0
        return data


async def reframe(
    chunks: AsyncIterator[bytes],
    *,
    note: Callable[[str], None],
    limit: int = MAX_HELD_BYTES,
) -> AsyncIterator[bytes]:
    """``chunks`` re-framed on event boundaries; ``note`` records what the log should know.

    When the upstream fails mid-event, the unfinished event is not sent: the client's read fails as
    it would without the header, but it never sees half an event, and ``note`` says how much was
    held. (A client that goes away is noted by no one: the exchange is logged as cancelled.)
    """
    framer = SseFramer(limit)
    try:
        async for chunk in chunks:
            ready = framer.feed(chunk)
            if ready:
                yield ready
    except Exception:
        for line in framer.notes(failed=True):
            note(line)
        raise
    for line in framer.notes(failed=False):
        note(line)
    rest = framer.flush()
    if rest:
        yield rest


def reframe_chunks(chunks: Sequence[bytes], limit: int = MAX_HELD_BYTES) -> list[bytes]:
    """A whole stream's chunks (a cache entry's, say) re-framed the same way."""
    framer = SseFramer(limit)
    out = [ready for ready in map(framer.feed, chunks) if ready]
    rest = framer.flush()
    if rest:
        out.append(rest)
    return out
