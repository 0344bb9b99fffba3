"""Async ("manual") logging: ``POST /custom/v1/log`` and friends, for calls heliport did not proxy.

The payload is Helicone's ``{providerRequest, providerResponse, timing}``. ``providerRequest.meta``
acts as Helicone headers (``Helicone-User-Id``, ``Helicone-Property-*``...), as do the POST's own
``Helicone-*`` headers (helicone-helpers sends properties that way); meta wins on a clash. The key
comes in ``Authorization: Bearer`` (what the Helicone SDKs send) or ``Helicone-Auth``. The record
then takes the same queue -> consumer path as a proxied request.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from heliport.asgi import Receive, Scope, Send, read_body, send_error, send_json
from heliport.auth import Authenticator
from heliport.config import Settings
from heliport.errors import (
    HeliportError,
    InvalidBodyError,
    JsonTooDeepError,
    deep_json_key,
    json_depth_exceeds,
)
from heliport.headers import bearer_token, parse_headers
from heliport.logs.record import SECRET_HEADERS, LogRecord
from heliport.logs.usage import extract_usage
from heliport.store.queue import LogQueue

__all__ = ["ASYNC_LOG_ROUTES", "AsyncLogHandler"]

#: path -> the provider label its records carry.
ASYNC_LOG_ROUTES = {
    "/custom/v1/log": "CUSTOM",
    "/v1/trace/custom/log": "CUSTOM",
    "/oai/v1/log": "OPENAI",
    "/anthropic/v1/log": "ANTHROPIC",
}


class _Instant(msgspec.Struct):
    seconds: int
    milliseconds: int = 0

    def to_datetime(self, field: str) -> datetime:
        try:
            return datetime.fromtimestamp(self.seconds + self.milliseconds / 1000, UTC)
        except (ValueError, OverflowError, OSError):  # beyond what a datetime (or the OS clock) holds
            raise InvalidBodyError(f"{field} is not a time heliport can store", param=f"$.{field}") from None


class _Timing(msgspec.Struct):
    startTime: _Instant
    endTime: _Instant
    timeToFirstToken: float | None = None


class _ProviderRequest(msgspec.Struct):
    url: str = "custom-model-nopath"
    json: dict[str, Any] | None = None
    meta: dict[str, Any] = msgspec.field(default_factory=dict)


class _ProviderResponse(msgspec.Struct):
    status: int = 200
    headers: dict[str, Any] = msgspec.field(default_factory=dict)
    json: Any = None
    textBody: str | None = None


class AsyncLogPayload(msgspec.Struct):
    providerRequest: _ProviderRequest
    providerResponse: _ProviderResponse
    timing: _Timing | None = None


_payload_decoder = msgspec.json.Decoder(AsyncLogPayload)
_encoder = msgspec.json.Encoder()


def _check_depth(payload: AsyncLogPayload, limit: int) -> None:
    """Refuse a payload whose free-form fields nest past ``limit`` (counted from the payload itself:
    each field sits two levels down, payload > providerRequest > json)."""
    fields = (
        ("$.providerRequest.json", payload.providerRequest.json),
        ("$.providerRequest.meta", payload.providerRequest.meta),
        ("$.providerResponse.headers", payload.providerResponse.headers),
        ("$.providerResponse.json", payload.providerResponse.json),
    )
    for param, value in fields:
        if json_depth_exceeds(value, limit - 2):
            raise JsonTooDeepError(limit, param=param)


def _field_error(exc: msgspec.ValidationError | msgspec.DecodeError) -> InvalidBodyError:
    message = str(exc)
    # msgspec says "... - at `$.providerResponse.status`"; surface the path as the param.
    param = message.rsplit("at `", 1)[1].rstrip("`") if "at `$" in message else None
    return InvalidBodyError(f"Invalid log payload: {message}", param=param)


class AsyncLogHandler:
    def __init__(self, settings: Settings, *, authenticator: Authenticator, queue: LogQueue) -> None:
        self._settings = settings
        self._auth = authenticator
        self._queue = queue

    async def __call__(self, scope: Scope, receive: Receive, send: Send, provider: str) -> None:
        try:
            record = await self._record(scope, receive, provider)
        except HeliportError as err:
            await send_error(send, err)
            return
        await self._queue.send(record)
        body = _encoder.encode({"ok": True, "id": record.request_id})
        await send_json(send, 200, body, headers=[(b"helicone-id", record.request_id.encode())])

    async def _record(self, scope: Scope, receive: Receive, provider: str) -> LogRecord:
        if scope["method"] != "POST":
            raise InvalidBodyError("Use POST to send a log", status=405)
        body = await read_body(receive, self._settings.max_request_bytes)
        limit = self._settings.max_json_depth
        try:
            payload = _payload_decoder.decode(body)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise _field_error(exc) from None
        except RecursionError:  # msgspec gives up near the interpreter's recursion limit, far past the setting
            where = deep_json_key(body, limit)
            raise JsonTooDeepError(limit, param=f"$.{where}" if where else None) from None
        _check_depth(payload, limit)
        headers = [(n, v) for n, v in scope["headers"] if n.lower().startswith(b"helicone-")]
        token = _bearer(scope["headers"])
        if token and not any(n.lower() == b"helicone-auth" for n, _ in headers):
            headers.append((b"helicone-auth", b"Bearer " + token.encode()))
        headers += [(str(k).lower().encode(), str(v).encode()) for k, v in payload.providerRequest.meta.items()]
        options, _ = parse_headers(headers)
        key = await self._auth.authenticate(options.auth_token)
        now = datetime.now(UTC)
        timing = payload.timing
        started = timing.startTime.to_datetime("timing.startTime") if timing else now
        ended = timing.endTime.to_datetime("timing.endTime") if timing else now
        if ended < started:
            raise InvalidBodyError("timing.endTime is before timing.startTime", param="$.timing.endTime")
        request_json = payload.providerRequest.json
        response = payload.providerResponse
        # As in Helicone, a non-empty textBody is the response body: helicone-helpers sends a string response
        # as textBody beside "json": {}, and usage is then read from the text (a JSON document or a stream).
        if response.textBody or response.json is None:
            response_text = response.textBody
        else:
            response_text = _encoder.encode(response.json).decode()
        model = request_json.get("model") if isinstance(request_json, dict) else None
        return LogRecord(
            request_id=options.request_id,
            org_id=key.org_id,
            key_id=key.id,
            started_at=started,
            ttfb_ms=timing.timeToFirstToken if timing else None,
            duration_ms=(ended - started).total_seconds() * 1000,
            method="POST",
            path=scope["path"],
            provider=provider,
            target_url=payload.providerRequest.url,
            status=response.status,
            is_stream=False,
            request_model=model if isinstance(model, str) else None,
            **options.log_fields(),
            request_body=None
            if options.omit_request or request_json is None
            else _encoder.encode(request_json).decode(),
            response_body=None if options.omit_response else response_text,
            usage=(
                extract_usage(provider=provider, path="", response_body=response_text, is_stream=False)
                if options.omit_response
                else None
            ),
            response_headers={
                str(k).lower(): str(v) for k, v in response.headers.items() if str(k).lower() not in SECRET_HEADERS
            },
        )


def _bearer(raw: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in raw:
        if name.lower() == b"authorization" and (token := bearer_token(value.decode("latin-1"))):
            return token
    return None
