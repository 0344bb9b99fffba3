"""A stand-in of AWS Lambda's Extensions API and of the runtime side as the Lambda Web Adapter plays it.

These are AWS's wire protocols, outside heliport, so tests mock them here and never heliport's own code.
One aiohttp server on loopback, in its own thread and event loop, serves the Extensions API that a
process finds at ``AWS_LAMBDA_RUNTIME_API``:

* ``POST /2020-01-01/extension/register`` (header ``Lambda-Extension-Name``, body ``{"events": [...]}``):
  answers with a ``Lambda-Extension-Identifier`` header; allowed only during INIT, i.e. before the first
  :meth:`LambdaApis.invoke` (afterwards 403: Lambda refuses registration outside INIT; the error
  type in the body is the stand-in's own).
  ``LambdaApis(refuse_register=True)`` answers 500 instead, for fail-open tests.
* ``GET /2020-01-01/extension/event/next`` (header ``Lambda-Extension-Identifier``): blocks until the
  next event for that extension, ``{"eventType": "INVOKE", "requestId", "deadlineMs", "invokedFunctionArn",
  "tracing"}`` or ``{"eventType": "SHUTDOWN", "shutdownReason", "deadlineMs"}``; an extension that called
  it is *waiting*, which is what Lambda waits for before it freezes the environment.
* ``POST /2020-01-01/extension/init/error`` and ``/exit/error`` (header
  ``Lambda-Extension-Function-Error-Type``): recorded in :attr:`LambdaApis.errors`, answered 202.

The runtime side, :meth:`LambdaApis.invoke`, does what the Web Adapter does per invocation: send INVOKE
to the extensions registered for it, forward the request to the app over HTTP with the headers the
adapter adds (``x-amzn-request-context`` and ``x-amzn-lambda-context``, the JSON of the Rust runtime's
``Context``: ``request_id``, ``deadline``, ``invoked_function_arn``, ``xray_trace_id``, ``env_config``),
read the streamed response to its end (time to last byte), then wait until every registered extension
is back in ``next`` (Lambda's freeze point; the time from the last byte to it is the post-runtime
duration) and, when a process is attached and ``freeze=True``, ``SIGSTOP`` it for real; the next
invoke or :meth:`LambdaApis.shutdown` sends ``SIGCONT`` first.

Interface (kept stable: benchmarks import it)::

    apis = LambdaApis(function_name="heliport-proxy")   # refuse_register=False, timeout_s=30.0
    apis.start()                      # the server thread; apis.runtime_api == "127.0.0.1:<port>"
    # start the app with AWS_LAMBDA_RUNTIME_API=apis.runtime_api, wait for its /healthcheck
    apis.attach(process)              # a subprocess.Popen (or a pid) to freeze/thaw/terminate
    inv = apis.invoke("POST", "http://127.0.0.1:8080/v1/...", headers={...}, body=b"...")
    inv.status, inv.headers, inv.body, inv.ttlb_s, inv.freeze_s, inv.request_id, inv.frozen_in_time,
    inv.last_byte_at, inv.frozen_at   # perf_counter() stamps, to order against other events
    front = apis.front_door("http://127.0.0.1:8080")   # API Gateway's place: each request = one invoke
    apis.shutdown()                   # SIGCONT, SIGTERM, wait <= 2 s, SIGKILL; the exit code (uvicorn: -15
                                      # after a graceful shutdown, it re-raises SIGTERM); apis.killed
    apis.stop()

``apis.fail_next = True`` makes ``event/next`` answer 500 (a broken API, for extensions' error paths).
``invoke`` keyword options: ``request_id`` (default a new UUID), ``lambda_context=False`` (send no
``x-amzn-lambda-context``, as a caller that bypasses the adapter), ``event_after_response=True``
(deliver INVOKE to the extensions only once the response has ended: the ordering where the app
finishes first), ``freeze=False`` (measure, but do not stop the process).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

__all__ = ["ExtensionError", "Invocation", "LambdaApis", "Registered"]

API = "/2020-01-01/extension"
#: Lambda's grace period after SIGTERM when external extensions (such as the Web Adapter) are registered.
SHUTDOWN_WINDOW_S = 2.0


@dataclass(frozen=True, slots=True)
class Invocation:
    """What one invoke saw: the app's answer and the two durations the client and the bill see."""

    request_id: str
    status: int
    headers: Mapping[str, str]
    body: bytes
    #: From sending the request to the app until its response's last byte (what the client waits).
    ttlb_s: float
    #: From the last byte until every extension was back in ``next`` (post-runtime duration).
    freeze_s: float
    #: False when some extension was still busy after ``timeout_s`` (Lambda would time the invoke out).
    frozen_in_time: bool
    #: ``time.perf_counter()`` at the last byte and at the freeze, to order them against other events.
    last_byte_at: float = 0.0
    frozen_at: float = 0.0


