"""The OpenAI Realtime relay: a client's WebSocket in, the provider's WebSocket out, one logged request.

A voice or text app points its socket at ``/v1/gateway/oai/realtime?model=<m>`` (OpenAI) or
``/v1/gateway/oai/realtime?resource=<r>&deployment=<d>`` (Azure) instead of the provider, with its
provider key as usual and the heliport key in ``Helicone-Auth`` or, for browsers that cannot set
headers, in a ``helicone-auth.<key>`` subprotocol.

The order of things, and why:

1. Everything that is the *caller's* fault is refused before the upgrade, as HTTP: a bad heliport key
   is a 401 and a malformed Azure query a 400 naming the field (through the ASGI denial-response
   extension; a server without it gets a close 1008 before accept).
2. The client is accepted *before* the upstream opens, as Helicone's relay does, so the app's first
   frames (``session.update`` right after ``open``) never wait on a second handshake. They are queued
   and forwarded in order once the upstream is open. One queue carries every client frame, so frames
   sent before and after the upstream opened cannot overtake each other.
3. Frames pass through untouched, text as text and binary as binary. Either side's close is passed on
   with its code and reason; an upstream that refuses the handshake becomes an OpenAI-shaped
   ``error`` event and a close (1008 for 4xx, 1013 for 429/503, 1011 otherwise). A socket silent in
   both directions for ``realtime_idle_timeout`` seconds is closed with 1001 on both sides.
4. The session is one request in the log: every event (``{type, from, timestamp, content}``) in
   order, audio payloads replaced by their decoded byte length unless ``Helicone-Realtime-Log-Audio:
   true``, and usage summed over ``response.done`` events. It is written every
   ``realtime_log_interval`` seconds and on close as numbered *parts* of the same request id; the
   consumer keeps the highest part (:attr:`LogRecord.part`), so a crash loses at most one interval
   and a redelivered old part never overwrites a newer one.

Nothing ``helicone-*`` reaches the provider: not the headers (dropped by :func:`parse_headers`), not
the ``helicone-auth.*`` subprotocol. The upstream host is fixed (api.openai.com, or a validated DNS
label under openai.azure.com), so no caller input chooses where heliport connects.

``websockets`` is imported on the first session, not with the app: the Lambda proxy imports the app
on every cold start and never serves a WebSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import msgspec

from heliport.asgi import Message, Receive, Scope, Send
from heliport.auth import KEY_PREFIX, Authenticator
from heliport.config import Settings
from heliport.errors import AuthenticationError, HeliportError, RequestError, RouteNotFoundError, json_depth_exceeds
from heliport.headers import RequestOptions, parse_headers
from heliport.logs.record import LogRecord
from heliport.logs.usage import Usage
from heliport.store.keys import ApiKey
from heliport.store.queue import LogQueue

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

__all__ = [
    "AUDIO_HEADER",
    "AZURE_API_VERSION",
    "REALTIME_PATHS",
    "SUBPROTOCOL_PREFIX",
    "RealtimeRelay",
    "Upstream",
    "redact_audio",
    "resolve_upstream",
    "sum_usage",
]

logger = logging.getLogger("heliport.realtime")


#: The realtime route, as Helicone's Jawn serves it (``openai`` is accepted as well as ``oai``).
REALTIME_PATHS = frozenset({"/v1/gateway/oai/realtime", "/v1/gateway/openai/realtime"})
#: Subprotocol carrying the heliport key, for browsers (OpenAI's own is ``openai-insecure-api-key.<key>``).
SUBPROTOCOL_PREFIX = "helicone-auth."
#: Opt-in header: keep the base64 audio in the logged events instead of its byte length.
AUDIO_HEADER = "helicone-realtime-log-audio"
#: Azure's realtime API version when the caller does not send ``api-version`` (Helicone's default).
AZURE_API_VERSION = "2024-10-01-preview"

_DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", re.IGNORECASE)
_DEPLOYMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_API_VERSION = re.compile(r"^[A-Za-z0-9._-]{1,40}$")
# Handshake headers the upstream client writes itself, and headers that belong to this hop only.
_NOT_FORWARDED = frozenset({"origin", "cookie"})
_KEY_SUBPROTOCOL = "openai-insecure-api-key."
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder()


class RealtimeQueryError(RequestError):
    """A malformed realtime query string; ``param`` names the field."""

    code = "invalid_query"

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"Invalid realtime query parameter {name!r}: {problem}", param=name)


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where a realtime session goes and what it sends there."""

    provider: str
    url: str
    headers: list[tuple[str, str]]
    subprotocols: list[str]
    model: str | None


