"""Bedrock's AWS plumbing: the Converse URL, SigV4 signing, the role's credentials, the binary event stream.

Bedrock is the one provider that does not take an API key: requests are SigV4-signed with the
function's own IAM role, and streams come back in AWS's binary event-stream framing rather than
SSE. That transport is here, apart from what the bodies mean (:mod:`.bedrock`, the Converse
translation). Pure like it: this module builds the URL, signs headers and decodes stream bytes the
caller has read; the gateway handler does the sending. botocore is imported on first use (cold
starts pay for it only when Bedrock is called).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import quote

import msgspec

from heliport.config import ConfigError
from heliport.gateway.chat import JsonObj, ProviderStreamError

if TYPE_CHECKING:
    from botocore.credentials import Credentials

__all__ = ["EventStreamDecoder", "converse_url", "error_message", "role_credentials", "sign"]

_decode = msgspec.json.decode

#: Status a stream exception would have had as an HTTP error. AWS documents
#: modelStreamErrorException as 424, but it is the model failing mid-answer and "retry" is AWS's own
#: advice, so it counts as a server error for logging and failover.
_EXCEPTION_STATUS = {
    "validationException": 400,
    "accessDeniedException": 403,
    "resourceNotFoundException": 404,
    "modelTimeoutException": 408,
    "throttlingException": 429,
    "modelNotReadyException": 429,
    "serviceQuotaExceededException": 429,
    "modelStreamErrorException": 500,
    "internalServerException": 500,
    "serviceUnavailableException": 503,
}
_INVALID = "invalid_stream"
_REGION = re.compile(r"[a-z0-9-]+")


# -- stream: application/vnd.amazon.eventstream -> (event type, JSON) -------------------------------


class EventStreamDecoder:
    """Bytes of an ``application/vnd.amazon.eventstream`` body, in any pieces, as ``(event type, JSON)``.

    Framing and CRC checks are botocore's (:class:`botocore.eventstream.EventStreamBuffer`). An
    ``exception`` or ``error`` frame raises :class:`ProviderStreamError` with the status the same
    failure has as an HTTP error; events decoded earlier in the same ``feed`` call are dropped with
    it, since the answer is failing anyway.
    """

    def __init__(self) -> None:
        from botocore.eventstream import EventStreamBuffer, ParserError

        self._buffer = EventStreamBuffer()
        self._parser_error = ParserError

    def feed(self, data: bytes) -> list[tuple[str, JsonObj]]:
        self._buffer.add_data(data)
        events: list[tuple[str, JsonObj]] = []
        try:
            for message in self._buffer:
                event = _frame_event(message.headers, message.payload)
                if event is not None:
                    events.append(event)
        except self._parser_error as exc:
            raise ProviderStreamError(502, f"Bedrock sent a malformed event stream: {exc}", kind=_INVALID) from exc
        return events


def _frame_event(headers: Mapping[str, object], payload: bytes) -> tuple[str, JsonObj] | None:
    message_type = headers.get(":message-type")
    if message_type == "error":
        code = str(headers.get(":error-code") or "error")
        raise ProviderStreamError(500, str(headers.get(":error-message") or code), kind=code)
    body = _payload(payload)
    if message_type == "exception":
        kind = str(headers.get(":exception-type") or "exception")
        message = body.get("message") or body.get("Message") or kind
        raise ProviderStreamError(_EXCEPTION_STATUS.get(kind, 500), str(message), kind=kind)
    if message_type != "event":
        return None
    return str(headers.get(":event-type") or ""), body


def _payload(payload: bytes) -> JsonObj:
    if not payload:
        return {}
    try:
        value = _decode(payload)
    except msgspec.DecodeError as exc:
        raise ProviderStreamError(502, "Bedrock sent an event whose payload is not JSON.", kind=_INVALID) from exc
    if not isinstance(value, dict):
        raise ProviderStreamError(502, "Bedrock sent an event whose payload is not an object.", kind=_INVALID)
    return value


# -- request: URL, SigV4, credentials ----------------------------------------------------------------


def converse_url(region: str, model_id: str, *, stream: bool, endpoint: str | None = None) -> str:
    """The Converse (or ConverseStream) URL; ``endpoint`` replaces the regional base (tests, VPC endpoints).

    The model id is one path segment, so ``:`` and the ``/`` of ARNs are percent-encoded, as the
    AWS SDKs do (the signature is computed over that encoded path).
    """
    if endpoint:
        base = endpoint.rstrip("/")
    else:
        if not _REGION.fullmatch(region or ""):
            raise ConfigError(f"Bedrock needs an AWS region such as us-east-1, got {region!r}.")
        base = f"https://bedrock-runtime.{region}.amazonaws.com"
    operation = "converse-stream" if stream else "converse"
    return f"{base}/model/{quote(model_id, safe='')}/{operation}"


def sign(
    method: str, url: str, headers: dict[str, str], body: bytes, *, region: str, credentials: Credentials | None
) -> dict[str, str]:
    """The headers to send: ``headers`` plus SigV4's (``Authorization``, ``X-Amz-Date`` and, for
    temporary credentials, ``X-Amz-Security-Token``) for service ``bedrock``.

    Every header given here is signed, so pass the ones that must not change in transit and add
    hop-specific ones (``content-length``, ``user-agent``) afterwards.
    """
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    if credentials is None:
        raise ConfigError("Bedrock requests need AWS credentials (none were found for this function).")
    # One consistent key/secret/token triple even if a refresh happens while signing.
    frozen = credentials.get_frozen_credentials() if hasattr(credentials, "get_frozen_credentials") else credentials
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    SigV4Auth(frozen, "bedrock", region).add_auth(request)
    return {name: value.decode() if isinstance(value, bytes) else value for name, value in request.headers.items()}


def role_credentials() -> Credentials:
    """The credentials of the function's IAM role (or the environment / profile when run locally).

    botocore's default chain, so temporary role credentials refresh themselves before expiry.
    Blocking (it may call the instance metadata service): run it off the event loop.
    """
    import botocore.session

    credentials = botocore.session.get_session().get_credentials()
    if credentials is None:
        raise ConfigError("No AWS credentials found for Bedrock (IAM role, environment or profile).")
    return credentials


# -- errors ------------------------------------------------------------------------------------------


def error_message(body: JsonObj) -> str:
    """The human part of a Bedrock error body (``{"message": ...}``; some AWS front ends say ``Message``)."""
    for key in ("message", "Message"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    return str(body)[:500]
