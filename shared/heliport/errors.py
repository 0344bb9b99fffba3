"""The exception tree, and the one place errors become HTTP responses.

::

    HeliportError                      status  code
    ├── RequestError                   4xx     (the caller can fix it)
    │   ├── InvalidHeaderError         400     invalid_header        (names the header)
    │   ├── InvalidBodyError           400/413 invalid_body
    │   ├── TargetRefusedError         400     target_refused        (SSRF guard)
    │   ├── AuthenticationError        401     invalid_api_key
    │   ├── RouteNotFoundError         404     not_found
    │   └── MethodNotAllowedError      405     method_not_allowed
    ├── RateLimitedError               429     rate_limited          (Helicone-RateLimit-Policy)
    └── UpstreamError                  5xx     (the provider could not be reached)
        ├── UpstreamConnectError       502     upstream_unreachable
        └── UpstreamTimeoutError       504     upstream_timeout      (also a TimeoutError)

Bodies use OpenAI's error shape, ``{"error": {"message", "type", "param", "code"}}``, because every
OpenAI-compatible SDK already knows how to show it. Configuration errors (``config.ConfigError``)
are an operator's problem and stay outside the tree.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import msgspec

__all__ = [
    "AuthenticationError",
    "HeliportError",
    "InvalidBodyError",
    "InvalidHeaderError",
    "MethodNotAllowedError",
    "RateLimitedError",
    "RequestError",
    "RouteNotFoundError",
    "TargetRefusedError",
    "UpstreamConnectError",
    "UpstreamError",
    "UpstreamTimeoutError",
    "send_error",
]

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class HeliportError(Exception):
    """Root of every runtime failure heliport reports to a client."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def body(self) -> bytes:
        return msgspec.json.encode(
            {"error": {"message": self.message, "type": self.code, "param": self.param, "code": self.code}}
        )


class RequestError(HeliportError):
    status = 400
    code = "invalid_request"


class InvalidHeaderError(RequestError):
    code = "invalid_header"

    def __init__(self, header: str, problem: str) -> None:
        super().__init__(f"Invalid {header} header: {problem}", param=header)


class InvalidBodyError(RequestError):
    code = "invalid_body"

    def __init__(self, message: str, *, status: int = 400, param: str | None = None) -> None:
        super().__init__(message, param=param)
        self.status = status


class TargetRefusedError(RequestError):
    code = "target_refused"


class AuthenticationError(RequestError):
    status = 401
    code = "invalid_api_key"


class RouteNotFoundError(RequestError):
    status = 404
    code = "not_found"


class MethodNotAllowedError(RequestError):
    status = 405
    code = "method_not_allowed"


class RateLimitedError(HeliportError):
    """The caller's own Helicone-RateLimit-Policy refused the request; the upstream was not called."""

    status = 429
    code = "rate_limited"


class UpstreamError(HeliportError):
    status = 502
    code = "upstream_error"


class UpstreamConnectError(UpstreamError):
    code = "upstream_unreachable"


class UpstreamTimeoutError(UpstreamError, TimeoutError):
    status = 504
    code = "upstream_timeout"


async def send_error(send: Send, error: HeliportError, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """Send ``error`` as a complete JSON response."""
    body = error.body()
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"helicone-error", error.code.encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
