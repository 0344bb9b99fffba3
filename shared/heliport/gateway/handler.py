"""The unified AI gateway's routes: ``/v1/chat/completions``, ``/v1/responses``, ``/v1/models``.

One request: authenticate the heliport key (the SDK's API key) -> plan the providers from the model
string -> [cache read -> rate limit] -> try each candidate in order, moving on where the routing doc
says a provider's failure is not the request's fault -> relay the answer, translated into the shape
the client asked for -> log. What happens around the upstream call (cache, limits, the end of the
response, the log record) is :class:`~heliport.proxy.forward.ExchangeHandler`'s, shared with the
pass-through proxy.

Failover happens only before the first byte reaches the client: after that the status is sent and
a failure mid-stream ends the stream with an error event, as the provider's own stream would.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

import msgspec

from heliport.cache import cache_key, cache_ttl
from heliport.errors import (
    AuthenticationError,
    HeliportError,
    InvalidBodyError,
    MethodNotAllowedError,
    UpstreamError,
    UpstreamTimeoutError,
    send_error,
)
from heliport.gateway.adapters import Prepared, bedrock_credentials, chat_chunks, error_message, prepare
from heliport.gateway.adapters import prepare_responses as prepare_openai_responses
from heliport.gateway.chat import JsonObj, ProviderStreamError
from heliport.gateway.providers import Accounts
from heliport.gateway.registry import Registry
from heliport.gateway.routing import Candidate, plan
from heliport.gateway.sse import DONE, data_event, named_event
from heliport.headers import parse_headers
from heliport.logs.record import Status
from heliport.proxy.forward import (
    SUCCESS_HEADERS,
    CachePlan,
    Exchange,
    ExchangeHandler,
    GatewayFacts,
    Receive,
    Scope,
    Send,
    Tee,
    peek_body,
    read_body,
    read_capped,
    watch_disconnect,
)
from heliport.proxy.retry import RetryPolicy, send_with_retries
from heliport.proxy.targets import Target
from heliport.proxy.transport import UpstreamResponse

__all__ = ["GATEWAY_ROUTES", "GatewayHandler"]

Route = Literal["chat", "responses", "models", "registry"]

#: Path -> (route, method). The registry listing is public, as Helicone's is.
GATEWAY_ROUTES: dict[str, tuple[Route, str]] = {
    "/v1/chat/completions": ("chat", "POST"),
    "/v1/responses": ("responses", "POST"),
    "/v1/models": ("models", "GET"),
    "/v1/models/multimodal": ("models", "GET"),
    "/v1/public/model-registry/models": ("registry", "GET"),
}

_JSON = (b"content-type", b"application/json")
_SSE = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
_CONTEXT_LENGTH_HINTS = (
    "context_length",
    "context length",
    "context window",
    "maximum context",
    "too many tokens",
    "prompt is too long",
    "input is too long",
    "too long",
)
#: The most actionable failure first when every provider failed (the routing doc's order).
_RANK = {403: 0, 401: 1, 400: 2}


def _rank(status: int) -> int:
    if status in _RANK:
        return _RANK[status]
    if status == 429:
        return 4
    return 3 if status >= 500 or status == 408 or status < 0 else 2


@dataclass(frozen=True, slots=True)
class _Failure:
    candidate: Candidate
    status: int
    message: str

    def detail(self) -> JsonObj:
        return {
            "provider": self.candidate.provider,
            "model": self.candidate.provider_model,
            "status": self.status,
            "message": self.message,
        }


class _AllFailed(HeliportError):
    """Every candidate failed (or one failed in a way no other provider would fix)."""

    def __init__(self, chosen: _Failure, failures: list[_Failure]) -> None:
        several = len(failures) > 1
        prefix = f"All {len(failures)} providers failed; " if several else ""
        super().__init__(f"{prefix}{chosen.candidate.provider} answered {chosen.status}: {chosen.message}")
        self.status = chosen.status if 400 <= chosen.status < 600 else 502
        self.code = _code_for(self.status)
        self.failures = failures

    def body(self) -> bytes:
        return msgspec.json.encode(
            {
                "error": {
                    "message": self.message,
                    "type": self.code,
                    "param": None,
                    "code": self.code,
                    "details": [f.detail() for f in self.failures],
                }
            }
        )


def _code_for(status: int) -> str:
    return {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        408: "timeout",
        429: "rate_limit_error",
    }.get(status, "provider_error" if status >= 500 else "invalid_request_error")


def _moves_on(status: int, message: str) -> bool:
    """The routing doc's failover triggers: rate limits, auth, context length, timeouts, server errors."""
    if status in (401, 408, 429) or status >= 500 or status < 0:
        return True
    if status == 400:
        lowered = message.lower()
        return any(hint in lowered for hint in _CONTEXT_LENGTH_HINTS)
    return False