@dataclass(frozen=True, slots=True)
class ExtensionError:
    """One ``init/error`` or ``exit/error`` report."""

    kind: str  # "init" or "exit"
    extension: str
    error_type: str
    body: bytes


@dataclass(slots=True)
class Registered:
    """An extension as the API knows it."""

    identifier: str
    name: str
    events: frozenset[str]
    waiting: bool = False
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)


@dataclass(slots=True)
class _Relay:
    """A front-door request and the streamed response relaying the app's answer to it."""

    request: web.Request
    response: web.StreamResponse | None = None


class LambdaApis:
    """The Extensions API and the runtime side of one execution environment (see the module doc)."""

    def __init__(
        self,
        *,
        function_name: str = "heliport-proxy",
        refuse_register: bool = False,
        timeout_s: float = 30.0,
    ) -> None:
        self.function_name = function_name
        self.refuse_register = refuse_register
        self.timeout_s = timeout_s
        self.extensions: dict[str, Registered] = {}
        self.errors: list[ExtensionError] = []
        self.invocations: list[Invocation] = []
        self._initialising = True
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._port = 0
        self._changed: asyncio.Condition | None = None
        self._busy: asyncio.Lock | None = None
        self._app_url: str | None = None
        self._front_runner: web.AppRunner | None = None
        self._process: subprocess.Popen[Any] | None = None
        self._pid: int | None = None
        self._stopped = False
        #: Whether the last :meth:`shutdown` needed SIGKILL.
        self.killed = False
        #: Answer ``event/next`` with a 500 (once no event is queued): a broken API, for error paths.
        self.fail_next = False

    # -- lifecycle of the stand-in -------------------------------------------------------------------

    @property
    def runtime_api(self) -> str:
        """The value of ``AWS_LAMBDA_RUNTIME_API`` for the app (host:port, no scheme)."""
        assert self._port, "start() first"
        return f"127.0.0.1:{self._port}"

    def start(self) -> LambdaApis:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._serve())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="lambda-apis", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the Lambda API stand-in did not start")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        self._call(self._close(), timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop.close()
        self._loop = None

    def attach(self, process: subprocess.Popen[Any] | int) -> None:
        """The app process that invocations freeze and thaw and that :meth:`shutdown` terminates."""
        if isinstance(process, int):
            self._process, self._pid = None, process
        else:
            self._process, self._pid = process, process.pid
        self._stopped = False

    # -- the runtime side ------------------------------------------------------------------------------

    def invoke(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        request_id: str | None = None,
        lambda_context: bool = True,
        event_after_response: bool = False,
        freeze: bool = True,
    ) -> Invocation:
        """One invocation, as the Web Adapter relays it (see the module doc); blocks until frozen."""
        invocation: Invocation = self._call(
            self._invoke(
                method,
                url,
                dict(headers or {}),
                body,
                request_id or str(uuid.uuid4()),
                lambda_context=lambda_context,
                event_after_response=event_after_response,
                freeze=freeze,
            ),
            timeout=self.timeout_s + 30,
        )
        self.invocations.append(invocation)
        return invocation

    def front_door(self, app_url: str) -> str:
        """An HTTP endpoint (API Gateway's place) where every request is one :meth:`invoke` of ``app_url``.

        The response streams through as the app sends it, so an SDK can talk to it; each invocation
        (with its ttlb and freeze) lands in :attr:`invocations` once Lambda would have frozen.
        """
        url: str = self._call(self._open_front_door(app_url), timeout=10)
        return url

    def shutdown(self, window_s: float = SHUTDOWN_WINDOW_S) -> int | None:
        """Lambda's Shutdown phase for the runtime: thaw, SIGTERM, wait ``window_s``, then SIGKILL.

        SHUTDOWN goes to extensions registered for it first. Returns the exit code (None for a pid
        that is not our child); :attr:`killed` says whether SIGKILL was needed.
        """
        self._call(self._send_shutdown(window_s), timeout=10)
        self.killed = False
        if self._pid is None:
            return None
        self._thaw()
        os.kill(self._pid, signal.SIGTERM)
        if self._process is not None:
            try:
                return self._process.wait(window_s)
            except subprocess.TimeoutExpired:
                self.killed = True
                self._process.kill()
                return self._process.wait(10)
        deadline = time.monotonic() + window_s
        while time.monotonic() < deadline:
            try:
                os.kill(self._pid, 0)
            except ProcessLookupError:
                return None
            time.sleep(0.01)
        self.killed = True
        os.kill(self._pid, signal.SIGKILL)
        return None

    @property
    def registered(self) -> list[Registered]:
        return list(self.extensions.values())

    # -- internals -----------------------------------------------------------------------------------

    def _call(self, coro: Any, timeout: float) -> Any:
        assert self._loop is not None, "start() first"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _serve(self) -> None:
        self._changed = asyncio.Condition()
        self._busy = asyncio.Lock()
        app = web.Application()
        app.router.add_post(f"{API}/register", self._register)
        app.router.add_get(f"{API}/event/next", self._next)
        app.router.add_post(f"{API}/init/error", self._init_error)
        app.router.add_post(f"{API}/exit/error", self._exit_error)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self._port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        # Forwarding to the app: no pooling quirks to reason about, no overall timeout (streams are long).
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))

    async def _close(self) -> None:
        for extension in self.extensions.values():
            extension.queue.put_nowait({"eventType": "_CLOSE"})
        if self._front_runner is not None:
            await self._front_runner.cleanup()
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _notify(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    def _extension(self, request: web.Request) -> Registered | None:
        return self.extensions.get(request.headers.get("Lambda-Extension-Identifier", ""))

    async def _register(self, request: web.Request) -> web.Response:
        name = request.headers.get("Lambda-Extension-Name")
        if not name:
            return _error(400, "InvalidRequest", "Lambda-Extension-Name header is missing")
        if self.refuse_register:
            return _error(500, "ServiceException", "registration refused by the test")
        if not self._initialising:
            return _error(403, "Extension.InvalidState", "registration is only allowed during INIT")
        try:
            events = frozenset((await request.json())["events"])
        except (ValueError, KeyError, TypeError):
            return _error(400, "InvalidRequest", 'body must be {"events": [...]}')
        if not events <= {"INVOKE", "SHUTDOWN"}:
            return _error(400, "InvalidRequest", f"unknown events {sorted(events)}")
        identifier = str(uuid.uuid4())
        self.extensions[identifier] = Registered(identifier, name, events)
        payload = {"functionName": self.function_name, "functionVersion": "$LATEST", "handler": "run.sh"}
        return web.json_response(payload, headers={"Lambda-Extension-Identifier": identifier})

    async def _next(self, request: web.Request) -> web.StreamResponse:
        extension = self._extension(request)
        if extension is None:
            return _error(403, "Extension.Unknown", "unknown or missing Lambda-Extension-Identifier")
        if self.fail_next and extension.queue.empty():
            return _error(500, "ServiceException", "event/next failing on the test's request")
        if extension.queue.empty():  # an event already queued is answered at once: never idle
            extension.waiting = True
            await self._notify()
        try:
            event = await extension.queue.get()
        finally:
            extension.waiting = False
        if event["eventType"] == "_CLOSE":
            return _error(500, "ServiceException", "the stand-in is closing")
        return web.json_response(event, headers={"Lambda-Extension-Event-Identifier": str(uuid.uuid4())})

    async def _report(self, request: web.Request, kind: str) -> web.Response:
        extension = self._extension(request)
        if extension is None:
            return _error(403, "Extension.Unknown", "unknown or missing Lambda-Extension-Identifier")
        error_type = request.headers.get("Lambda-Extension-Function-Error-Type", "")
        self.errors.append(ExtensionError(kind, extension.name, error_type, await request.read()))
        return web.json_response({"status": "OK"}, status=202)

    async def _init_error(self, request: web.Request) -> web.Response:
        return await self._report(request, "init")

    async def _exit_error(self, request: web.Request) -> web.Response:
        return await self._report(request, "exit")

    async def _all_waiting(self, limit_s: float) -> bool:
        """Wait until every registered extension sits in ``next``: Lambda's condition for the freeze."""
        assert self._changed is not None
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: all(e.waiting for e in self.extensions.values())), limit_s
                )
            except TimeoutError:
                return False
        return True

    def _dispatch(self, event: dict[str, Any]) -> None:
        for extension in self.extensions.values():
            if event["eventType"] in extension.events:
                extension.waiting = False  # busy from now on, before its next() even wakes up
                extension.queue.put_nowait(event)

    def _thaw(self) -> None:
        if self._pid is not None and self._stopped:
            os.kill(self._pid, signal.SIGCONT)
            self._stopped = False

    async def _invoke(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        request_id: str,
        *,
        lambda_context: bool,
        event_after_response: bool,
        freeze: bool,
        relay: _Relay | None = None,
    ) -> Invocation:
        assert self._session is not None and self._busy is not None
        async with self._busy:  # one invocation at a time per environment, as on-demand Lambda runs them
            return await self._invoke_now(
                method,
                url,
                headers,
                body,
                request_id,
                lambda_context=lambda_context,
                event_after_response=event_after_response,
                freeze=freeze,
                relay=relay,
            )

    async def _invoke_now(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        request_id: str,
        *,
        lambda_context: bool,
        event_after_response: bool,
        freeze: bool,
        relay: _Relay | None,
    ) -> Invocation:
        assert self._session is not None
        self._initialising = False  # INIT is over once the first invoke comes
        self._thaw()
        # Lambda sends an invoke only to an idle environment: every extension back in next.
        if not await self._all_waiting(self.timeout_s):
            raise RuntimeError("an extension never came back to next before the invoke")
        deadline_ms = int((time.time() + self.timeout_s) * 1000)
        arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        trace = f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}"
        event: dict[str, Any] = {
            "eventType": "INVOKE",
            "deadlineMs": deadline_ms,
            "requestId": request_id,
            "invokedFunctionArn": arn,
            "tracing": {"type": "X-Amzn-Trace-Id", "value": trace},
        }
        if not event_after_response:
            self._dispatch(event)
        headers.setdefault("x-amzn-request-context", json.dumps({"requestId": str(uuid.uuid4()), "stage": "v1"}))
        if lambda_context:
            headers["x-amzn-lambda-context"] = json.dumps(
                {
                    "request_id": request_id,
                    "deadline": deadline_ms,
                    "invoked_function_arn": arn,
                    "xray_trace_id": trace,
                    "client_context": None,
                    "identity": None,
                    "env_config": {
                        "function_name": self.function_name,
                        "memory": 1024,
                        "version": "$LATEST",
                        "log_stream": "",
                        "log_group": "",
                    },
                }
            )
        started = time.perf_counter()
        chunks: list[bytes] = []
        async with self._session.request(method, url, headers=headers, data=body) as response:
            status, answer_headers = response.status, dict(response.headers)
            out = None
            if relay is not None:  # the front door: stream to its client as the chunks come
                out = web.StreamResponse(status=status, headers=_relayed(answer_headers))
                await out.prepare(relay.request)
                relay.response = out  # what the front door's handler returns
            async for chunk in response.content.iter_any():
                chunks.append(chunk)
                if out is not None:
                    await out.write(chunk)
            if out is not None:
                await out.write_eof()  # the client's response is over: Lambda's runtime phase ends here
            last_byte = time.perf_counter()
        if event_after_response:
            self._dispatch(event)
        in_time = await self._all_waiting(self.timeout_s)
        frozen = time.perf_counter()
        if freeze and in_time and self._pid is not None:
            os.kill(self._pid, signal.SIGSTOP)
            self._stopped = True
        return Invocation(
            request_id=request_id,
            status=status,
            headers=answer_headers,
            body=b"".join(chunks),
            ttlb_s=last_byte - started,
            freeze_s=frozen - last_byte,
            frozen_in_time=in_time,
            last_byte_at=last_byte,
            frozen_at=frozen,
        )

    async def _front(self, request: web.Request) -> web.StreamResponse:
        """A request to the front door is one invocation (API Gateway -> Lambda -> the adapter -> the app)."""
        assert self._app_url is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        relay = _Relay(request)
        invocation = await self._invoke(
            request.method,
            self._app_url + request.path_qs,
            headers,
            await request.read(),
            str(uuid.uuid4()),
            lambda_context=True,
            event_after_response=False,
            freeze=True,
            relay=relay,
        )
        self.invocations.append(invocation)
        assert relay.response is not None  # prepared and ended by _invoke already
        return relay.response

    async def _open_front_door(self, app_url: str) -> str:
        self._app_url = app_url.rstrip("/")
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._front)
        self._front_runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._front_runner.setup()
        site = web.TCPSite(self._front_runner, "127.0.0.1", 0)
        await site.start()
        assert site._server is not None
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return f"http://127.0.0.1:{port}"

    async def _send_shutdown(self, window_s: float) -> None:
        self._dispatch(
            {"eventType": "SHUTDOWN", "shutdownReason": "spindown", "deadlineMs": int((time.time() + window_s) * 1000)}
        )


_HOP_BY_HOP = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"})


def _relayed(headers: Mapping[str, str]) -> dict[str, str]:
    """The app's response headers as the front door sends them on (it re-frames, and aiohttp decoded the body)."""
    return {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}


def _error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response({"errorMessage": message, "errorType": kind}, status=status)
