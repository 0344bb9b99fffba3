"""Forwarding one request: parse -> authenticate -> route -> forward -> tee -> log.

The response is relayed chunk by chunk as it arrives (an SSE stream is never buffered); a capped
copy and the time to first byte are kept for the log. A client that disconnects cancels the
upstream request. The :class:`LogRecord` is handed to the queue after the last byte, or, on Lambda
(``log_before_last_byte``), just before the terminating chunk, because the sandbox may freeze the
moment the response ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import msgspec

from heliport.auth import Authenticator
from heliport.config import Settings
from heliport.errors import HeliportError, InvalidBodyError, UpstreamError, UpstreamTimeoutError, send_error
from heliport.headers import RequestOptions, parse_headers
from heliport.logs.record import SECRET_HEADERS, LogRecord, Status, caller_fields
from heliport.logs.usage import Usage, extract_usage
from heliport.proxy.targets import Target, TargetResolver
from heliport.proxy.transport import UpstreamRequest, UpstreamTransport
from heliport.store.ports import ApiKey, LogQueue

__all__ = ["ProxyHandler"]

logger = logging.getLogger("heliport.proxy")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Response headers that describe the upstream hop, not the response we send.
_DROP_RESPONSE_HEADERS = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"date", b"server"})
_DECODED_HEADERS = frozenset({b"content-encoding", b"content-length"})


class _BodyPeek(msgspec.Struct):
    """The few request-body fields the proxy needs; msgspec skips the rest without building it."""

    model: str | None = None
    user: str | None = None
    stream: bool | None = None


_peek_decoder = msgspec.json.Decoder(_BodyPeek)


def _peek(body: bytes) -> _BodyPeek:
    if not body or body[:1] not in (b"{", b" ", b"\n", b"\r", b"\t"):
        return _BodyPeek()
    try:
        return _peek_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return _BodyPeek()


def _with_stream_usage(body: bytes) -> bytes:
    """Ask an OpenAI-style provider for the final usage chunk (``Helicone-Stream-Usage: true``)."""
    parsed = msgspec.json.decode(body)
    if not isinstance(parsed, dict):
        return body
    options = parsed.get("stream_options")
    parsed["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    return msgspec.json.encode(parsed)


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise asyncio.CancelledError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise InvalidBodyError(f"Request body is larger than {limit} bytes", status=413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class _Tee:
    """What the relay saw: a capped copy of the body, and when its first byte came."""

    __slots__ = ("chunks", "first_byte_at", "limit", "size", "truncated")

    def __init__(self, limit: int) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.limit = limit
        self.truncated = False
        self.first_byte_at: float | None = None

    def add(self, chunk: bytes) -> None:
        if self.first_byte_at is None:
            self.first_byte_at = time.perf_counter()
        if self.truncated:
            return
        if self.size + len(chunk) > self.limit:
            self.truncated = True
            return
        self.chunks.append(chunk)
        self.size += len(chunk)

    def text(self) -> str:
        return b"".join(self.chunks).decode("utf-8", "replace")


class _Exchange:
    """Everything known about one request as it moves along; becomes the LogRecord."""

    __slots__ = (
        "body",
        "errors",
        "key",
        "logged",
        "method",
        "options",
        "path",
        "peek",
        "response_headers",
        "started",
        "started_at",
        "status",
        "target",
        "tee",
    )

    def __init__(self, scope: Scope, options: RequestOptions, key: ApiKey, tee: _Tee) -> None:
        self.started_at = datetime.now(UTC)
        self.started = time.perf_counter()
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.options = options
        self.key = key
        self.tee = tee
        self.body = b""
        self.peek = _BodyPeek()
        self.target: Target | None = None
        self.status = 0
        self.errors: list[str] = []
        self.response_headers: dict[str, str] = {}
        self.logged: asyncio.Future[None] | None = None

    def _omitted_usage(self) -> Usage:
        """Usage read here, from the body the log will not carry (only for omitted responses)."""
        return extract_usage(
            provider=self.target.provider if self.target else "",
            path=urlsplit(self.target.url).path if self.target else self.path,
            response_body=self.tee.text(),
            is_stream=bool(self.peek.stream),
        )

    def record(self) -> LogRecord:
        options, tee = self.options, self.tee
        ttfb = None if tee.first_byte_at is None else (tee.first_byte_at - self.started) * 1000
        return LogRecord(
            request_id=options.request_id,
            org_id=self.key.org_id,
            key_id=self.key.id,
            started_at=self.started_at,
            ttfb_ms=ttfb,
            duration_ms=(time.perf_counter() - self.started) * 1000,
            method=self.method,
            path=self.path,
            provider=self.target.provider if self.target else "",
            target_url=self.target.url if self.target else "",
            status=self.status,
            is_stream=bool(self.peek.stream),
            request_model=self.peek.model,
            **caller_fields(options, body_user=self.peek.user),
            errors=self.errors,
            request_body=None if options.omit_request else self.body.decode("utf-8", "replace"),
            response_body=None if options.omit_response else tee.text(),
            usage=self._omitted_usage() if options.omit_response else None,
            response_body_truncated=tee.truncated,
            response_headers=self.response_headers,
        )


class ProxyHandler:
    """The ASGI handler for ``/v1/gateway/...``; ``gateway_path`` is what follows that prefix."""

    def __init__(
        self,
        settings: Settings,
        *,
        authenticator: Authenticator,
        targets: TargetResolver,
        transport: Callable[[], UpstreamTransport],
        queue: LogQueue,
    ) -> None:
        self._settings = settings
        self._auth = authenticator
        self._targets = targets
        self._transport = transport
        self._queue = queue

    async def __call__(self, scope: Scope, receive: Receive, send: Send, gateway_path: str) -> None:
        try:
            options, forward_headers = parse_headers(scope["headers"])
            key = await self._auth.authenticate(options.auth_token)
        except HeliportError as err:
            await send_error(send, err)
            return
        exchange = _Exchange(scope, options, key, _Tee(self._settings.max_logged_body_bytes))
        ids = [(b"helicone-id", options.request_id.encode())]
        try:
            exchange.target = self._targets.resolve(gateway_path, scope["query_string"], options)
            exchange.body = await read_body(receive, self._settings.max_request_bytes)
        except HeliportError as err:
            await send_error(send, err, ids)
            return
        exchange.peek = _peek(exchange.body)
        body = exchange.body
        if options.stream_usage and exchange.peek.stream:
            body = _with_stream_usage(body)
        request = UpstreamRequest(scope["method"], exchange.target.url, forward_headers, body, exchange.target.guarded)
        await self._relay(exchange, request, receive, send, ids)

    async def _relay(
        self,
        exchange: _Exchange,
        request: UpstreamRequest,
        receive: Receive,
        send: Send,
        ids: list[tuple[bytes, bytes]],
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        disconnected = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, task, disconnected))
        finished = False
        try:
            try:
                upstream = await self._transport().send(request)
            except HeliportError as err:
                exchange.status = err.status
                exchange.errors.append(err.message)
                watcher.cancel()
                finished = True
                await send_error(send, err, ids)
                await self._log(exchange)
                return
            try:
                headers = self._response_headers(exchange, upstream.headers, upstream.decoded)
                status = upstream.status if 200 <= upstream.status < 600 else 500
                exchange.status = status
                await send({"type": "http.response.start", "status": status, "headers": headers + ids + _SUCCESS})
                async for chunk in upstream.chunks():
                    exchange.tee.add(chunk)
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except UpstreamError as err:
                # Headers are out, so the status cannot change: log why, and end the response
                # without its terminating chunk so the client sees a failed read, not a short answer.
                exchange.status = Status.TIMEOUT if isinstance(err, UpstreamTimeoutError) else Status.STREAM_FAILED
                exchange.errors.append(err.message)
                watcher.cancel()
                await self._log(exchange)
                finished = True
                raise
            finally:
                upstream.close()
            watcher.cancel()
            finished = True
            if self._settings.log_before_last_byte:
                await self._log(exchange)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            else:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                await self._log(exchange)
        except asyncio.CancelledError:
            if not disconnected.is_set():
                raise
            task.uncancel()
            finished = True
            if exchange.logged is not None:  # the disconnect raced the end of a complete response
                await exchange.logged
                return
            # The client went away: the upstream request was closed above; record the cancel.
            exchange.status = Status.CLIENT_CANCELLED
            await self._log(exchange)
        finally:
            if not finished:
                watcher.cancel()
                await self._log(exchange)

    def _response_headers(
        self, exchange: _Exchange, raw: Sequence[tuple[bytes, bytes]], decoded: bool
    ) -> list[tuple[bytes, bytes]]:
        drop_length = decoded or self._settings.log_before_last_byte
        out: list[tuple[bytes, bytes]] = []
        for name, value in raw:
            lowered = name.lower()
            if lowered in _DROP_RESPONSE_HEADERS or (decoded and lowered in _DECODED_HEADERS):
                continue
            if drop_length and lowered == b"content-length":
                continue
            out.append((lowered, value))
            text = lowered.decode("latin-1")
            if text not in SECRET_HEADERS:
                exchange.response_headers[text] = value.decode("latin-1")
        return out

    async def _log(self, exchange: _Exchange) -> None:
        # Shielded: a disconnect arriving now must not cut the hand-off short (see the cancel branch).
        exchange.logged = asyncio.ensure_future(self._send_record(exchange))
        await asyncio.shield(exchange.logged)

    async def _send_record(self, exchange: _Exchange) -> None:
        try:
            await self._queue.send(exchange.record())
        except Exception:
            logger.exception("could not queue the log record of request %s", exchange.options.request_id)


_SUCCESS = [(b"helicone-status", b"success")]


async def _watch_disconnect(receive: Receive, task: asyncio.Task[Any], disconnected: asyncio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            disconnected.set()
            task.cancel()
            return
