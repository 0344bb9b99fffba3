"""ASGI plumbing every heliport surface shares: the types, the JSON answer, the request body.

A leaf module: nothing from heliport is imported at module level (the one exception is on an error
path, see :func:`read_body`), so the proxy, the AI gateway, the async-log and realtime handlers, and
:mod:`heliport.errors` itself can all build on it without importing one another.

The type aliases follow Starlette's ``starlette/types.py``, so a heliport handler is an ASGI app to
any server or test client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from types import TracebackType
from typing import Any

import msgspec

from heliport.errors import HeliportError, InvalidBodyError

__all__ = [
    "ASGIApp",
    "DisconnectWatch",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "cancel_on_disconnect",
    "read_body",
    "send_error",
    "send_json",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_JSON_TYPE = (b"content-type", b"application/json")


async def send_json(send: Send, status: int, body: object, *, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """Send a complete JSON response: ``body`` as given when it is bytes, else encoded with msgspec.

    The headers are always ``content-type``, ``content-length``, then ``headers`` in their order.
    """
    data = body if isinstance(body, bytes) else msgspec.json.encode(body)
    start = [_JSON_TYPE, (b"content-length", str(len(data)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": data, "more_body": False})


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; ``InvalidBodyError`` (413) past ``limit`` bytes.

    A client that disconnects while sending it cancels the handler, as it would mid-response.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise asyncio.CancelledError
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            # Imported here, on the refusal path only: heliport.errors builds on this module.
            raise InvalidBodyError(f"Request body is larger than {limit} bytes", status=413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class DisconnectWatch:
    """While its block runs, a client's ``http.disconnect`` cancels the handler's task.

    uvicorn's ``send`` silently drops writes after a disconnect, so without a watcher a silent upstream
    (a reasoning model thinking) would be held open until it answered. A watcher task waits on
    ``receive()`` (the body has been read by then, so the only message left is the disconnect) and
    cancels the task that entered the block. The cancel is absorbed when the block exits:
    :attr:`cancelled` then says the block was cut short, and the handler records the cancel after it.
    A cancel from anywhere else (a server shutting down) propagates as usual.

    :meth:`stop` ends the watch early: a handler calls it before work that must not be cut short by a
    late disconnect (an error answer, the log hand-off).
    """

    __slots__ = ("_receive", "_task", "_watcher", "cancelled", "disconnected")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._task: asyncio.Task[Any] | None = None
        self._watcher: asyncio.Task[None] | None = None
        #: The client went away while the block ran.
        self.disconnected = False
        #: The block was cut short by that disconnect (and its cancel absorbed).
        self.cancelled = False

    async def __aenter__(self) -> DisconnectWatch:
        task = asyncio.current_task()
        assert task is not None, "cancel_on_disconnect runs inside a task"
        self._task = task
        self._watcher = asyncio.create_task(self._watch(task))
        return self

    async def _watch(self, task: asyncio.Task[Any]) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                task.cancel()
                return

    def is_disconnect(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the cancel this watch raised (the client went away)."""
        return self.disconnected and isinstance(exc, asyncio.CancelledError)

    def stop(self) -> None:
        """From here on a disconnect no longer cancels the handler (idempotent)."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None and not watcher.done():
            watcher.cancel()
            watcher.add_done_callback(_forget_cancel)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        self.stop()
        if exc is not None and self.is_disconnect(exc):
            assert self._task is not None
            self._task.uncancel()  # our own cancel, consumed here: the task goes on to log it
            self.cancelled = True
            return True
        return False


def _forget_cancel(watcher: asyncio.Task[None]) -> None:
    """Take the cancelled watcher's ``CancelledError`` off it, so nothing outlives the request.

    A task keeps the error that cancelled it until someone asks for it; its traceback holds the
    watcher's frames, which hold the watch, the handler's task and the server's request cycle: one
    reference cycle per request, left for the garbage collector to find. On the serving path those
    collections were most of the proxy's p99 (docs/benchmarks.md, "serve's tail"). Asking for the
    error once breaks the cycle, and reference counting frees the request as soon as it ends.
    """
    with contextlib.suppress(asyncio.CancelledError):
        watcher.exception()


def cancel_on_disconnect(receive: Receive) -> DisconnectWatch:
    """``async with cancel_on_disconnect(receive) as watch:`` the block is cancelled if the client goes
    away; after it, ``watch.cancelled`` says whether it was (see :class:`DisconnectWatch`)."""
    return DisconnectWatch(receive)


async def send_error(send: Send, error: HeliportError, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """Send ``error`` as a complete JSON response, its code in ``Helicone-Error``."""
    await send_json(send, error.status, error.body(), headers=[(b"helicone-error", error.code.encode()), *headers])
