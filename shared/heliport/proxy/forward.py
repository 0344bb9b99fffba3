"""Forwarding one request: parse -> authenticate -> route -> [cache read -> rate limit] -> forward -> tee -> log.

The bracketed steps, and retries and fallbacks around the forward, run only when a header asks for
them; a failure of their store falls back to plain proxying and is recorded on the log.

The response is relayed chunk by chunk as it arrives (an SSE stream is never buffered); a capped
copy and the time to first byte are kept for the log. A client that disconnects cancels the
upstream request. After a complete response the cache write and a cents charge run, then the
:class:`LogRecord` is handed to the queue: after the last byte, or, on Lambda
(``log_before_last_byte``), just before the terminating chunk, because the sandbox may freeze the
moment the response ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import msgspec

from heliport.auth import Authenticator
from heliport.cache import Lookup, ResponseCache, cache_key, cache_ttl, new_entry
from heliport.config import Settings
from heliport.errors import (
    HeliportError,
    InvalidBodyError,
    RateLimitedError,
    UpstreamError,
    UpstreamTimeoutError,
    send_error,
)
from heliport.headers import Fallback, RequestOptions, parse_headers
from heliport.logs.backlog import LogBacklog
from heliport.logs.record import SECRET_HEADERS, LogRecord, Status, caller_fields
from heliport.logs.usage import Usage, extract_usage
from heliport.proxy.retry import RetryPolicy, send_with_retries
from heliport.proxy.targets import Target, TargetResolver
from heliport.proxy.transport import UpstreamRequest, UpstreamResponse, UpstreamTransport
from heliport.ratelimit import Decision, RateLimiter, SegmentMissing
from heliport.store.ports import ApiKey, LogQueue

__all__ = [
    "CachePlan",
    "Exchange",
    "ExchangeHandler",
    "GatewayFacts",
    "ProxyHandler",
    "Tee",
    "peek_body",
    "read_body",
    "read_capped",
    "watch_disconnect",
]

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


def peek_body(body: bytes) -> _BodyPeek:
    if not body or body[:1] not in (b"{", b" ", b"\n", b"\r", b"\t"):
        return _BodyPeek()
    try:
        return _peek_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        # Not JSON, not an object, or deeper than msgspec goes (even skipping): the body is still
        # forwarded as it is; it is the provider's to judge, and only the peeked fields go unknown.
        return _BodyPeek()


def _with_stream_usage(body: bytes) -> bytes:
    """Ask an OpenAI-style provider for the final usage chunk (``Helicone-Stream-Usage: true``).

    A body heliport cannot rewrite faithfully (a number beyond a float, nesting past the decoder) is
    forwarded as it is: the provider judges it, and the stream's usage comes only if it sends some.
    """
    try:
        parsed = msgspec.json.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return body
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


class Tee:
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


class CachePlan(msgspec.Struct, frozen=True):
    """The cache's part in one request: its bucket, and which directions the caller asked for."""

    key: str
    size: int
    ttl: int
    read: bool
    save: bool

    @classmethod
    def of(
        cls, options: RequestOptions, *, key_hash: str, target_url: str, body: bytes, forward: list[tuple[str, str]]
    ) -> CachePlan | None:
        """The plan when a ``Helicone-Cache-*`` header asks for the cache; None otherwise (it costs nothing)."""
        if not (options.cache_enabled or options.cache_read or options.cache_save):
            return None
        return cls(
            key=cache_key(options, key_hash=key_hash, target_url=target_url, body=body, forward_headers=forward),
            size=options.cache_bucket_max_size,
            ttl=cache_ttl(forward),
            read=options.cache_enabled or options.cache_read,
            save=options.cache_enabled or options.cache_save,
        )


class GatewayFacts:
    """The AI gateway's part of an exchange: which registry model and provider, and the native bodies.

    The exchange's own body and tee hold what the client sent and got (OpenAI shape); ``native``
    holds the provider's answer as it came, from which usage is read.
    """

    __slots__ = ("attempts", "model", "native", "native_request", "provider", "provider_model")

    def __init__(self, model: str, limit: int) -> None:
        self.model = model
        self.provider: str | None = None
        #: The serving provider's own id of the model: what the row is priced by.
        self.provider_model: str | None = None
        self.attempts = 0
        self.native_request = b""
        self.native = Tee(limit)

    def fields(self, options: RequestOptions) -> dict[str, Any]:
        return {
            "gateway_model": self.model,
            "gateway_provider": self.provider,
            "gateway_attempts": self.attempts,
            "native_request_body": None if options.omit_request else self.native_request.decode("utf-8", "replace"),
            "native_response_body": None if options.omit_response else self.native.text(),
        }


