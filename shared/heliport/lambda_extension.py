"""Log after the response, the Lambda way: an internal Lambda extension that holds the freeze.

Helicone's worker logs with ``ctx.waitUntil()``: the response ends, the log goes out afterwards. On
Lambda the environment is frozen as soon as the runtime's response has ended *and every extension*
is waiting in ``GET /2020-01-01/extension/event/next``; work still running then stalls until the next
invoke, or is lost when the environment is reclaimed. So without help heliport hands the record to
SQS before the stream's terminating chunk, and every client waits one SQS round trip.

This module registers the proxy's process as an *internal extension* (Lambda Extensions API,
``INVOKE`` events only, which is all an in-process extension may ask for) during INIT, i.e. in the
lifespan start-up before uvicorn answers the Web Adapter's ``/healthcheck``. Per invocation Lambda
sends ``INVOKE`` with the invocation's ``requestId``; the Web Adapter forwards the HTTP request with
the same id in the ``x-amzn-lambda-context`` header (JSON of the Rust runtime's ``Context``:
``request_id``, ``deadline``, ...; see the adapter's ``fetch_response``). The extension matches the
two and asks for the next event only once that request has ended and the log hand-offs outstanding
then are done: the client has its last byte already, the hand-off runs in Lambda's post-runtime
phase (billed, reported as ``PostRuntimeExtensionsDuration``), and nothing is frozen mid-send.

Orders the two events may come in, and what happens:

* INVOKE first (the usual): the extension waits for a request with that id to arrive (bounded by
  :data:`ARRIVAL_WAIT_S`: a request that never comes is logged and the extension moves on), then for
  it to end (bounded by the invocation's deadline).
* The request ends first (the extension's task had not run yet): its id is remembered (the last
  :data:`REMEMBERED` ids), and the INVOKE only waits for the outstanding hand-offs.
* A request without the header (not relayed by the adapter): it cannot be matched; an INVOKE whose own
  request never arrives waits for such requests to end instead, since on-demand Lambda runs one
  request per environment at a time.

Whether the hand-off goes before or after the last byte is :class:`~heliport.logs.backlog.LogBacklog`'s
``after_last_byte``, which :class:`LambdaExtensionApp` turns on only once the extension is registered.
Without ``AWS_LAMBDA_RUNTIME_API`` or when registration fails the order stays before the last byte and
the log says why (fail open: slower, never lossy). On Lambda Managed Instances the environment is
never frozen and serves many requests at once, so there the hand-off simply goes after the last byte,
bounded by the backlog, without registering. At shutdown (SIGTERM, uvicorn's lifespan shutdown)
:meth:`heliport.app.Heliport.aclose` awaits outstanding hand-offs before it closes the queue.

Light at import: aiohttp is imported when the extension registers (only with ``HELIPORT_LAMBDA_EXTENSION``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from heliport.asgi import Message, Receive, Scope, Send

if TYPE_CHECKING:
    import aiohttp

    from heliport.app import Heliport
    from heliport.logs.backlog import LogBacklog

__all__ = [
    "ARRIVAL_WAIT_S",
    "EXTENSION_NAME",
    "REMEMBERED",
    "InternalExtension",
    "LambdaExtensionApp",
    "RegistrationError",
    "lambda_request_id",
    "managed_instances",
    "with_lambda_extension",
]

logger = logging.getLogger("heliport.lambda_extension")

EXTENSION_NAME = "heliport-log-handoff"
#: How long an INVOKE waits for its HTTP request to reach the app. The adapter forwards it the moment
#: Lambda hands it the event, so this only bounds a request that never comes (a broken relay).
ARRIVAL_WAIT_S = 2.0
#: Ids of requests that ended before their INVOKE was read, kept for the late INVOKE (bounded memory).
REMEMBERED = 256
#: Given up this long before the invocation's deadline, so the extension is back in ``next`` in time.
DEADLINE_MARGIN_S = 0.2
LAMBDA_CONTEXT_HEADER = b"x-amzn-lambda-context"
_API = "/2020-01-01/extension"


class RegistrationError(Exception):
    """The Extensions API refused or could not be reached; the message says why."""


class _LambdaContext(msgspec.Struct):
    request_id: str


_context_decoder = msgspec.json.Decoder(_LambdaContext)


def lambda_request_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The Lambda request id the Web Adapter put in ``x-amzn-lambda-context``, or None."""
    for name, value in headers:
        if name == LAMBDA_CONTEXT_HEADER:  # ASGI servers give header names in lower case
            try:
                return _context_decoder.decode(value).request_id or None
            except msgspec.DecodeError:
                return None
    return None


def managed_instances(environ: Mapping[str, str]) -> bool:
    """Whether this is a Lambda Managed Instances environment (never frozen, many requests at once).

    ``AWS_LAMBDA_INITIALIZATION_TYPE`` is ``lambda-managed-instances`` there (as AWS's own tracer
    libraries test), and the runtime's concurrency is ``AWS_LAMBDA_MAX_CONCURRENCY``.
    """
    if environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "lambda-managed-instances":
        return True
    try:
        return int(environ.get("AWS_LAMBDA_MAX_CONCURRENCY", "1")) > 1
    except ValueError:
        return False


