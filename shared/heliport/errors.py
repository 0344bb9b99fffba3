"""The exception tree, and the one place errors become HTTP responses.

::

    HeliportError                      status  code
    ├── RequestError                   4xx     (the caller can fix it)
    │   ├── InvalidHeaderError         400     invalid_header        (names the header)
    │   ├── InvalidBodyError           400/413 invalid_body
    │   │   └── JsonTooDeepError       400     json_too_deep         (HELIPORT_MAX_JSON_DEPTH; names the field)
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

Deeply nested JSON: every JSON decoder in Python (msgspec, the standard library's) recurses once per
level and raises RecursionError near the interpreter's recursion limit, so without a check a body of
``[`` x 100,000 was a 500. Each surface that decodes a body decodes it once, maps the decoder's
RecursionError to :class:`JsonTooDeepError`, and checks the decoded value against
``HELIPORT_MAX_JSON_DEPTH`` with :func:`json_depth_exceeds` (a walk over the containers only; no
second parse). :func:`deep_json_path` and :func:`deep_json_key` find where, for the message only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import msgspec

__all__ = [
    "AuthenticationError",
    "HeliportError",
    "InvalidBodyError",
    "InvalidHeaderError",
    "JsonTooDeepError",
    "MethodNotAllowedError",
    "RateLimitedError",
    "RequestError",
    "RouteNotFoundError",
    "TargetRefusedError",
    "UpstreamConnectError",
    "UpstreamError",
    "UpstreamTimeoutError",
    "deep_json_key",
    "deep_json_path",
    "json_depth_exceeds",
]


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


class JsonTooDeepError(InvalidBodyError):
    """A JSON body nested more than ``limit`` levels deep.

    ``param`` names where, when it is known. The body's ``type`` is OpenAI's ``invalid_request_error``,
    what OpenAI itself answers for a body it cannot take; ``code`` says which problem it is.
    """

    code = "json_too_deep"

    def __init__(self, limit: int, *, param: str | None = None) -> None:
        where = f" (at {param})" if param else ""
        super().__init__(
            f"The body is JSON nested more than {limit} levels deep{where}; deeper JSON is refused "
            "(HELIPORT_MAX_JSON_DEPTH).",
            param=param,
        )

    def body(self) -> bytes:
        return msgspec.json.encode(
            {
                "error": {
                    "message": self.message,
                    "type": "invalid_request_error",
                    "param": self.param,
                    "code": self.code,
                }
            }
        )


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


# -- JSON depth ----------------------------------------------------------------------------------------

#: The container types a decoded JSON value is made of (msgspec and ``json`` build exactly these).
_CONTAINERS = frozenset((dict, list))


def json_depth_exceeds(value: object, limit: int) -> bool:
    """True when decoded JSON ``value`` nests objects and arrays more than ``limit`` deep (``{}`` is 1).

    One level at a time, over containers only: each level's children that are containers make the next
    level, so the cost is one type check per value and the walk stops at ``limit + 1`` levels. Measured
    with ``timeit`` against msgspec's own decode, which it follows, on the slow cores of
    docs/benchmarks.md: a 111-byte chat body, 1.1 us (decode 0.3); a 56 KB agent body (150 messages,
    20 tool schemas), 136 us (decode 80); 20 MB of 20,000 long messages, 7 ms (decode 12).
    """
    level: list[Any] = [value] if type(value) in _CONTAINERS else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[Any] = []
        for node in level:
            children: Iterable[Any] = node.values() if type(node) is dict else node
            below += [child for child in children if type(child) in _CONTAINERS]
        level = below
    return False


def deep_json_path(value: object, limit: int, *, segments: int = 4) -> str | None:
    """Where ``value`` nests past ``limit``, as ``tools[0].function.parameters`` (at most ``segments``
    steps): for an error message, after :func:`json_depth_exceeds` said so. None at the top level."""
    parts: list[str] = []
    node: Any = value
    room = limit
    while len(parts) < segments and type(node) in _CONTAINERS:
        children: Iterable[tuple[Any, Any]] = node.items() if isinstance(node, dict) else enumerate(node)
        found = next(((k, c) for k, c in children if json_depth_exceeds(c, room - 1)), None)
        if found is None:
            break
        key, node = found
        room -= 1
        parts.append(f"[{key}]" if isinstance(key, int) else ("." if parts else "") + str(key))
    return "".join(parts) or None


#: A key (a string before ``:``), any other string, or a bracket; strings are skipped whole.
_JSON_TOKEN = re.compile(rb'"([^"\\]*(?:\\.[^"\\]*)*)"\s*:|"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
#: How much of a body :func:`deep_json_key` reads: it runs on an error path, so its cost is bounded.
_KEY_SCAN_BYTES = 64 * 1024


def deep_json_key(body: bytes, limit: int) -> str | None:
    """The top-level key of the object in ``body`` under which the nesting first passes ``limit``.

    For a body the decoder gave up on (RecursionError): there is no decoded value to walk, so the raw
    text is scanned, strings skipped, up to its first 64 KiB. None when the body is not an object, or
    the point is further in.
    """
    depth = 0
    key: bytes | None = None
    for token in _JSON_TOKEN.finditer(body, 0, min(len(body), _KEY_SCAN_BYTES)):
        text = token.group()
        if token.group(1) is not None:
            if depth == 1:
                key = token.group(1)
        elif text in (b"{", b"["):
            depth += 1
            if depth > limit:
                break
        elif text in (b"}", b"]"):
            depth -= 1
    else:
        return None
    if key is None:
        return None
    try:
        name: str = msgspec.json.decode(b'"' + key + b'"')
    except msgspec.DecodeError:
        return None
    return name