class Exchange:
    """Everything known about one request as it moves along; becomes the LogRecord."""

    __slots__ = (
        "body",
        "cache",
        "cache_free",
        "cache_hit",
        "cache_reference_id",
        "cached_latency_ms",
        "complete",
        "errors",
        "fallback_index",
        "gateway",
        "key",
        "logged",
        "method",
        "options",
        "path",
        "peek",
        "rate_limit",
        "rate_limited",
        "response_headers",
        "retry_count",
        "started",
        "started_at",
        "status",
        "target",
        "tee",
    )

    def __init__(self, scope: Scope, options: RequestOptions, key: ApiKey, tee: Tee) -> None:
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
        #: True once the whole response reached the client: only then is it cached or charged.
        self.complete = False
        self.cache: CachePlan | None = None
        self.cache_free: tuple[int, ...] | None = None
        self.cache_hit = False
        self.cache_reference_id: str | None = None
        self.cached_latency_ms: float | None = None
        self.rate_limit: Decision | None = None
        self.rate_limited = False
        self.retry_count = 0
        self.fallback_index: int | None = None
        self.gateway: GatewayFacts | None = None

    def usage(self) -> Usage:
        """Usage read here, from the provider's own body (for omitted responses, cents limits, the gateway)."""
        return extract_usage(
            provider=self.target.provider if self.target else "",
            path=urlsplit(self.target.url).path if self.target else self.path,
            response_body=(self.gateway.native if self.gateway else self.tee).text(),
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
            request_model=self.gateway.provider_model if self.gateway else self.peek.model,
            **caller_fields(options, body_user=self.peek.user),
            cache_hit=self.cache_hit,
            cache_reference_id=self.cache_reference_id,
            cached_latency_ms=self.cached_latency_ms,
            rate_limited=self.rate_limited,
            retry_count=self.retry_count,
            fallback_index=self.fallback_index,
            errors=self.errors,
            request_body=None if options.omit_request else self.body.decode("utf-8", "replace"),
            response_body=None if options.omit_response else tee.text(),
            usage=self.usage() if options.omit_response or self.gateway else None,
            **(self.gateway.fields(options) if self.gateway else {}),
            response_body_truncated=tee.truncated,
            response_headers=self.response_headers,
        )


class _Attempt(msgspec.Struct, frozen=True):
    """One place to send the request: the route's target, or one ``Helicone-Fallbacks`` entry."""

    target: Target
    fallback: Fallback | None = None


