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
the count never exceeds the requests in flight and the bound never bites; with its internal extension
(:mod:`heliport.lambda_extension`) it hands them off after the last byte and the extension holds the
freeze until they are done, which ``after_last_byte`` tells the exchange. At shutdown :meth:`LogBacklog.drain`
awaits the hand-offs still outstanding before the queue closes.
"""

from __future__ import annotations

import asyncio

#: Seconds a shutdown waits for outstanding hand-offs: Lambda sends SIGKILL 2 s after SIGTERM when an
#: external extension (the Web Adapter) is registered, and closing the clients afterwards takes some too.
SHUTDOWN_DRAIN_S = 1.5


class LogBacklog:
    """Counts outstanding hand-offs; :meth:`admit` waits while there are ``limit`` or more."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"the log backlog limit must be at least 1, not {limit}")
        self.limit = limit
        #: Hand records off after the last byte even where the settings say before it: set at start-up
        #: when something keeps the process running until they are done (the Lambda extension), or where
        #: nothing freezes it (Lambda Managed Instances). See :mod:`heliport.lambda_extension`.
        self.after_last_byte = False
        self._handoffs: set[asyncio.Future[None]] = set()
        self._room: asyncio.Event | None = None

    @property
    def outstanding(self) -> int:
        return len(self._handoffs)

    def track(self, handoff: asyncio.Future[None]) -> None:
        """Count ``handoff`` until it is done, whatever its outcome."""
        self._handoffs.add(handoff)
        handoff.add_done_callback(self._done)

    def _done(self, handoff: asyncio.Future[None]) -> None:
        self._handoffs.discard(handoff)
        if self._room is not None and len(self._handoffs) < self.limit:
            self._room.set()
            self._room = None

    async def drain(self, timeout: float) -> bool:  # noqa: ASYNC109  # a bound, not a cancel scope
        """Wait (at most ``timeout`` s) for the hand-offs outstanding now; True when all are done.

        Later hand-offs are not waited for, so a steady stream of requests cannot hold it forever;
        nothing is cancelled either way.
        """
        pending = set(self._handoffs)
        if not pending:
            return True
        if timeout <= 0:
            return False
        _, not_done = await asyncio.wait(pending, timeout=timeout)
        return not not_done

    async def admit(self) -> None:
        """Return once fewer than ``limit`` hand-offs are outstanding (at once, almost always)."""
        while len(self._handoffs) >= self.limit:
            if self._room is None:
                self._room = asyncio.Event()
            await self._room.wait()