def _ws_origin(base: str) -> str:
    parts = urlsplit(base)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}"


def resolve_upstream(
    settings: Settings, query: bytes, forward: list[tuple[str, str]], subprotocols: list[str]
) -> Upstream:
    """The upstream socket for a realtime query; :class:`RealtimeQueryError` for a malformed one.

    ``forward`` is what :func:`parse_headers` left to forward (no ``helicone-*``, no hop-by-hop).
    """
    params = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    values = dict(params)
    headers = [(n, v) for n, v in forward if n not in _NOT_FORWARDED and not n.startswith("sec-websocket-")]
    upstream_protocols = [p for p in subprotocols if not p.startswith(SUBPROTOCOL_PREFIX)]
    if "resource" in values or "deployment" in values:
        resource = values.get("resource", "")
        deployment = values.get("deployment", "")
        if not _DNS_LABEL.match(resource):
            raise RealtimeQueryError("resource", "expected an Azure resource name (a DNS label: a-z, 0-9, '-')")
        if not _DEPLOYMENT.match(deployment):
            raise RealtimeQueryError("deployment", "expected an Azure deployment name (letters, digits, '.', '_', '-')")
        version = values.get("api-version", AZURE_API_VERSION)
        if not _API_VERSION.match(version):
            raise RealtimeQueryError("api-version", "expected an Azure API version like 2024-10-01-preview")
        override = settings.upstream_overrides.get("azure")
        origin = _ws_origin(override) if override else f"wss://{resource.lower()}.openai.azure.com"
        url = f"{origin}/openai/realtime?" + urlencode({"api-version": version, "deployment": deployment})
        # Azure takes its key as `api-key`; clients following Helicone's docs send it as a Bearer token.
        api_key = next((v for n, v in headers if n == "api-key"), None)
        bearer = next((v for n, v in headers if n == "authorization"), None)
        if api_key is None and bearer is not None and bearer.lower().startswith("bearer "):
            api_key = bearer[7:].strip()
        headers = [(n, v) for n, v in headers if n not in ("api-key", "authorization")]
        if api_key is not None:
            headers.append(("api-key", api_key))
        return Upstream("AZURE", url, headers, upstream_protocols, deployment)
    base = settings.upstream_overrides.get("oai") or settings.upstream_overrides.get("openai")
    origin = _ws_origin(base) if base else "wss://api.openai.com"
    url = f"{origin}/v1/realtime"
    if params:
        url += "?" + urlencode(params, quote_via=quote)
    model = values.get("model") or None
    return Upstream("OPENAI", url, headers, upstream_protocols, model)


# -- what is logged -----------------------------------------------------------------------------------


def _b64_bytes(value: str) -> int:
    """Decoded length of a base64 string, without decoding it."""
    return len(value.rstrip("=")) * 3 // 4


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "audio" and isinstance(item, str):
                out[key] = {"bytes": _b64_bytes(item)}
            else:
                out[key] = _redact(item)
        return out
    if isinstance(value, list):
        return [_redact(item) for item in value]
    return value


def redact_audio(event: dict[str, Any]) -> dict[str, Any]:
    """The event with every base64 audio payload replaced by ``{"bytes": <decoded length>}``.

    Payloads are the ``audio`` fields (``input_audio_buffer.append``, ``input_audio`` content parts)
    and the ``delta`` of audio deltas (``response.output_audio.delta``, beta ``response.audio.delta``);
    transcript deltas are text and stay.
    """
    kind = event.get("type")
    redacted: dict[str, Any] = _redact(event)
    delta = redacted.get("delta")
    if isinstance(kind, str) and kind.endswith("audio.delta") and isinstance(delta, str):
        redacted["delta"] = {"bytes": _b64_bytes(delta)}
    return redacted