class ExchangeHandler:
    """What every logged route shares: cache replay, rate limits, the end of a response, the log.

    :class:`ProxyHandler` and the AI gateway's handler (:mod:`heliport.gateway.handler`) differ in
    how they find and call the upstream, not in what happens around it.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        authenticator: Authenticator,
        transport: Callable[[], UpstreamTransport],
        queue: LogQueue,
        cache: ResponseCache,
        limiter: RateLimiter,
        backlog: LogBacklog,
    ) -> None:
        self._settings = settings
        self._auth = authenticator
        self._transport = transport
        self._queue = queue
        self._cache = cache
        self._limiter = limiter
        self._backlog = backlog

    async def _before_upstream(
        self, exchange: Exchange, send: Send, ids: list[tuple[bytes, bytes]]
    ) -> list[tuple[bytes, bytes]] | None:
        """Cache read and rate-limit check, each only when asked for: the headers they add to the
        answer, or None when the request was answered here (a cache hit, or a 429)."""
        extra: list[tuple[bytes, bytes]] = []
        if exchange.cache is not None and exchange.cache.read:
            lookup = await self._cache_lookup(exchange, exchange.cache)
            if lookup.entry is not None:
                exchange.gateway = None  # the answer comes from the cache: no provider was called
                await self._replay(exchange, lookup, send, ids)
                return None
            extra.append((b"helicone-cache", b"MISS"))
        if exchange.options.rate_limit_policy is not None:
            decision = await self._rate_limit(exchange)
            if decision is not None:
                extra.extend(decision.headers())
                if not decision.allowed:
                    await self._refuse(exchange, decision, send, ids + extra)
                    return None
        return extra

    async def _cache_lookup(self, exchange: Exchange, plan: CachePlan) -> Lookup:
        try:
            lookup = await self._cache.lookup(plan.key, plan.size)
        except Exception as exc:  # fail open: a broken cache is a miss, and the log says why
            exchange.errors.append(f"cache read failed, proxied without it: {describe(exc)}")
            return Lookup()
        exchange.cache_free = lookup.free
        return lookup

    async def _replay(self, exchange: Exchange, lookup: Lookup, send: Send, ids: list[tuple[bytes, bytes]]) -> None:
        entry = lookup.entry
        assert entry is not None and lookup.index is not None
        exchange.cache_hit = True
        exchange.cache_reference_id = entry.request_id
        exchange.cached_latency_ms = entry.latency_ms
        exchange.status = entry.status
        headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in entry.headers]
        exchange.response_headers = {name: value for name, value in entry.headers if name not in SECRET_HEADERS}
        headers += [
            *ids,
            (b"helicone-cache", b"HIT"),
            (b"helicone-cache-bucket-idx", str(lookup.index).encode()),
            (b"helicone-cache-latency", str(round(entry.latency_ms)).encode()),
            *SUCCESS_HEADERS,
        ]
        await send({"type": "http.response.start", "status": entry.status, "headers": headers})
        for chunk in entry.chunks:
            exchange.tee.add(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await self._finish(exchange, send)

    async def _rate_limit(self, exchange: Exchange) -> Decision | None:
        options = exchange.options
        assert options.rate_limit_policy is not None
        try:
            decision = await self._limiter.check(
                exchange.key.org_id,
                options.rate_limit_policy,
                user_id=options.user_id or exchange.peek.user,
                properties=options.properties,
            )
        except SegmentMissing as exc:
            exchange.errors.append(f"rate limit not applied: {exc}")
            return None
        except Exception as exc:  # fail open: the limiter's store is down, the request still goes
            exchange.errors.append(f"rate limit store failed, proxied without it: {describe(exc)}")
            return None
        exchange.rate_limit = decision
        return decision

    async def _refuse(
        self, exchange: Exchange, decision: Decision, send: Send, headers: list[tuple[bytes, bytes]]
    ) -> None:
        exchange.status = RateLimitedError.status
        exchange.rate_limited = True
        error = RateLimitedError(
            f"Rate limited by the Helicone-RateLimit-Policy header ({decision.policy.canonical()}); "
            f"retry in {decision.reset} s."
        )
        retry_after = (b"retry-after", str(max(1, decision.reset)).encode())
        await send_error(send, error, [*headers, (b"x-helicone-error", b"rate_limited"), retry_after])
        await self._log(exchange)

    async def _log_attempt(self, exchange: Exchange, attempt: _Attempt, status: int, text: str, index: int) -> None:
        """A fallback that answered with one of its ``onCodes``: logged on its own, linked by request id."""
        exchange.errors.append(f"fallback {index} ({attempt.target.url}) answered {status}; moved on")
        record = msgspec.structs.replace(
            exchange.record(),
            request_id=str(uuid.uuid4()),
            status=status,
            ttfb_ms=None,
            response_body=None if exchange.options.omit_response else text,
            usage=None,
            response_body_truncated=False,
            response_headers={},
            errors=[f"fallback {index} of request {exchange.options.request_id}, superseded by the next"],
        )
        try:
            await self._queue.send(record)
        except Exception:
            logger.exception("could not queue the log record of a fallback attempt of %s", exchange.options.request_id)

    async def _finish(self, exchange: Exchange, send: Send) -> None:
        """End a complete response, and do the after-response work before or after its last byte."""
        exchange.complete = True
        if self._settings.log_before_last_byte:
            await self._log(exchange)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        else:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            await self._log(exchange)

    async def _log(self, exchange: Exchange) -> None:
        # Shielded: a disconnect arriving now must not cut the hand-off short (see the cancel branch).
        exchange.logged = asyncio.ensure_future(self._send_record(exchange))
        self._backlog.track(exchange.logged)
        await asyncio.shield(exchange.logged)

    async def _send_record(self, exchange: Exchange) -> None:
        if exchange.complete and not exchange.cache_hit:
            await self._after_response(exchange)
        try:
            await self._queue.send(exchange.record())
        except Exception:
            logger.exception("could not queue the log record of request %s", exchange.options.request_id)

    async def _after_response(self, exchange: Exchange) -> None:
        """Cache write and cents charge, once the response is complete; failures go on the log."""
        plan = exchange.cache
        if plan is not None and plan.save:
            why_not = _uncacheable(exchange)
            if why_not is not None:
                exchange.errors.append(f"not cached: {why_not}")
            else:
                entry = new_entry(
                    request_id=exchange.options.request_id,
                    status=exchange.status,
                    headers=[(k, v) for k, v in exchange.response_headers.items()],
                    latency_ms=(time.perf_counter() - exchange.started) * 1000,
                    chunks=exchange.tee.chunks,
                )
                try:
                    await self._cache.save(plan.key, plan.size, entry, plan.ttl, exchange.cache_free)
                except Exception as exc:
                    exchange.errors.append(f"cache write failed: {describe(exc)}")
        decision = exchange.rate_limit
        if decision is not None and decision.policy.unit == "cents" and 200 <= exchange.status < 300:
            try:
                cents = _cost_cents(exchange)
                if cents:
                    await self._limiter.charge(decision, cents)
            except Exception as exc:
                exchange.errors.append(f"rate limit charge failed: {describe(exc)}")


class ProxyHandler(ExchangeHandler):
    """The ASGI handler for ``/v1/gateway/...``; ``gateway_path`` is what follows that prefix."""

    def __init__(self, settings: Settings, *, targets: TargetResolver, **shared: Any) -> None:
        super().__init__(settings, **shared)
        self._targets = targets

    async def __call__(self, scope: Scope, receive: Receive, send: Send, gateway_path: str) -> None:
        await self._backlog.admit()
        try:
            options, forward_headers = parse_headers(scope["headers"])
            key = await self._auth.authenticate(options.auth_token)
        except HeliportError as err:
            await send_error(send, err)
            return
        exchange = Exchange(scope, options, key, Tee(self._settings.max_logged_body_bytes))
        ids = [(b"helicone-id", options.request_id.encode())]
        try:
            attempts = self._attempts(gateway_path, scope["query_string"], options)
            exchange.target = attempts[0].target
            exchange.body = await read_body(receive, self._settings.max_request_bytes)
            exchange.cache = CachePlan.of(
                options,
                key_hash=key.key_hash,
                target_url=exchange.target.url,
                body=exchange.body,
                forward=forward_headers,
            )
        except HeliportError as err:
            await send_error(send, err, ids)
            return
        exchange.peek = peek_body(exchange.body)
        body = exchange.body
        if options.stream_usage and exchange.peek.stream:
            body = _with_stream_usage(body)
        try:
            requests = [self._request(scope["method"], attempt, forward_headers, body) for attempt in attempts]
        except HeliportError as err:  # a fallback's bodyKeyOverride cannot apply to this body
            await send_error(send, err, ids)
            return
        extra = await self._before_upstream(exchange, send, ids)
        if extra is None:
            return
        await self._relay(exchange, attempts, requests, receive, send, ids + extra)

    def _attempts(self, gateway_path: str, query: bytes, options: RequestOptions) -> list[_Attempt]:
        if not options.fallbacks:
            return [_Attempt(self._targets.resolve(gateway_path, query, options))]
        # Helicone's semantics: the fallbacks list every attempt, the first one included.
        return [
            _Attempt(self._targets.resolve_fallback(gateway_path, query, fallback.target_url), fallback)
            for fallback in options.fallbacks
        ]

    @staticmethod
    def _request(
        method: str, attempt: _Attempt, forward_headers: list[tuple[str, str]], body: bytes
    ) -> UpstreamRequest:
        fallback = attempt.fallback
        if fallback is None:
            return UpstreamRequest(method, attempt.target.url, forward_headers, body, attempt.target.guarded)
        # The fallback's headers replace the caller's credentials and any header of the same name;
        # the rest (content type, API versions) still describes this body, so it stays.
        own = {name.lower(): value for name, value in fallback.headers.items()}
        headers = [(n, v) for n, v in forward_headers if n not in own and n not in SECRET_HEADERS]
        headers.extend(own.items())
        if fallback.body_key_override:
            body = _override_body(body, fallback.body_key_override)
        return UpstreamRequest(method, attempt.target.url, headers, body, attempt.target.guarded)

    async def _open(
        self, exchange: Exchange, attempts: list[_Attempt], requests: list[UpstreamRequest]
    ) -> UpstreamResponse:
        """The upstream response to relay: through retries of each attempt and on through fallbacks."""
        policy = RetryPolicy.from_options(exchange.options)

        def note_retry(why: str) -> None:
            exchange.retry_count += 1
            exchange.errors.append(why)

        last = len(attempts) - 1
        for index, (attempt, request) in enumerate(zip(attempts, requests, strict=True)):
            exchange.target = attempt.target
            if attempt.fallback is not None:
                exchange.fallback_index = index
            try:
                response = await send_with_retries(
                    lambda request=request: self._transport().send(request), policy, on_retry=note_retry
                )
            except UpstreamError as err:
                if index == last or attempt.fallback is None:
                    raise
                await self._log_attempt(exchange, attempt, err.status, err.message, index)
                continue
            if index == last or attempt.fallback is None or not attempt.fallback.moves_on(response.status):
                return response
            try:
                text = await read_capped(response, self._settings.max_logged_body_bytes)
            finally:
                response.close()
            await self._log_attempt(exchange, attempt, response.status, text, index)
        raise AssertionError("unreachable: the last attempt always returns or raises")

    async def _relay(
        self,
        exchange: Exchange,
        attempts: list[_Attempt],
        requests: list[UpstreamRequest],
        receive: Receive,
        send: Send,
        ids: list[tuple[bytes, bytes]],
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        disconnected = asyncio.Event()
        watcher = asyncio.create_task(watch_disconnect(receive, task, disconnected))
        finished = False
        try:
            try:
                upstream = await self._open(exchange, attempts, requests)
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
                if exchange.fallback_index is not None:
                    ids = [*ids, (b"helicone-fallback-index", str(exchange.fallback_index).encode())]
                await send(
                    {"type": "http.response.start", "status": status, "headers": headers + ids + SUCCESS_HEADERS}
                )
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
            await self._finish(exchange, send)
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
        self, exchange: Exchange, raw: Sequence[tuple[bytes, bytes]], decoded: bool
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


def _uncacheable(exchange: Exchange) -> str | None:
    if not 200 <= exchange.status < 300:
        return f"status {exchange.status}"
    if exchange.tee.truncated:
        return "response larger than the copy limit (HELIPORT_MAX_LOGGED_BODY_BYTES)"
    if exchange.peek.stream and any(b"event: error" in chunk for chunk in exchange.tee.chunks):
        return "the stream carried an error event"
    return None


def _cost_cents(exchange: Exchange) -> float:
    from heliport.logs.cost import compute_cost  # genai-prices loads only for cents policies
    from heliport.logs.usage import resolve_model

    usage = exchange.usage()
    target = exchange.target
    model = resolve_model(
        model_override=exchange.options.model_override,
        response_model=usage.response_model,
        request_model=exchange.gateway.provider_model if exchange.gateway else exchange.peek.model,
        path=urlsplit(target.url).path if target else exchange.path,
    )
    cost = compute_cost(model=model, provider=target.provider if target else "", usage=usage, at=exchange.started_at)
    if cost.amount is None:
        exchange.errors.append(f"rate limit charge skipped: {cost.source}")
        return 0.0
    return float(cost.amount * 100)


def _override_body(body: bytes, override: dict[str, object]) -> bytes:
    """Deep-merge a fallback's ``bodyKeyOverride`` into a JSON body (a non-JSON body is sent as is)."""
    try:
        parsed = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return body
    except RecursionError:  # JSON, but deeper than the decoder goes: the override cannot be applied
        problem = "Request body is nested too deeply to apply a Helicone-Fallbacks bodyKeyOverride"
        raise InvalidBodyError(problem, param="Helicone-Fallbacks") from None
    if not isinstance(parsed, dict):
        return body
    return msgspec.json.encode(_merge(parsed, override))


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        merged[key] = _merge(current, value) if isinstance(current, dict) and isinstance(value, dict) else value
    return merged


async def read_capped(response: UpstreamResponse, limit: int) -> str:
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.chunks():
            chunks.append(chunk[: max(0, limit - size)])
            size += len(chunk)
            if size >= limit:
                break
    except UpstreamError:
        pass  # the body of an answer we are discarding: what arrived is enough for its log
    return b"".join(chunks).decode("utf-8", "replace")


def describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"[:300]


SUCCESS_HEADERS = [(b"helicone-status", b"success")]


async def watch_disconnect(receive: Receive, task: asyncio.Task[Any], disconnected: asyncio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            disconnected.set()
            task.cancel()
            return