class GatewayHandler(ExchangeHandler):
    """The ASGI handler for :data:`GATEWAY_ROUTES`."""

    def __init__(
        self,
        settings: Any,
        *,
        accounts: Callable[[], Awaitable[Accounts]],
        registry: Callable[[], Registry],
        **shared: Any,
    ) -> None:
        super().__init__(settings, **shared)
        self._accounts = accounts
        self._registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        route, method = GATEWAY_ROUTES[path]
        if scope["method"] != method:
            await send_error(send, MethodNotAllowedError(f"{path} takes {method}, not {scope['method']}"))
            return
        if route == "registry":
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            await _send_body(send, 200, msgspec.json.encode(self._registry().public_registry(query)))
            return
        try:
            options, forward = parse_headers(scope["headers"])
            token = options.auth_token or _bearer(forward)
            if token is None:
                raise AuthenticationError(
                    "Send your heliport key as the API key (Authorization: Bearer sk-heliport-...)"
                )
            key = await self._auth.authenticate(token)
            accounts = await self._accounts()
        except HeliportError as err:
            await send_error(send, err)
            return
        if route == "models":
            listing = self._registry().openai_list(accounts.available, multimodal=path.endswith("/multimodal"))
            await _send_body(send, 200, msgspec.json.encode(listing))
            return
        forward = [(n, v) for n, v in forward if n != "authorization"]
        exchange = Exchange(scope, options, key, Tee(self._settings.max_logged_body_bytes))
        ids = [(b"helicone-id", options.request_id.encode())]
        try:
            exchange.body = await read_body(receive, self._settings.max_request_bytes)
            request = _json_object(exchange.body)
            spec = request.get("model")
            if not isinstance(spec, str) or not spec.strip():
                raise InvalidBodyError("model is required: a model id, optionally with /provider", param="model")
            candidates = plan(spec, self._registry(), available=accounts.available, deployments=accounts.has_deployment)
            chat = request
            if route == "responses" and any(c.provider != "openai" for c in candidates):
                from heliport.gateway.responses import dropped_tools, responses_to_chat

                chat = responses_to_chat(request)
                exchange.errors.extend(f"tool {t!r} dropped: it runs only on OpenAI" for t in dropped_tools(request))
            if options.cache_enabled or options.cache_read or options.cache_save:
                exchange.cache = CachePlan(
                    key=cache_key(
                        options,
                        key_hash=key.key_hash,
                        target_url="heliport-gateway:" + path,
                        body=exchange.body,
                        forward_headers=forward,
                    ),
                    size=options.cache_bucket_max_size,
                    ttl=cache_ttl(forward),
                    read=options.cache_enabled or options.cache_read,
                    save=options.cache_enabled or options.cache_save,
                )
        except HeliportError as err:
            exchange.status = err.status
            exchange.errors.append(err.message)
            await send_error(send, err, ids)
            await self._log(exchange)
            return
        exchange.peek = peek_body(exchange.body)
        exchange.gateway = GatewayFacts(spec, self._settings.max_logged_body_bytes)
        extra: list[tuple[bytes, bytes]] = []
        if exchange.cache is not None and exchange.cache.read:
            lookup = await self._cache_lookup(exchange, exchange.cache)
            if lookup.entry is not None:
                exchange.gateway = None  # the answer comes from the cache: no provider was called
                await self._replay(exchange, lookup, send, ids)
                return
            extra.append((b"helicone-cache", b"MISS"))
        if options.rate_limit_policy is not None:
            decision = await self._rate_limit(exchange)
            if decision is not None:
                extra.extend(decision.headers())
                if not decision.allowed:
                    await self._refuse(exchange, decision, send, ids + extra)
                    return
        call = _Call(route, request, chat, bool(request.get("stream")), candidates, accounts, forward)
        await self._run(exchange, call, receive, send, ids + extra)

    async def _run(
        self, exchange: Exchange, call: _Call, receive: Receive, send: Send, headers: list[tuple[bytes, bytes]]
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        disconnected = asyncio.Event()
        watcher = asyncio.create_task(watch_disconnect(receive, task, disconnected))
        try:
            try:
                candidate, prepared, upstream = await self._open(exchange, call)
            except HeliportError as err:
                watcher.cancel()
                exchange.status = err.status
                exchange.errors.append(err.message)
                await send_error(send, err, headers)
                await self._log(exchange)
                return
            headers = [
                *headers,
                (b"helicone-provider", candidate.provider.encode()),
                (b"helicone-model", candidate.model.encode()),
                *SUCCESS_HEADERS,
            ]
            try:
                if call.stream:
                    await self._stream(exchange, call, prepared, upstream, send, headers)
                else:
                    await self._whole(exchange, call, prepared, upstream, send, headers)
            except UpstreamError as err:
                if call.stream:
                    raise  # headers are out: the client sees a broken stream, and the log says why
                watcher.cancel()
                exchange.status = err.status
                exchange.errors.append(err.message)
                await send_error(send, err, headers)
                await self._log(exchange)
                return
            finally:
                upstream.close()
            watcher.cancel()
            if exchange.logged is None:
                await self._finish(exchange, send)
        except asyncio.CancelledError:
            if not disconnected.is_set():
                raise
            task.uncancel()
            if exchange.logged is not None:
                await exchange.logged
                return
            exchange.status = Status.CLIENT_CANCELLED
            await self._log(exchange)
        finally:
            watcher.cancel()

    async def _open(self, exchange: Exchange, call: _Call) -> tuple[Candidate, Prepared | None, UpstreamResponse]:
        """The first candidate whose answer is worth relaying; the best failure when none is."""
        policy = RetryPolicy.from_options(exchange.options)
        gateway = exchange.gateway
        assert gateway is not None
        failures: list[_Failure] = []

        def note_retry(why: str) -> None:
            exchange.retry_count += 1
            exchange.errors.append(why)

        for index, candidate in enumerate(call.candidates):
            account = call.accounts.get(candidate.provider)
            gateway.provider, gateway.provider_model, gateway.attempts = (
                candidate.provider,
                candidate.provider_model,
                index + 1,
            )
            prepared: Prepared | None = None
            try:
                if call.route == "responses" and candidate.provider == "openai":
                    request = prepare_openai_responses(account, candidate, call.request, forward=call.forward)
                else:
                    credentials = await bedrock_credentials() if account.family == "bedrock" else None
                    prepared = prepare(
                        account, candidate, call.chat, stream=call.stream, forward=call.forward, credentials=credentials
                    )
                    request = prepared.request
            except InvalidBodyError as err:
                # This provider cannot take this body (e.g. an image URL Bedrock cannot fetch); another may.
                failures.append(_Failure(candidate, err.status, err.message))
                exchange.errors.append(f"{candidate.provider}: {err.message}")
                if len(call.candidates) == 1:
                    raise
                continue
            exchange.target = Target(account.label, request.url, guarded=False)
            gateway.native_request = request.body
            try:
                response = await send_with_retries(
                    lambda request=request: self._transport().send(request), policy, on_retry=note_retry
                )
            except UpstreamError as err:
                status = 408 if isinstance(err, UpstreamTimeoutError) else err.status
                failures.append(_Failure(candidate, status, err.message))
                exchange.errors.append(f"{candidate.provider}: {err.message}")
                continue
            if response.status < 400:
                if failures:
                    exchange.fallback_index = index
                return candidate, prepared, response
            try:
                raw = await read_capped(response, 64 * 1024)
            finally:
                response.close()
            message = error_message(account.family, raw.encode())
            failures.append(_Failure(candidate, response.status, message))
            exchange.errors.append(f"{candidate.provider} answered {response.status}: {message[:300]}")
            gateway.native.add(raw.encode())
            if not _moves_on(response.status, message):
                raise _AllFailed(failures[-1], failures)
        chosen = min(failures, key=lambda f: _rank(f.status))
        raise _AllFailed(chosen, failures)

    async def _whole(
        self,
        exchange: Exchange,
        call: _Call,
        prepared: Prepared | None,
        upstream: UpstreamResponse,
        send: Send,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        gateway = exchange.gateway
        assert gateway is not None
        parts: list[bytes] = []
        async for chunk in upstream.chunks():
            parts.append(chunk)
            gateway.native.add(chunk)
        raw = b"".join(parts)
        body = raw
        translated = prepared is not None and prepared.to_chat is not None
        try:
            if call.route == "responses" and prepared is not None:
                from heliport.gateway.responses import chat_to_response

                completion = prepared.to_chat(raw) if prepared.to_chat is not None else msgspec.json.decode(raw)
                body = msgspec.json.encode(
                    chat_to_response(completion, request=call.request, response_id=_response_id(), created_at=_now())
                )
            elif translated:
                assert prepared is not None and prepared.to_chat is not None
                body = msgspec.json.encode(prepared.to_chat(raw))
        except (msgspec.DecodeError, KeyError, TypeError, ValueError) as exc:
            raise UpstreamError(f"{gateway.provider} answered something heliport could not read: {exc}") from exc
        exchange.status = upstream.status
        exchange.tee.add(body)
        start = [*headers, _JSON, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": upstream.status, "headers": start})
        await send({"type": "http.response.body", "body": body, "more_body": True})

    async def _stream(
        self,
        exchange: Exchange,
        call: _Call,
        prepared: Prepared | None,
        upstream: UpstreamResponse,
        send: Send,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        gateway = exchange.gateway
        assert gateway is not None
        exchange.status = upstream.status
        await send({"type": "http.response.start", "status": upstream.status, "headers": [*headers, *_SSE]})
        relay = prepared is None or (call.route == "chat" and prepared.chunks is None)
        reader = None if relay else chat_chunks(prepared)  # type: ignore[arg-type]
        responses = None
        out: list[bytes] = []
        if call.route == "responses" and not relay:
            from heliport.gateway.responses import ResponsesStreamTranslator

            responses = ResponsesStreamTranslator(request=call.request, response_id=_response_id(), created_at=_now())
            out.extend(named_event(name, data) for name, data in responses.start())

        async def emit(parts: list[bytes]) -> None:
            if parts:
                data = b"".join(parts)
                exchange.tee.add(data)
                await send({"type": "http.response.body", "body": data, "more_body": True})

        try:
            async for chunk in upstream.chunks():
                gateway.native.add(chunk)
                if reader is None:
                    await emit([chunk])
                    continue
                for completion_chunk in reader.feed(chunk):
                    if responses is None:
                        out.append(data_event(completion_chunk))
                    else:
                        out.extend(named_event(n, d) for n, d in responses.feed(completion_chunk))
                await emit(out)
                out = []
        except ProviderStreamError as err:
            exchange.status = err.status
            exchange.errors.append(f"{gateway.provider} stream error: {err.message}")
            if responses is not None:
                out.extend(named_event(n, d) for n, d in responses.fail(err.message, err.kind))
            else:
                out.append(data_event({"error": {"message": err.message, "type": err.kind, "code": err.status}}))
            await emit(out)
            await self._log(exchange)  # the answer is not complete: logged, never cached or charged
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        except UpstreamError as err:
            exchange.status = Status.TIMEOUT if isinstance(err, UpstreamTimeoutError) else Status.STREAM_FAILED
            exchange.errors.append(err.message)
            await self._log(exchange)
            raise
        if reader is not None:
            if responses is not None:
                out.extend(named_event(n, d) for n, d in responses.finish())
            else:
                out.append(DONE)
            await emit(out)


@dataclass(frozen=True, slots=True)
class _Call:
    route: Route
    #: The body as the client sent it, and its chat form (the same object on the chat route).
    request: JsonObj
    chat: JsonObj
    stream: bool
    candidates: list[Candidate]
    accounts: Accounts
    forward: list[tuple[str, str]]


def _bearer(forward: list[tuple[str, str]]) -> str | None:
    for name, value in forward:
        if name == "authorization":
            scheme, _, token = value.partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


def _json_object(body: bytes) -> JsonObj:
    try:
        parsed = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidBodyError(f"The body must be a JSON object: {exc}") from None
    if not isinstance(parsed, dict):
        raise InvalidBodyError("The body must be a JSON object")
    return parsed


def _response_id() -> str:
    return "resp_" + uuid.uuid4().hex


def _now() -> int:
    return int(time.time())


async def _send_body(send: Send, status: int, body: bytes) -> None:
    headers = [_JSON, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
