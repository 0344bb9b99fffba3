"""The pass-through proxy: parse -> authenticate -> route -> [steps] -> [cache read -> rate limit] -> forward
-> tee -> log.

What happens around the upstream call (the pre-forward steps, cache, rate limits, the end of the
response, the log) is the exchange core's (:mod:`heliport.exchange`), shared with the AI gateway;
this module finds the upstream (the route's target, or ``Helicone-Fallbacks``) and relays it. The
bracketed steps, and retries and fallbacks around the forward, run only when a header asks for
them; a failure of their store falls back to plain proxying and is recorded on the log.

The response is relayed chunk by chunk as it arrives (an SSE stream is never buffered; with
``Helicone-Stream-Force-Format`` an unfinished event is held until its end, see
:mod:`heliport.stream_format`); a capped copy of what the client got and the time to first byte are
kept for the log. A client that disconnects cancels the
upstream request. After a complete response the cache write and a cents charge run, then the
:class:`LogRecord` is handed to the queue: after the last byte, or, on Lambda
(``log_before_last_byte``), just before the terminating chunk, because the sandbox may freeze the
moment the response ends.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from functools import partial
from typing import Any

import msgspec

from heliport.asgi import Receive, Scope, Send, cancel_on_disconnect, read_body, send_error
from heliport.errors import HeliportError, InvalidBodyError, UpstreamError, UpstreamTimeoutError
from heliport.exchange import (
    SUCCESS_HEADERS,
    CachePlan,
    Exchange,
    ExchangeDeps,
    ExchangeHandler,
    Tee,
    peek_body,
    read_capped,
)
from heliport.headers import Fallback, RequestOptions, parse_headers
from heliport.logs.record import SECRET_HEADERS, Status
from heliport.proxy.retry import RetryPolicy, send_with_retries
from heliport.proxy.targets import Target, TargetResolver
from heliport.proxy.transport import UpstreamRequest, UpstreamResponse
from heliport.stream_format import is_event_stream, reframe

__all__ = ["ProxyHandler"]

logger = logging.getLogger("heliport.proxy")

# Response headers that describe the upstream hop, not the response we send.
_DROP_RESPONSE_HEADERS = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"date", b"server"})
_DECODED_HEADERS = frozenset({b"content-encoding", b"content-length"})


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


class _Attempt(msgspec.Struct, frozen=True):
    """One place to send the request: the route's target, or one ``Helicone-Fallbacks`` entry."""

    target: Target
    fallback: Fallback | None = None


class ProxyHandler(ExchangeHandler):
    """The ASGI handler for ``/v1/gateway/...``; ``proxy_path`` is what follows that prefix."""

    def __init__(self, deps: ExchangeDeps, *, targets: TargetResolver) -> None:
        super().__init__(deps)
        self._targets = targets

    async def __call__(self, scope: Scope, receive: Receive, send: Send, proxy_path: str) -> None:
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
            attempts = self._attempts(proxy_path, scope["query_string"], options)
            exchange.target = attempts[0].target
            exchange.body = await read_body(receive, self._settings.max_request_bytes)
            exchange.forward = forward_headers
            if self._steps and self._wants_steps(exchange) and not await self._pre_forward(exchange, send, ids):
                return
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

    def _attempts(self, proxy_path: str, query: bytes, options: RequestOptions) -> list[_Attempt]:
        if not options.fallbacks:
            return [_Attempt(self._targets.resolve(proxy_path, query, options))]
        # Helicone's semantics: the fallbacks list every attempt, the first one included.
        return [
            _Attempt(self._targets.resolve_fallback(proxy_path, query, fallback.target_url), fallback)
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
                response = await send_with_retries(partial(self._send, request), policy, on_retry=note_retry)
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

    async def _relay(
        self,
        exchange: Exchange,
        attempts: list[_Attempt],
        requests: list[UpstreamRequest],
        receive: Receive,
        send: Send,
        ids: list[tuple[bytes, bytes]],
    ) -> None:
        finished = False  # True once the exchange is (being) logged by the block itself
        async with cancel_on_disconnect(receive) as watch:
            try:
                try:
                    upstream = await self._open(exchange, attempts, requests)
                except HeliportError as err:
                    exchange.status = err.status
                    exchange.errors.append(err.message)
                    watch.stop()
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
                    chunks = upstream.chunks()
                    if exchange.options.stream_force_format and is_event_stream(upstream.headers):
                        chunks = reframe(chunks, note=exchange.errors.append)
                    async for chunk in chunks:
                        exchange.tee.add(chunk)
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                except UpstreamError as err:
                    # Headers are out, so the status cannot change: log why, and end the response
                    # without its terminating chunk so the client sees a failed read, not a short answer.
                    exchange.status = Status.TIMEOUT if isinstance(err, UpstreamTimeoutError) else Status.STREAM_FAILED
                    exchange.errors.append(err.message)
                    watch.stop()
                    await self._log(exchange)
                    finished = True
                    raise
                finally:
                    upstream.close()  # on a disconnect too: the upstream request is dropped, not pooled
                watch.stop()
                finished = True
                await self._finish(exchange, send)
            except BaseException as exc:
                # Ended by something other than the client going away (a shutdown's cancel, a failed
                # send) before it was logged: the request is still logged.
                if not finished and not watch.is_disconnect(exc):
                    watch.stop()
                    await self._log(exchange)
                raise
        if watch.cancelled:
            await self._log_cancelled(exchange)

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
