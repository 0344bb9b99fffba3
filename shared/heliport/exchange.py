"""The exchange core: what every logged HTTP route does around its upstream call.

An :class:`Exchange` is everything known about one request as it moves along; it becomes the
:class:`LogRecord`. :class:`ExchangeHandler` holds what the pass-through proxy
(:mod:`heliport.proxy.forward`) and the AI gateway (:mod:`heliport.gateway.handler`) share: the
pre-forward steps, cache replay, rate limits, the end of a response, the cache write and cents
charge, and the log hand-off. The two handlers differ in how they find and call the upstream, not
in what happens around it. Their dependencies come as one :class:`ExchangeDeps`.

The pre-forward stage: after authentication and the body, before the cache and the upstream, each
configured :class:`RequestStep` that the request asks for (:meth:`RequestStep.wanted`, a look at its
parsed headers) sees the exchange and may answer the request itself, rewrite the body the request
goes on with, or add facts to its log record (:class:`StepResult`). The app configures the checks of
:mod:`heliport.steps`; a request that asks for none pays one test per configured step.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TypedDict
from urllib.parse import urlsplit

import msgspec

from heliport.asgi import Scope, Send, send_error, send_json
from heliport.auth import Authenticator
from heliport.cache import Lookup, ResponseCache, cache_key, cache_ttl, new_entry
from heliport.config import Settings
from heliport.errors import HeliportError, RateLimitedError, UpstreamError
from heliport.headers import RequestOptions
from heliport.logs.backlog import LogBacklog
from heliport.logs.record import SECRET_HEADERS, LogRecord, Status
from heliport.logs.usage import Usage, extract_usage
from heliport.proxy.targets import Target
from heliport.proxy.transport import UpstreamRequest, UpstreamResponse, UpstreamTransport
from heliport.ratelimit import Decision, RateLimiter, SegmentMissing
from heliport.store.keys import ApiKey
from heliport.store.queue import LogQueue
from heliport.stream_format import is_event_stream, reframe_chunks

__all__ = [
    "SUCCESS_HEADERS",
    "Answer",
    "CachePlan",
    "Exchange",
    "ExchangeDeps",
    "ExchangeHandler",
    "GatewayFacts",
    "RequestStep",
    "StepResult",
    "Tee",
    "describe",
    "peek_body",
    "read_capped",
]

# The proxy's logger, as before the core moved here: operators' log filters keep matching.
logger = logging.getLogger("heliport.proxy")

SUCCESS_HEADERS = [(b"helicone-status", b"success")]


# -- the pre-forward stage ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """A response a step gives in the upstream's place: ``body`` as bytes, or a value sent as JSON.

    It goes out as JSON (``content-type``, ``content-length``), with the request's ``Helicone-Id``
    and then ``headers``.
    """

    status: int
    body: object
    headers: tuple[tuple[bytes, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one step decided; the default goes on unchanged.

    ``facts`` are merged into the exchange's facts (and so the record) and ``body`` replaces the
    request body (what the cache key, the upstream and the log see from then on), both before
    ``answer``, which ends the request: the upstream is never called, and the answer is logged.
    """

    answer: Answer | HeliportError | None = None
    body: bytes | None = None
    facts: Mapping[str, object] | None = None


#: The result of a step that has nothing to say.
PROCEED = StepResult()


class RequestStep(Protocol):
    """One step of the pre-forward stage (moderation, LLM security, token limits, ...)."""

    def wanted(self, exchange: Exchange, /) -> bool:
        """Whether this request asks for the step: a look at its parsed headers (or, for a step the
        body asks for, its route and a byte search); cheap, since it runs on every request."""
        ...

    async def __call__(self, exchange: Exchange, /) -> StepResult: ...


@dataclass(frozen=True, slots=True)
class ExchangeDeps:
    """What the logged routes' handlers need, built once per app and shared by both handlers."""

    settings: Settings
    authenticator: Authenticator
    #: The pooled upstream client, made on first use (the app's lifespan makes it at start).
    transport: Callable[[], UpstreamTransport]
    queue: LogQueue
    cache: ResponseCache
    limiter: RateLimiter
    #: One bound for both handlers: they hand records to the same queue.
    backlog: LogBacklog
    #: The pre-forward stage, in order; empty by default.
    steps: tuple[RequestStep, ...] = ()


# -- one exchange ------------------------------------------------------------------------------------


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

    def fields(self, options: RequestOptions) -> GatewayFields:
        return {
            "gateway_model": self.model,
            "gateway_provider": self.provider,
            "gateway_attempts": self.attempts,
            "native_request_body": None if options.omit_request else self.native_request.decode("utf-8", "replace"),
            "native_response_body": None if options.omit_response else self.native.text(),
        }


class GatewayFields(TypedDict, total=False):
    """The ``LogRecord`` fields only the AI gateway fills (:meth:`GatewayFacts.fields`)."""

    gateway_model: str
    gateway_provider: str | None
    gateway_attempts: int
    native_request_body: str | None
    native_response_body: str | None