class _Slot:
    """One Lambda request id: whether its HTTP request arrived, how many are running, and its end."""

    __slots__ = ("active", "arrived", "ended")

    def __init__(self) -> None:
        self.arrived = asyncio.Event()
        self.ended = asyncio.Event()
        self.active = 0


class InternalExtension:
    """The Extensions API client and the matching of INVOKE events to HTTP requests (see the module doc)."""

    def __init__(
        self,
        runtime_api: str,
        backlog: LogBacklog,
        *,
        name: str = EXTENSION_NAME,
        arrival_wait_s: float = ARRIVAL_WAIT_S,
        remembered: int = REMEMBERED,
    ) -> None:
        self._base = f"http://{runtime_api}{_API}"
        self._backlog = backlog
        self._name = name
        self._arrival_wait_s = arrival_wait_s
        self._remembered = remembered
        self._slots: OrderedDict[str, _Slot] = OrderedDict()
        self._anonymous = 0
        self._anonymous_idle = asyncio.Event()
        self._anonymous_idle.set()
        self._session: aiohttp.ClientSession | None = None
        self._identifier: str | None = None
        self._task: asyncio.Task[None] | None = None
        #: Invocations settled, and how many of them gave up waiting (for tests and logs).
        self.settled = 0
        self.gave_up = 0

    @property
    def identifier(self) -> str | None:
        return self._identifier

    # -- the Extensions API ------------------------------------------------------------------------------

    async def register(self, timeout_s: float = 5.0) -> None:
        """``POST /register`` for INVOKE events, then start the event loop; RegistrationError if refused."""
        import aiohttp

        # No overall timeout on the session: ``next`` blocks for as long as the environment is idle.
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        try:
            async with self._session.post(
                f"{self._base}/register",
                json={"events": ["INVOKE"]},
                headers={"Lambda-Extension-Name": self._name},
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as response:
                body = await response.text()
                identifier = response.headers.get("Lambda-Extension-Identifier")
                if response.status != 200 or not identifier:
                    raise RegistrationError(f"register answered {response.status}: {body[:300]}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            await self._close_session()
            raise RegistrationError(f"register failed: {type(exc).__name__}: {exc}") from exc
        except RegistrationError:
            await self._close_session()
            raise
        self._identifier = identifier
        self._task = asyncio.create_task(self._run(), name="lambda-extension")

    async def _run(self) -> None:
        """Ask for the next event, settle it, repeat; a broken API is reported and ends the loop."""
        assert self._session is not None and self._identifier is not None
        headers = {"Lambda-Extension-Identifier": self._identifier}
        while True:
            try:
                async with self._session.get(f"{self._base}/event/next", headers=headers) as response:
                    if response.status != 200:
                        raise RuntimeError(f"event/next answered {response.status}: {(await response.text())[:300]}")
                    event: dict[str, Any] = await response.json(content_type=None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Without this loop Lambda would wait for the extension until the invoke times out:
                # say so, hand records off before the last byte again, and tell Lambda the extension failed.
                logger.error("the Lambda extension stopped (%s); logging before the last byte from now on", exc)
                self._backlog.after_last_byte = False
                await self._report("exit", "Extension.EventLoopFailed", str(exc))
                return
            kind = event.get("eventType")
            if kind == "INVOKE":
                await self._settle(str(event.get("requestId", "")), event.get("deadlineMs"))
            elif kind == "SHUTDOWN":  # only external extensions receive it; a drain is harmless anyway
                await self._backlog.drain(1.5)
                return

    async def _report(self, kind: str, error_type: str, message: str) -> None:
        """``POST /init/error`` or ``/exit/error``; best effort, the caller is already failing."""
        if self._session is None or self._identifier is None:
            return
        try:
            async with self._session.post(
                f"{self._base}/{kind}/error",
                json={"errorMessage": message[:1000], "errorType": error_type},
                headers={
                    "Lambda-Extension-Identifier": self._identifier,
                    "Lambda-Extension-Function-Error-Type": error_type,
                },
            ) as response:
                await response.read()
        except Exception as exc:  # the API is gone; the log line above is what remains
            logger.warning("could not report the extension's %s error: %s", kind, exc)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close_session()

    async def _close_session(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- matching INVOKE events to requests -----------------------------------------------------------

    def _slot(self, request_id: str) -> _Slot:
        slot = self._slots.get(request_id)
        if slot is None:
            slot = self._slots[request_id] = _Slot()
            # Bounded: the oldest go first (one request at a time on-demand, so those ended long ago).
            while len(self._slots) > self._remembered:
                oldest = next(iter(self._slots))
                if oldest == request_id:
                    break
                del self._slots[oldest]
        return slot

    def enter(self, request_id: str | None) -> None:
        """An HTTP request began (``request_id`` from its header, None without one)."""
        if request_id is None:
            self._anonymous += 1
            self._anonymous_idle.clear()  # the adapter's readiness checks come without it too
            return
        slot = self._slot(request_id)
        slot.active += 1
        slot.ended.clear()
        slot.arrived.set()

    def leave(self, request_id: str | None) -> None:
        """The HTTP request ended (its handler returned, after-last-byte hand-off included)."""
        if request_id is None:
            self._anonymous -= 1
            if self._anonymous == 0:
                self._anonymous_idle.set()
            return
        slot = self._slots.get(request_id)
        if slot is None:  # forgotten meanwhile (only past ``remembered`` ids): nothing waits for it
            return
        slot.active -= 1
        if slot.active == 0:
            slot.ended.set()

    async def _settle(self, request_id: str, deadline_ms: object) -> None:
        """Return once the invocation's request has ended and the hand-offs outstanding then are done."""
        started = time.monotonic()
        if isinstance(deadline_ms, int | float):
            budget = max(0.0, deadline_ms / 1000 - time.time() - DEADLINE_MARGIN_S)
        else:
            budget = 900.0  # Lambda's longest timeout: only a malformed event has no deadline
        slot = self._slot(request_id)
        try:
            if not slot.arrived.is_set():
                try:
                    await asyncio.wait_for(slot.arrived.wait(), min(self._arrival_wait_s, budget))
                except TimeoutError:
                    # Its request never came with the header: if requests without one are running, one
                    # of them is this invocation's (one request per environment), so wait for those.
                    logger.warning(
                        "no request with Lambda request id %s arrived within %.1f s (%d without %s running: "
                        "held for those)",
                        request_id,
                        self._arrival_wait_s,
                        self._anonymous,
                        LAMBDA_CONTEXT_HEADER.decode(),
                    )
                    if self._anonymous:
                        await asyncio.wait_for(self._anonymous_idle.wait(), _left(started, budget))
            if slot.arrived.is_set():
                await asyncio.wait_for(slot.ended.wait(), _left(started, budget))
            if not await self._backlog.drain(_left(started, budget)):
                raise TimeoutError
        except TimeoutError:
            self.gave_up += 1
            logger.error(
                "invocation %s: log hand-offs still running at its deadline (%d outstanding); they finish "
                "after the next thaw or at shutdown",
                request_id,
                self._backlog.outstanding,
            )
        finally:
            self._slots.pop(request_id, None)
            self.settled += 1


def _left(started: float, budget: float) -> float:
    return max(0.0, budget - (time.monotonic() - started))


class LambdaExtensionApp:
    """The proxy's ASGI app with the extension: registers in the lifespan start-up, tracks requests.

    Lifespan: the extension registers (or the fallback is chosen) before ``lifespan.startup.complete``
    reaches uvicorn, so before ``/healthcheck`` answers and the Web Adapter starts invoking; at shutdown
    the app's ``aclose`` drains hand-offs first, then the extension's client closes.
    """

    def __init__(self, app: Heliport, environ: Mapping[str, str] | None = None) -> None:
        self.app = app
        self.settings = app.settings
        self._environ = os.environ if environ is None else environ
        self.extension: InternalExtension | None = None
        #: ``extension``, ``after-last-byte`` (Managed Instances) or ``before-last-byte`` (fallback).
        self.mode = "before-last-byte"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        extension = self.extension
        if extension is not None and scope["type"] == "http":
            request_id = lambda_request_id(scope["headers"])
            extension.enter(request_id)
            try:
                await self.app(scope, receive, send)
            finally:
                extension.leave(request_id)
        elif scope["type"] == "lifespan":
            await self.app(scope, receive, self._lifespan_send(send))
        else:
            await self.app(scope, receive, send)

    def _lifespan_send(self, send: Send) -> Send:
        async def relay(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                await self.start()
            elif message["type"] == "lifespan.shutdown.complete":
                await self.aclose()
            await send(message)

        return relay

    async def start(self) -> None:
        """Choose how records are handed off on this platform, registering the extension if it applies."""
        backlog = self.app.backlog
        if managed_instances(self._environ):
            # Never frozen, many requests at once: after the last byte, bounded by the backlog.
            backlog.after_last_byte = True
            self.mode = "after-last-byte"
            logger.info("Lambda Managed Instances: log records are handed off after the last byte")
            return
        runtime_api = self._environ.get("AWS_LAMBDA_RUNTIME_API")
        if not runtime_api:
            logger.warning(
                "HELIPORT_LAMBDA_EXTENSION is on but AWS_LAMBDA_RUNTIME_API is unset: logging before the last byte"
            )
            return
        extension = InternalExtension(runtime_api, backlog)
        try:
            await extension.register()
        except RegistrationError as exc:
            logger.warning("the Lambda extension could not register (%s): logging before the last byte", exc)
            return
        self.extension = extension
        backlog.after_last_byte = True
        self.mode = "extension"

    async def aclose(self) -> None:
        if self.extension is not None:
            await self.extension.aclose()
            self.extension = None


def with_lambda_extension(app: Heliport, environ: Mapping[str, str] | None = None) -> Heliport | LambdaExtensionApp:
    """The app itself, or wrapped in :class:`LambdaExtensionApp` when ``HELIPORT_LAMBDA_EXTENSION`` is on."""
    if not app.settings.lambda_extension:
        return app
    return LambdaExtensionApp(app, environ)
