"""A stand-in for Aurora Serverless v2 paused at 0 ACU, on loopback, for the resume tests.

A paused Aurora accepts the TCP connection and says nothing until it has resumed (15-30 s); a
PostgreSQL server still starting answers the startup message with FATAL 57P03 "the database system
is starting up". :class:`PausedDatabase` does either, then, after :meth:`PausedDatabase.resume`,
relays new connections to the real server. It runs its own event loop on a thread, so synchronous
tests (the Lambda entries) and asynchronous ones can both use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

Mode = Literal["paused", "starting", "resumed"]

_SSL_REQUEST = 80877103
#: ErrorResponse as PostgreSQL sends it while starting up (severity, code, message).
_STARTING_UP = b"SFATAL\0VFATAL\0C57P03\0Mthe database system is starting up\0\0"


class PausedDatabase:
    """Listens on 127.0.0.1; :attr:`dsn` is ``target_dsn`` pointed at it."""

    def __init__(self, target_dsn: str, mode: Mode = "paused") -> None:
        parts = urlsplit(target_dsn)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._parts = parts
        self.mode: Mode = mode
        #: Connections accepted so far (a client that gave up still counts).
        self.accepted = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def dsn(self) -> str:
        user = f"{self._parts.username}@" if self._parts.username else ""
        return urlunsplit(self._parts._replace(netloc=f"{user}127.0.0.1:{self.port}"))

    def resume(self) -> None:
        self.mode = "resumed"

    def __enter__(self) -> PausedDatabase:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop
        ).result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.accepted += 1
        try:
            if self.mode == "paused":
                while await reader.read(65536):  # silent until the client gives up
                    pass
            elif self.mode == "starting":
                await _refuse_startup(reader, writer)
            else:
                await _relay(reader, writer, self._target)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)


async def _refuse_startup(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    length, code = struct.unpack("!II", await reader.readexactly(8))
    if code == _SSL_REQUEST:  # no TLS here; the client goes on in plain text
        writer.write(b"N")
        await writer.drain()
        length, code = struct.unpack("!II", await reader.readexactly(8))
    await reader.readexactly(length - 8)  # the rest of the startup message
    writer.write(b"E" + struct.pack("!I", len(_STARTING_UP) + 4) + _STARTING_UP)
    await writer.drain()


async def _relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: tuple[str, int]) -> None:
    up_reader, up_writer = await asyncio.open_connection(*target)

    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        dst.close()

    try:
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
    finally:
        up_writer.close()