_NO_GATEWAY: GatewayFields = {}


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
        "facts",
        "fallback_index",
        "forward",
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
        "scope",
        "started",
        "started_at",
        "status",
        "target",
        "tee",
        "via_gateway",
    )

    def __init__(self, scope: Scope, options: RequestOptions, key: ApiKey, tee: Tee) -> None:
        self.started_at = datetime.now(UTC)
        self.started = time.perf_counter()
        #: The request's ASGI scope (its headers say which host the caller reached, for links back).
        self.scope = scope
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
        #: What pre-forward steps found, carried on the log record.
        self.facts: dict[str, object] = {}
        #: The caller's headers as they go upstream (``Authorization`` included on the pass-through
        #: route, where it is the caller's provider key); set by the handler.
        self.forward: list[tuple[str, str]] = []
        #: True on the AI gateway's routes, where provider credentials are the deployment's own.
        self.via_gateway = False
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
            **options.log_fields(body_user=self.peek.user),
            cache_hit=self.cache_hit,
            cache_reference_id=self.cache_reference_id,
            cached_latency_ms=self.cached_latency_ms,
            rate_limited=self.rate_limited,
            retry_count=self.retry_count,
            fallback_index=self.fallback_index,
            errors=self.errors,
            facts=self.facts,
            request_body=None if options.omit_request else self.body.decode("utf-8", "replace"),
            response_body=None if options.omit_response else tee.text(),
            usage=self.usage() if options.omit_response or self.gateway else None,
            **(self.gateway.fields(options) if self.gateway else _NO_GATEWAY),
            response_body_truncated=tee.truncated,
            response_headers=self.response_headers,
        )


class ExchangeHandler:
    """What every logged route shares: cache replay, rate limits, the end of a response, the log.

    :class:`ProxyHandler` and the AI gateway's handler (:mod:`heliport.gateway.handler`) differ in
    how they find and call the upstream, not in what happens around it.
    """

    def __init__(self, deps: ExchangeDeps) -> None:
        # Unpacked once: the hot path reads these on every request.
        self._deps = deps
        self._settings = deps.settings
        self._auth = deps.authenticator
        self._transport = deps.transport
        self._queue = deps.queue
        self._cache = deps.cache
        self._limiter = deps.limiter
        self._backlog = deps.backlog
        self._steps = deps.steps

    def _send(self, request: UpstreamRequest) -> Awaitable[UpstreamResponse]:
        """One upstream call through the transport of the moment (the app opens it in its lifespan)."""
        return self._transport().send(request)

    def _wants_steps(self, exchange: Exchange) -> bool:
        """Whether any configured step is asked for: the whole cost of the stage for a request without one."""
        for step in self._steps:  # noqa: SIM110  # no generator for any(): this runs on every request
            if step.wanted(exchange):
                return True
        return False

    async def _pre_forward(self, exchange: Exchange, send: Send, ids: list[tuple[bytes, bytes]]) -> bool:
        """Run the steps the request asks for, in order: False when one answered it (answered and logged).

        A step that raises a :class:`HeliportError` answers with it, as if it had returned it.
        """
        for step in self._steps:
            if not step.wanted(exchange):
                continue
            try:
                result = await step(exchange)
            except HeliportError as err:
                result = StepResult(answer=err)
            if result.facts:
                exchange.facts.update(result.facts)
            if result.body is not None:
                exchange.body = result.body
            if result.answer is not None:
                await self._answer_early(exchange, result.answer, send, ids)
                return False
        return True

    async def _answer_early(
        self, exchange: Exchange, answer: Answer | HeliportError, send: Send, ids: list[tuple[bytes, bytes]]
    ) -> None:
        """A step's answer in the upstream's place: sent, then logged (never cached or charged)."""
        if isinstance(answer, HeliportError):
            exchange.status = answer.status
            exchange.errors.append(answer.message)
            await send_error(send, answer, ids)
        else:
            data = answer.body if isinstance(answer.body, bytes) else msgspec.json.encode(answer.body)
            exchange.status = answer.status
            exchange.tee.add(data)
            await send_json(send, answer.status, data, headers=[*ids, *answer.headers])
        await self._log(exchange)

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
        chunks = entry.chunks
        if exchange.options.stream_force_format and is_event_stream(headers):
            # The cache key does not hold this header: an entry stored without it is re-framed here.
            chunks = reframe_chunks(chunks)
        for chunk in chunks:
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

    async def _log_cancelled(self, exchange: Exchange) -> None:
        """The client went away mid-exchange (the upstream response is closed by then): record the cancel."""
        if exchange.logged is not None:  # the disconnect raced the end of a complete response
            await exchange.logged
            return
        exchange.status = Status.CLIENT_CANCELLED
        await self._log(exchange)

    async def _finish(self, exchange: Exchange, send: Send) -> None:
        """End a complete response, and do the after-response work before or after its last byte.

        After it when the settings allow, or when the backlog says the process will not be frozen with
        the hand-off unfinished (the Lambda extension holds the freeze; Managed Instances never freeze).
        """
        exchange.complete = True
        if self._settings.log_before_last_byte and not self._backlog.after_last_byte:
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