def _count(details: object, key: str) -> int | None:
    if isinstance(details, dict):
        value = details.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


@dataclass(slots=True)
class _Totals:
    prompt: int | None = None
    completion: int | None = None
    total: int | None = None
    cache_read: int | None = None
    cache_read_audio: int | None = None
    prompt_audio: int | None = None
    completion_audio: int | None = None

    def add(self, name: str, value: int | None) -> None:
        if value is not None:
            setattr(self, name, (getattr(self, name) or 0) + value)


def sum_usage(events: list[dict[str, Any]], model: str | None = None) -> Usage:
    """Usage of a session: the sum over its ``response.done`` events (``Usage(source="absent")`` if none).

    Realtime's ``input_tokens`` already counts text, audio and cached input, and ``output_tokens`` text
    and audio output, which is what :class:`Usage` means by prompt and completion tokens.
    """
    totals = _Totals()
    for event in events:
        response = event.get("response")
        usage = response.get("usage") if isinstance(response, dict) else None
        if not isinstance(usage, dict):
            continue
        itd, otd = usage.get("input_token_details"), usage.get("output_token_details")
        totals.add("prompt", _count(usage, "input_tokens"))
        totals.add("completion", _count(usage, "output_tokens"))
        totals.add("total", _count(usage, "total_tokens"))
        totals.add("cache_read", _count(itd, "cached_tokens"))
        totals.add("prompt_audio", _count(itd, "audio_tokens"))
        totals.add("completion_audio", _count(otd, "audio_tokens"))
        cached = itd.get("cached_tokens_details") if isinstance(itd, dict) else None
        totals.add("cache_read_audio", _count(cached, "audio_tokens"))
    if totals.prompt is None and totals.completion is None and totals.total is None:
        return Usage(response_model=model)
    return Usage(
        prompt_tokens=totals.prompt,
        completion_tokens=totals.completion,
        total_tokens=totals.total,
        prompt_cache_read_tokens=totals.cache_read,
        prompt_cache_read_audio_tokens=totals.cache_read_audio,
        prompt_audio_tokens=totals.prompt_audio,
        completion_audio_tokens=totals.completion_audio,
        source="stream",
        response_model=model,
    )


@dataclass
class _Session:
    """One relayed session: its identity, its events so far and the numbering of its log parts."""

    key: ApiKey
    options: RequestOptions
    upstream: Upstream
    path: str
    log_audio: bool
    max_logged_bytes: int
    #: ``HELIPORT_MAX_JSON_DEPTH``: a deeper frame is still relayed, but logged as text, never walked.
    max_json_depth: int
    started: float = field(default_factory=time.perf_counter)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    events: list[dict[str, Any]] = field(default_factory=list)
    #: ``response.done`` payloads, kept apart so usage survives a truncated event log.
    done_events: list[dict[str, Any]] = field(default_factory=list)
    logged_bytes: int = 0
    truncated: bool = False
    first_upstream_at: float | None = None
    model: str | None = None
    status: int = 200
    errors: list[str] = field(default_factory=list)
    part: int = 0
    #: Bumped by every event, so an interval with nothing new writes nothing.
    changes: int = 0
    logged_changes: int = -1

    def record_frame(self, source: str, text: str | None, data: bytes | None) -> None:
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        self.changes += 1
        if data is not None:
            event: dict[str, Any] = {
                "type": "binary",
                "from": source,
                "timestamp": now,
                "content": {"bytes": len(data)},
            }
        else:
            try:
                content = _decode.decode(text or "")
            except (msgspec.DecodeError, RecursionError):  # RecursionError: nested deeper than msgspec goes
                content = None
            if not isinstance(content, dict) or json_depth_exceeds(content, self.max_json_depth):
                event = {"type": "text", "from": source, "timestamp": now, "content": text}
            else:
                kind = content.get("type")
                self._observe(kind, content)
                logged = content if self.log_audio else redact_audio(content)
                event = {"type": kind if isinstance(kind, str) else "unknown", "from": source, "timestamp": now}
                event["content"] = logged
        size = len(_encode(event))
        if self.logged_bytes + size > self.max_logged_bytes:
            if not self.truncated:
                self.truncated = True
                self.errors.append(f"event log truncated at {self.max_logged_bytes} bytes; usage still counted")
            return
        self.logged_bytes += size
        self.events.append(event)

    def _observe(self, kind: object, content: dict[str, Any]) -> None:
        if kind == "response.done":
            self.done_events.append(content)
        elif kind in ("session.created", "session.updated"):
            session = content.get("session")
            model = session.get("model") if isinstance(session, dict) else None
            if isinstance(model, str) and model:
                self.model = model

    def record(self) -> LogRecord:
        self.part += 1
        self.logged_changes = self.changes
        model = self.model or self.upstream.model
        usage = sum_usage(self.done_events, model)
        ttfb = None if self.first_upstream_at is None else (self.first_upstream_at - self.started) * 1000
        body = {"model": model, "events": self.events}
        summary = {"object": "realtime.session", "model": model, "usage": msgspec.to_builtins(usage)}
        options = self.options
        return LogRecord(
            request_id=options.request_id,
            org_id=self.key.org_id,
            key_id=self.key.id,
            started_at=self.started_at,
            ttfb_ms=ttfb,
            duration_ms=(time.perf_counter() - self.started) * 1000,
            method="GET",
            path=self.path,
            provider=self.upstream.provider,
            target_url=self.upstream.url,
            status=self.status,
            is_stream=True,
            request_model=model,
            **options.log_fields(),
            errors=list(self.errors),
            request_body=None if options.omit_request else _encode(body).decode(),
            response_body=None if options.omit_response else _encode(summary).decode(),
            usage=usage,
            part=self.part,
        )


