"""A bound on log hand-offs that outlive their responses.

``heliport serve`` hands a record to its log queue after the response's last byte, so the client
never waits for logging. But the client may then send its next request on the same connection at
once (uvicorn starts a pipelined request as soon as a response completes), while the previous
record is still on its way. When the queue is slower than the traffic, those hand-offs pile up,
each holding its request and response bodies: the benchmark saw 5,500 outstanding and 300 MB of
RSS after a 10,000-request burst. Past ``limit`` outstanding hand-offs, a new request waits at the
door until one finishes, so a log pipeline that cannot keep up slows the traffic down instead of
growing the process without bound; nothing is dropped.

The Lambda entry hands records off before the last byte (its sandbox freezes after it), so there
the count never exceeds the requests in flight and the bound never bites.
"""

from __future__ import annotations

import asyncio


class LogBacklog:
    """Counts outstanding hand-offs; :meth:`admit` waits while there are ``limit`` or more."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"the log backlog limit must be at least 1, not {limit}")
        self.limit = limit
        self._outstanding = 0
        self._room: asyncio.Event | None = None

    @property
    def outstanding(self) -> int:
        return self._outstanding

    def track(self, handoff: asyncio.Future[None]) -> None:
        """Count ``handoff`` until it is done, whatever its outcome."""
        self._outstanding += 1
        handoff.add_done_callback(self._done)

    def _done(self, _: asyncio.Future[None]) -> None:
        self._outstanding -= 1
        if self._room is not None and self._outstanding < self.limit:
            self._room.set()
            self._room = None

    async def admit(self) -> None:
        """Return once fewer than ``limit`` hand-offs are outstanding (at once, almost always)."""
        while self._outstanding >= self.limit:
            if self._room is None:
                self._room = asyncio.Event()
            await self._room.wait()
