"""The unified AI gateway's routes: ``/v1/chat/completions``, ``/v1/responses``, ``/v1/models``.

One request: authenticate the heliport key (the SDK's API key) -> plan the providers from the model
string -> [cache read -> rate limit] -> try each candidate in order, moving on where the routing doc
says a provider's failure is not the request's fault -> relay the answer, translated into the shape
the client asked for -> log. What happens around the upstream call (cache, limits, the end of the
response, the log record) is :class:`~heliport.exchange.ExchangeHandler`'s, shared with the
pass-through proxy.

Failover happens only before the first chunk reaches the client (a stream is read up to its first
chunk before the status is sent); after that a failure ends the stream with an error event, as the
provider's own stream would.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Literal
from urllib.parse import parse_qsl

import msgspec

from heliport.asgi import Receive, Scope, Send, cancel_on_disconnect, read_body, send_error, send_json
from heliport.config import ConfigError
from heliport.errors import (
    AuthenticationError,
    HeliportError,
    InvalidBodyError,
    InvalidHeaderError,
    JsonTooDeepError,
    MethodNotAllowedError,
    UpstreamError,
    UpstreamTimeoutError,
    deep_json_key,
    deep_json_path,
    json_depth_exceeds,
)
from heliport.exchange import (
    SUCCESS_HEADERS,
    CachePlan,
    Exchange,
    ExchangeDeps,
    ExchangeHandler,
    GatewayFacts,
    Tee,
    peek_body,
    read_capped,
)
from heliport.gateway.adapters import ChunkReader, Prepared, bedrock_credentials, chat_chunks, error_message, prepare
from heliport.gateway.adapters import prepare_responses as prepare_openai_responses
from heliport.gateway.chat import JsonObj, ProviderStreamError
from heliport.gateway.providers import Account, Accounts
from heliport.gateway.registry import Registry
from heliport.gateway.routing import Candidate, plan
from heliport.gateway.sse import DONE, data_event, named_event
from heliport.headers import RequestOptions, bearer_token, parse_headers
from heliport.logs.record import Status
from heliport.proxy.retry import RetryPolicy, send_with_retries
from heliport.proxy.targets import Target
from heliport.proxy.transport import UpstreamResponse
from heliport.stream_format import SseFramer, is_event_stream

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


class ProviderConfigError(HeliportError):
    status = 503
    code = "provider_config_unavailable"


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


def _refuse_proxy_only_headers(options: RequestOptions) -> None:
    """Headers that steer the pass-through proxy's upstream have no meaning here, where the model
    string routes: a 400 naming the header, rather than a request that silently ignores them."""
    if options.fallbacks:
        raise InvalidHeaderError(
            "Helicone-Fallbacks",
            'the AI gateway falls back by the model string: "model": "gpt-4o-mini,claude-3-5-haiku/anthropic"'
            " (Helicone-Fallbacks is for the pass-through proxy, /v1/gateway/...)",
        )
    if options.target_url is not None:
        raise InvalidHeaderError(
            "Helicone-Target-Url",
            "the AI gateway sends to the provider the model string names; Helicone-Target-Url is for the"
            " pass-through proxy (/v1/gateway/...)",
        )
    if options.openai_api_base is not None:
        raise InvalidHeaderError(
            "Helicone-OpenAI-Api-Base",
            "the AI gateway reaches Azure through its configured account (model/azure/<deployment>);"
            " Helicone-OpenAI-Api-Base is for the pass-through proxy (/v1/gateway/azure/...)",
        )


class GatewayHandler(ExchangeHandler):
    """The ASGI handler for :data:`GATEWAY_ROUTES`."""

    def __init__(
        self,
        deps: ExchangeDeps,
        *,
        accounts: Callable[[], Awaitable[Accounts]],
        registry: Callable[[], Registry],
    ) -> None:
        super().__init__(deps)
        self._accounts = accounts
        self._registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        route, method = GATEWAY_ROUTES[path]
        if scope["method"] != method:
            await send_error(send, MethodNotAllowedError(f"{path} takes {method}, not {scope['method']}"))
            return
        if route == "registry":
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            await send_json(send, 200, self._registry().public_registry(query))
            return
        await self._backlog.admit()
        try:
            options, forward = parse_headers(scope["headers"])
            _refuse_proxy_only_headers(options)
            token = options.auth_token or _bearer(forward)
            if token is None:
                raise AuthenticationError(
                    "Send your heliport key as the API key (Authorization: Bearer sk-heliport-...)"
                )
            key = await self._auth.authenticate(token)
            try:
                accounts = await self._accounts()
            except Exception as exc:  # the provider secret cannot be read: an outage, not the caller's fault
                raise ProviderConfigError(f"The gateway's provider keys could not be loaded: {exc}") from exc
        except HeliportError as err:
            await send_error(send, err)
            return
        if route == "models":
            listing = self._registry().openai_list(accounts.available, multimodal=path.endswith("/multimodal"))
            await send_json(send, 200, listing)
            return
        forward = [(n, v) for n, v in forward if n != "authorization"]
        exchange = Exchange(scope, options, key, Tee(self._settings.max_logged_body_bytes))
        ids = [(b"helicone-id", options.request_id.encode())]
        try:
            exchange.body = await read_body(receive, self._settings.max_request_bytes)
            exchange.forward, exchange.via_gateway = forward, True
            if self._steps and self._wants_steps(exchange) and not await self._pre_forward(exchange, send, ids):
                return
            request = _json_object(exchange.body, self._settings.max_json_depth)
            spec = request.get("model")
            if not isinstance(spec, str) or not spec.strip():
                raise InvalidBodyError("model is required: a model id, optionally with /provider", param="model")
            candidates = plan(spec, self._registry(), available=accounts.available, deployments=accounts.has_deployment)
            # The model string is part of the body, so a pinned and an automatic route cache apart.
            exchange.cache = CachePlan.of(
                options,
                key_hash=key.key_hash,
                target_url="heliport-gateway:" + path,
                body=exchange.body,
                forward=forward,
            )
        except HeliportError as err:
            exchange.status = err.status
            exchange.errors.append(err.message)
            await send_error(send, err, ids)
            await self._log(exchange)
            return
        exchange.peek = peek_body(exchange.body)
        exchange.gateway = GatewayFacts(spec, self._settings.max_logged_body_bytes)
        extra = await self._before_upstream(exchange, send, ids)
        if extra is None:
            return
        call = _Call(route, request, bool(request.get("stream")), candidates, accounts, forward)
        await self._run(exchange, call, receive, send, ids + extra)

    async def _run(
        self, exchange: Exchange, call: _Call, receive: Receive, send: Send, headers: list[tuple[bytes, bytes]]
    ) -> None:
        async with cancel_on_disconnect(receive) as watch:
            try:
                opened = await self._open(exchange, call)
            except HeliportError as err:
                watch.stop()
                await self._fail(exchange, err, send, headers)
                return
            candidate = opened.candidate
            success = [
                (b"helicone-provider", candidate.provider.encode()),
                (b"helicone-model", candidate.model.encode()),
            ]
            content_type = _SSE[0][1] if call.stream else _JSON[1]
            exchange.response_headers = {
                "content-type": content_type.decode(),
                "helicone-provider": candidate.provider,
                "helicone-model": candidate.model,
            }
            try:
                if call.stream:
                    await self._stream(exchange, call, opened, send, [*headers, *success, *SUCCESS_HEADERS])
                else:
                    try:
                        body = await self._whole(exchange, call, opened)
                    except HeliportError as err:
                        watch.stop()
                        await self._fail(exchange, err, send, headers)
                        return
                    exchange.status = opened.upstream.status
                    exchange.tee.add(body)
                    start = [*headers, *success, *SUCCESS_HEADERS, _JSON, (b"content-length", str(len(body)).encode())]
                    await send({"type": "http.response.start", "status": exchange.status, "headers": start})
                    await send({"type": "http.response.body", "body": body, "more_body": True})
            finally:
                opened.upstream.close()  # on a disconnect too: the upstream request is dropped
            watch.stop()
            if exchange.logged is None:  # a stream that ended with an error event was logged already
                await self._finish(exchange, send)
        if watch.cancelled:
            await self._log_cancelled(exchange)

    async def _fail(
        self, exchange: Exchange, err: HeliportError, send: Send, headers: list[tuple[bytes, bytes]]
    ) -> None:
        exchange.status = err.status
        exchange.errors.append(err.message)
        await send_error(send, err, headers)
        await self._log(exchange)

    async def _open(self, exchange: Exchange, call: _Call) -> _Opened:
        """The first candidate whose answer is worth relaying; the best failure when none is.

        A stream is read up to its first translated chunk before the status is committed, so a
        provider that answers 200 and then an error event (Anthropic's overload, Bedrock's
        throttling) is failed over like one that answered 529 or 429.
        """
        policy = RetryPolicy.from_options(exchange.options)
        gateway = exchange.gateway
        assert gateway is not None
        failures: list[_Failure] = []

        def fail(candidate: Candidate, status: int, message: str) -> None:
            failures.append(_Failure(candidate, status, message))
            exchange.errors.append(f"{candidate.provider} answered {status}: {message[:300]}")

        def note_retry(why: str) -> None:
            exchange.retry_count += 1
            exchange.errors.append(why)

        for index, candidate in enumerate(call.candidates):
            account = call.accounts.get(candidate.provider)
            gateway.provider, gateway.provider_model = candidate.provider, candidate.provider_model
            gateway.attempts = index + 1
            prepared: Prepared | None = None
            try:
                if call.route == "responses" and candidate.provider == "openai":
                    request = prepare_openai_responses(account, candidate, call.request, forward=call.forward)
                else:
                    chat = call.chat(exchange.errors)
                    credentials = await bedrock_credentials() if account.family == "bedrock" else None
                    token = await _vertex_token(account) if account.family == "vertex" else None
                    try:
                        prepared = prepare(
                            account,
                            candidate,
                            chat,
                            stream=call.stream,
                            forward=call.forward,
                            credentials=credentials,
                            access_token=token,
                        )
                    except RecursionError:
                        # A JSON string in the body (tool-call arguments) decoded into something deeper than the
                        # native request's encoder goes; the body's own depth was checked on arrival.
                        raise InvalidBodyError("The body nests too deep to translate for this provider") from None
                    request = prepared.request
            except InvalidBodyError as err:
                # This provider cannot take this body (e.g. an image URL Bedrock cannot fetch); another may.
                if len(call.candidates) == 1:
                    raise
                fail(candidate, err.status, err.message)
                continue
            except ConfigError as err:  # e.g. Bedrock enabled but no AWS credentials found
                fail(candidate, 502, f"{candidate.provider} is not usable here: {err}")
                continue
            exchange.target = Target(account.label, request.url, guarded=False)
            gateway.native_request = request.body
            try:
                response = await send_with_retries(partial(self._send, request), policy, on_retry=note_retry)
            except UpstreamError as err:
                fail(candidate, 408 if isinstance(err, UpstreamTimeoutError) else err.status, err.message)
                continue
            if response.status >= 400:
                try:
                    raw = await read_capped(response, 64 * 1024)
                finally:
                    response.close()
                if response.status in (401, 403):
                    # The provider refused *our* credential: its text may quote the key or a signature's
                    # canonical request (with the session token), so none of it is kept or shown.
                    message = f"{candidate.provider} refused the deployment's credentials"
                else:
                    message = error_message(account.family, raw.encode())
                fail(candidate, response.status, message)
                if not _moves_on(response.status, message):
                    raise _AllFailed(failures[-1], failures)
                continue
            opened = _Opened(candidate, prepared, response, response.chunks().__aiter__())
            if call.stream:
                try:
                    await self._prime(opened, call, gateway)
                except (ProviderStreamError, UpstreamError) as err:
                    response.close()
                    status = err.status if isinstance(err, ProviderStreamError) else 502
                    fail(candidate, status, err.message)
                    if not _moves_on(status, err.message):
                        raise _AllFailed(failures[-1], failures) from None
                    gateway.native = Tee(self._settings.max_logged_body_bytes)
                    continue
            if failures:
                exchange.fallback_index = index
            return opened
        if not failures:
            raise AssertionError("a plan is never empty")
        chosen = min(failures, key=lambda f: _rank(f.status))
        raise _AllFailed(chosen, failures)

    @staticmethod
    async def _prime(opened: _Opened, call: _Call, gateway: GatewayFacts) -> None:
        relay = opened.prepared is None or (call.route == "chat" and opened.prepared.chunks is None)
        opened.reader = None if relay else chat_chunks(opened.prepared)  # type: ignore[arg-type]
        while True:
            try:
                chunk = await opened.chunks.__anext__()
            except StopAsyncIteration:
                opened.ended = True
                return
            gateway.native.add(chunk)
            if opened.reader is None:
                opened.primed.append(chunk)
                return
            opened.primed_chunks.extend(opened.reader.feed(chunk))
            if opened.primed_chunks:
                return

    async def _whole(self, exchange: Exchange, call: _Call, opened: _Opened) -> bytes:
        """The complete answer in the shape the client asked for."""
        gateway = exchange.gateway
        assert gateway is not None
        parts: list[bytes] = []
        async for chunk in opened.chunks:
            parts.append(chunk)
            gateway.native.add(chunk)
        raw = b"".join(parts)
        prepared = opened.prepared
        try:
            if call.route == "responses" and prepared is not None:
                from heliport.gateway.responses import chat_to_response

                completion = prepared.to_chat(raw) if prepared.to_chat is not None else msgspec.json.decode(raw)
                response = chat_to_response(
                    completion, request=call.request, response_id=_response_id(), created_at=_now()
                )
                return msgspec.json.encode(response)
            if prepared is not None and prepared.to_chat is not None:
                return msgspec.json.encode(prepared.to_chat(raw))
            return raw
        except HeliportError:
            raise
        except Exception as exc:  # a provider's answer we cannot read is the provider's failure, not ours
            raise UpstreamError(f"{gateway.provider} answered something heliport could not read: {exc}") from exc

    async def _stream(
        self, exchange: Exchange, call: _Call, opened: _Opened, send: Send, headers: list[tuple[bytes, bytes]]
    ) -> None:
        gateway = exchange.gateway
        assert gateway is not None
        exchange.status = opened.upstream.status
        await send({"type": "http.response.start", "status": exchange.status, "headers": [*headers, *_SSE]})
        reader = opened.reader
        responses = None
        out: list[bytes] = []
        # Helicone-Stream-Force-Format: a relayed stream is re-framed on event boundaries; translated
        # streams are built from whole events (data_event, named_event), so each emit already is.
        framer = None
        if reader is None and exchange.options.stream_force_format and is_event_stream(opened.upstream.headers):
            framer = SseFramer()

        def relay(chunk: bytes) -> None:
            if framer is None:
                out.append(chunk)
            else:
                ready = framer.feed(chunk)
                if ready:
                    out.append(ready)

        if call.route == "responses" and reader is not None:
            from heliport.gateway.responses import ResponsesStreamTranslator

            responses = ResponsesStreamTranslator(request=call.request, response_id=_response_id(), created_at=_now())
            out.extend(named_event(name, data) for name, data in responses.start())

        def translate(chunks: list[JsonObj]) -> None:
            for completion_chunk in chunks:
                if responses is None:
                    out.append(data_event(completion_chunk))
                else:
                    out.extend(named_event(n, d) for n, d in responses.feed(completion_chunk))

        async def emit() -> None:
            if out:
                data = b"".join(out)
                out.clear()
                exchange.tee.add(data)
                await send({"type": "http.response.body", "body": data, "more_body": True})

        try:
            for primed in opened.primed:
                relay(primed)
            translate(opened.primed_chunks)
            await emit()
            if not opened.ended:
                async for chunk in opened.chunks:
                    gateway.native.add(chunk)
                    if reader is None:
                        relay(chunk)
                    else:
                        translate(reader.feed(chunk))
                    await emit()
        except UpstreamError as err:
            exchange.status = Status.TIMEOUT if isinstance(err, UpstreamTimeoutError) else Status.STREAM_FAILED
            exchange.errors.append(err.message)
            if framer is not None:
                exchange.errors.extend(framer.notes(failed=True))
            await self._log(exchange)
            raise  # headers are out: the client sees a broken stream, and the log says why
        except Exception as exc:
            # The provider's error event mid-stream, or a stream heliport cannot read: end the stream
            # with an error event in the client's format, as the provider's own stream would.
            failure = (
                exc if isinstance(exc, ProviderStreamError) else ProviderStreamError(502, f"unreadable stream: {exc}")
            )
            exchange.status = failure.status
            exchange.errors.append(f"{gateway.provider} stream error: {failure.message}")
            if framer is not None:
                exchange.errors.extend(framer.notes(failed=True))
            if responses is not None:
                out.extend(named_event(n, d) for n, d in responses.fail(failure.message, failure.kind))
            else:
                error = {"message": failure.message, "type": failure.kind, "code": failure.status}
                out.append(data_event({"error": error}))
            await emit()
            await self._log(exchange)  # the answer is not complete: logged, never cached or charged
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        if reader is not None:
            if responses is not None:
                out.extend(named_event(n, d) for n, d in responses.finish())
            else:
                out.append(DONE)
            await emit()
        elif framer is not None:
            exchange.errors.extend(framer.notes(failed=False))
            rest = framer.flush()
            if rest:  # the stream ended without a last blank line: what is left goes as it is
                out.append(rest)
                await emit()


@dataclass(slots=True)
class _Opened:
    """A candidate that answered with a status worth relaying, and what was read of it so far."""

    candidate: Candidate
    prepared: Prepared | None
    upstream: UpstreamResponse
    chunks: AsyncIterator[bytes]
    #: How to read the stream into chat chunks; None when it is relayed as bytes.
    reader: ChunkReader | None = None
    primed: list[bytes] = field(default_factory=list)
    primed_chunks: list[JsonObj] = field(default_factory=list)
    ended: bool = False


@dataclass(slots=True)
class _Call:
    route: Route
    #: The body as the client sent it.
    request: JsonObj
    stream: bool
    candidates: list[Candidate]
    accounts: Accounts
    forward: list[tuple[str, str]]
    _chat: JsonObj | None = None

    def chat(self, notes: list[str]) -> JsonObj:
        """The request in chat form: itself on the chat route; translated once, on first need, from
        a Responses request (so a Responses-only feature still reaches OpenAI untouched)."""
        if self.route == "chat":
            return self.request
        if self._chat is None:
            from heliport.gateway.responses import dropped_tools, responses_to_chat

            try:
                self._chat = responses_to_chat(self.request)
            except HeliportError:
                raise
            except Exception as exc:  # a shape the translation did not foresee is still the caller's input
                raise InvalidBodyError(f"This Responses request cannot be translated for this provider: {exc}") from exc
            notes.extend(f"tool {t!r} dropped: it runs only on OpenAI" for t in dropped_tools(self.request))
        return self._chat


async def _vertex_token(account: Account) -> str:
    """The Vertex account's OAuth2 access token, refreshed first when near expiry (google-auth loads
    only when a Vertex account is used)."""
    if account.google is None:
        raise ConfigError("Vertex AI is not configured: no service-account key")
    return await account.google.token()


def _bearer(forward: list[tuple[str, str]]) -> str | None:
    for name, value in forward:
        if name == "authorization":
            return bearer_token(value)
    return None


def _json_object(body: bytes, max_depth: int) -> JsonObj:
    """The body as a JSON object no deeper than ``max_depth`` (400s in OpenAI's shape otherwise)."""
    try:
        parsed = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidBodyError(f"The body must be a JSON object: {exc}") from None
    except RecursionError:  # msgspec gives up near the interpreter's recursion limit, far past max_depth
        raise JsonTooDeepError(max_depth, param=deep_json_key(body, max_depth)) from None
    if not isinstance(parsed, dict):
        raise InvalidBodyError("The body must be a JSON object")
    if json_depth_exceeds(parsed, max_depth):
        # Refused before anything else decodes, encodes or walks it: no later step can recurse past the limit.
        raise JsonTooDeepError(max_depth, param=deep_json_path(parsed, max_depth))
    return parsed


def _response_id() -> str:
    return "resp_" + uuid.uuid4().hex


def _now() -> int:
    return int(time.time())