# -- the relay ----------------------------------------------------------------------------------------


class _ClientClosed:
    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


def _sendable(code: int | None) -> int:
    """A close code that may be sent on the wire (1005/1006/1015 are reserved for reporting)."""
    if code is None or code in (1005, 1006, 1015) or not (1000 <= code <= 1014 or 3000 <= code <= 4999):
        return 1000 if code in (None, 1005) else 1011
    return code


def _refusal_code(status: int) -> int:
    if status in (429, 503):
        return 1013  # try again later
    return 1008 if 400 <= status < 500 else 1011


class RealtimeRelay:
    """The ``websocket`` half of the ASGI app: :meth:`__call__` serves one realtime session."""

    def __init__(
        self,
        settings: Settings,
        *,
        authenticator: Authenticator,
        queue: LogQueue,
        connector: Callable[..., Any] | None = None,
    ) -> None:
        self._settings = settings
        self._auth = authenticator
        self._queue = queue
        self._connect = connector

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        deny = "websocket.http.response" in (scope.get("extensions") or {})
        path: str = scope["path"]
        subprotocols: list[str] = list(scope.get("subprotocols") or [])
        try:
            headers = list(scope["headers"])
            path = _key_from_path(headers, path)
            if path not in REALTIME_PATHS:
                raise RouteNotFoundError(f"No WebSocket route for {path}: use /v1/gateway/oai/realtime")
            if not any(n.lower() == b"helicone-auth" for n, _ in headers):
                token = next(
                    (p[len(SUBPROTOCOL_PREFIX) :] for p in subprotocols if p.startswith(SUBPROTOCOL_PREFIX)), None
                )
                if token:
                    headers.append((b"helicone-auth", b"Bearer " + token.encode()))
            options, forward = parse_headers(headers)
            if options.auth_token is None:
                raise AuthenticationError(
                    "Missing heliport key: send 'Helicone-Auth: Bearer <key>' or the subprotocol 'helicone-auth.<key>'."
                )
            key = await self._auth.authenticate(options.auth_token)
            upstream = resolve_upstream(self._settings, scope.get("query_string", b""), forward, subprotocols)
        except HeliportError as err:
            await _refuse(send, err, deny)
            return
        log_audio = options.other.get(AUDIO_HEADER, "").strip().lower() == "true"
        settings = self._settings
        session = _Session(
            key, options, upstream, path, log_audio, settings.max_logged_body_bytes, settings.max_json_depth
        )
        await send({"type": "websocket.accept", "subprotocol": _chosen_subprotocol(subprotocols), "headers": []})
        await self._run(session, receive, send)

    async def _run(self, session: _Session, receive: Receive, send: Send) -> None:
        inbox: asyncio.Queue[tuple[str | None, bytes | None] | _ClientClosed] = asyncio.Queue()
        activity = [time.monotonic()]
        client_open = [True]

        async def read_client() -> None:
            while True:
                message = await receive()
                if message["type"] == "websocket.receive":
                    activity[0] = time.monotonic()
                    text, data = message.get("text"), message.get("bytes")
                    session.record_frame("client", text, data if text is None else None)
                    inbox.put_nowait((text, data if text is None else None))
                elif message["type"] == "websocket.disconnect":
                    client_open[0] = False
                    inbox.put_nowait(_ClientClosed(message.get("code", 1000), message.get("reason") or ""))
                    return

        async def close_client(code: int, reason: str) -> None:
            if client_open[0]:
                client_open[0] = False
                with contextlib.suppress(Exception):
                    await send({"type": "websocket.close", "code": _sendable(code), "reason": reason[:120]})

        reader = asyncio.create_task(read_client(), name="realtime-client-reader")
        logger_task = asyncio.create_task(self._log_periodically(session), name="realtime-logger")
        try:
            upstream = await self._open_upstream(session, send, close_client)
            if upstream is not None:
                await self._relay(session, upstream, inbox, send, activity, client_open, close_client)
        finally:
            reader.cancel()
            logger_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            with contextlib.suppress(asyncio.CancelledError):
                await logger_task
            await self._log(session)

    async def _open_upstream(
        self, session: _Session, send: Send, close_client: Callable[[int, str], Awaitable[None]]
    ) -> ClientConnection | None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidHandshake, InvalidStatus

        upstream = session.upstream
        try:
            return await (self._connect or connect)(
                upstream.url,
                additional_headers=upstream.headers,
                subprotocols=upstream.subprotocols or None,  # type: ignore[arg-type]  # plain strings are valid subprotocols
                user_agent_header=None,  # the client's own User-Agent is among the forwarded headers
                open_timeout=self._settings.timeouts.connect,
                max_size=self._settings.max_request_bytes,
                compression=None,
                proxy=None,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            body = exc.response.body.decode("utf-8", "replace") if exc.response.body else ""
            message = _upstream_message(body) or f"the upstream refused the connection with HTTP {status}"
            session.status = status
            session.errors.append(f"upstream refused the WebSocket: HTTP {status}: {message}")
            await self._error_and_close(session, send, close_client, status, message, _refusal_code(status))
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            session.status = 502
            message = f"could not connect to the upstream: {type(exc).__name__}: {exc}"
            session.errors.append(message)
            await self._error_and_close(session, send, close_client, 502, message, 1011)
        return None

    async def _error_and_close(
        self,
        session: _Session,
        send: Send,
        close_client: Callable[[int, str], Awaitable[None]],
        status: int,
        message: str,
        code: int,
    ) -> None:
        event = {"type": "error", "error": {"type": "upstream_error", "code": f"upstream_{status}", "message": message}}
        text = _encode(event).decode()
        session.record_frame("heliport", text, None)
        await _quiet_send(send, {"type": "websocket.send", "text": text})
        await close_client(code, f"upstream refused: HTTP {status}" if status != 502 else "upstream unreachable")

    async def _relay(
        self,
        session: _Session,
        upstream: ClientConnection,
        inbox: asyncio.Queue[tuple[str | None, bytes | None] | _ClientClosed],
        send: Send,
        activity: list[float],
        client_open: list[bool],
        close_client: Callable[[int, str], Awaitable[None]],
    ) -> None:
        async def to_upstream() -> None:
            while True:
                item = await inbox.get()
                if isinstance(item, _ClientClosed):
                    await upstream.close(_sendable(item.code), item.reason)
                    return
                text, data = item
                try:
                    await upstream.send(text if text is not None else (data or b""))
                except ConnectionClosed:
                    return  # the upstream is gone; to_client reports how it closed

        from websockets.exceptions import ConnectionClosed

        async def to_client() -> None:
            try:
                async for frame in upstream:
                    activity[0] = time.monotonic()
                    if session.first_upstream_at is None:
                        session.first_upstream_at = time.perf_counter()
                    if isinstance(frame, str):
                        session.record_frame("target", frame, None)
                        await send({"type": "websocket.send", "text": frame})
                    else:
                        session.record_frame("target", None, frame)
                        await send({"type": "websocket.send", "bytes": frame})
            except ConnectionClosed:
                pass
            received = upstream.protocol.close_rcvd
            if received is not None:
                await close_client(received.code, received.reason)
            else:
                await close_client(1011, "upstream connection lost")

        async def idle_watch() -> None:
            timeout = self._settings.realtime_idle_timeout
            while True:
                left = activity[0] + timeout - time.monotonic()
                if left <= 0:
                    session.errors.append(f"closed after {timeout:g} s without a frame in either direction")
                    await close_client(1001, "idle timeout")
                    await upstream.close(1001, "idle timeout")
                    return
                await asyncio.sleep(left)

        tasks = [
            asyncio.create_task(to_upstream(), name="realtime-to-upstream"),
            asyncio.create_task(to_client(), name="realtime-to-client"),
            asyncio.create_task(idle_watch(), name="realtime-idle"),
        ]
        try:
            # The session is over when the upstream socket is: every ending (client close, upstream
            # close, idle timeout) closes it, and to_client then ends. A task that fails (a send to a
            # vanished peer) ends it too.
            pending: set[asyncio.Task[None]] = set(tasks)
            while not tasks[1].done():
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                failed = [t for t in done if t.exception() is not None]
                if failed and not tasks[1].done():
                    session.errors.extend(f"relay failed: {t.exception()!r}" for t in failed)
                    await upstream.close(1011 if client_open[0] else 1000)
                    await asyncio.wait([tasks[1]], timeout=self._settings.timeouts.connect)
                    break
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await close_client(1000, "")

    async def _log_periodically(self, session: _Session) -> None:
        interval = self._settings.realtime_log_interval
        while True:
            await asyncio.sleep(interval)
            if session.changes != session.logged_changes:
                await self._log(session)

    async def _log(self, session: _Session) -> None:
        try:
            await self._queue.send(session.record())
        except Exception:
            logger.exception("could not queue part %d of realtime session %s", session.part, session.options.request_id)


def _chosen_subprotocol(offered: list[str]) -> str | None:
    """The subprotocol to accept: ``realtime`` as OpenAI does, else the first that carries no key.

    A browser fails the connection when it offered subprotocols and none is chosen, so a client that
    offered only key-carrying ones gets the first of them back (it is its own key).
    """
    if not offered:
        return None
    if "realtime" in offered:
        return "realtime"
    plain = [p for p in offered if not p.startswith((SUBPROTOCOL_PREFIX, _KEY_SUBPROTOCOL))]
    return plain[0] if plain else offered[0]


def _upstream_message(body: str) -> str | None:
    try:
        parsed = _decode.decode(body)
    except (msgspec.DecodeError, RecursionError):  # RecursionError: nested deeper than msgspec goes
        return body.strip()[:500] or None
    if isinstance(parsed, dict):
        error = parsed.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return body.strip()[:500] or None


def _key_from_path(headers: list[tuple[bytes, bytes]], path: str) -> str:
    """``/sk-heliport-.../v1/gateway/oai/realtime``: the key moves to Helicone-Auth, as on HTTP routes."""
    if "/" + KEY_PREFIX not in path:
        return path
    segments = path.split("/")
    key = next(s for s in segments if s.startswith(KEY_PREFIX))
    if not any(name.lower() == b"helicone-auth" for name, _ in headers):
        headers.append((b"helicone-auth", b"Bearer " + key.encode()))
    return "/".join(s for s in segments if s != key)


async def _quiet_send(send: Send, message: Message) -> None:
    with contextlib.suppress(Exception):
        await send(message)


async def _refuse(send: Send, error: HeliportError, deny: bool) -> None:
    """Refuse before the upgrade: an HTTP answer where the server allows one, else close 1008."""
    if deny:
        body = error.body()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": error.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"helicone-error", error.code.encode()),
                ],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": error.message[:120]})
