"""The fuzz corpus: malformed inputs for every route family, in one place so its size can be counted.

A :class:`Case` is one request: a body (raw bytes, sent as given), extra headers, and optionally a
different method, request-target or query string. Cases whose bytes httpx refuses to send, or would
normalise away (control characters and raw non-ASCII octets in header values, dot segments,
percent junk, unknown methods), are marked ``raw`` and written to a socket as given. A realtime
handshake is a :class:`WsCase`. Markers stand for what only the running fixture knows: ``@KEY@``
(the heliport key, in headers, paths and bodies), ``@RID@`` (a stored request id), ``@DEEP@`` and
``@DEEP_URL@`` (a stored request whose body is nested 1,000 deep, and its signed body URL),
``@UPSTREAM@`` (the upstream's origin, a fallback target heliport trusts).

Categories (the prefix of every case id):

* ``body:``   deep nesting (arrays and objects 1,000 and 100,000 deep, bare and inside a valid
  body), encodings (invalid UTF-8, UTF-16/32 with BOM, UTF-8 BOM, latin-1, NUL bytes, overlong
  sequences, CESU surrogates, escaped lone surrogates), control characters, wrong top-level types,
  huge numbers (1e400, 10**400, -0, NaN/Infinity literals), empty, truncated and otherwise invalid
  JSON, duplicate keys.
* ``size:``   a body one byte over the cap (with a Content-Length, and chunked), one exactly at it.
* ``field:``  a valid body of the route with one field replaced by a wrong value (null, booleans,
  numbers as strings, arrays for objects, huge numbers, NaN, lone surrogates, NUL...).
* ``ctype:``  wrong Content-Type, Content-Encoding gzip/br with junk.
* ``header:`` malformed ``Helicone-*`` header values (fallbacks with CR/LF, deep JSON, huge
  numbers; rate-limit policies; cache and retry numbers; targets), raw octets in header values.
* ``wire:``   bytes the HTTP or WebSocket server (uvicorn: httptools, websockets) parses before any
  heliport code runs: control characters in header values and in the request line, raw non-ASCII
  in the path, an unknown method token, malformed ``Sec-WebSocket-Protocol`` lists. One route per
  family gets them (the parser is the same for all).
* ``stored:`` reading back a stored request whose body is JSON nested 1,000 deep.
* ``auth:``   unusable credentials (scheme without key, other schemes, unknown keys, junk keys in
  the header, the path or a subprotocol): each must be a 401.
* ``method:`` every other method (405 where the route is not a pass-through).
* ``path:``   very long paths and query strings, percent-encoding junk, dot segments, odd
  request-target forms, bad request ids and signed-URL parameters.
* ``cache+``, ``stream-usage+``, ``fallback-override+``: the odd bodies again with the
  header-activated feature that parses the body a second time (cache key, ``stream_options``,
  ``bodyKeyOverride``).
* Realtime only: ``query:`` (Azure and OpenAI query strings), ``subprotocol:``.

:func:`sizes` counts the cases per family.
"""

from __future__ import annotations

import copy
import functools
import gzip
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from heliport.config import Settings

#: The query API's body cap (``HELIPORT_MAX_QUERY_BODY_BYTES``, its default).
API_BODY_CAP = Settings.max_query_body_bytes

__all__ = [
    "API_BODY_CAP",
    "API_ROUTES",
    "ASYNC_LOG_ROUTES",
    "DASHBOARD_ROUTES",
    "DEEP",
    "DEEP_URL",
    "GATEWAY_ROUTES",
    "KEY",
    "PROXY_ROUTES",
    "REQUEST_CAP",
    "RID",
    "UPSTREAM",
    "Case",
    "Route",
    "WsCase",
    "api_cases",
    "async_log_cases",
    "dashboard_cases",
    "gateway_cases",
    "proxy_cases",
    "realtime_cases",
    "sizes",
]

#: The request size cap of the fuzzed heliport (``Settings.max_request_bytes``; 32 MiB by default).
#: 1 MiB keeps the over-cap cases fast and still lets the 100,000-deep bodies (<= 600 KB) through
#: to the parsers.
REQUEST_CAP = 1 << 20
#: Replaced by the fixture's heliport key.
KEY = "@KEY@"
#: Replaced by the id of a request the fixture stored.
RID = "@RID@"
#: Replaced by the id of a stored request whose stored response body is JSON nested 1,000 deep,
#: and by the signed body URL (path and query) of that request.
DEEP = "@DEEP@"
DEEP_URL = "@DEEP_URL@"
#: Replaced by the id of a stored dataset (holding the ``@RID@`` request).
DATASET = "@DATASET@"
#: Replaced by the upstream's origin (a fallback target heliport may reach).
UPSTREAM = "@UPSTREAM@"
#: URLs (request line) longer than this are refused by the HTTP server's parser before heliport
#: sees them, so the long paths and queries stay just under it.
LONG = 60_000
#: The same for a WebSocket handshake: the websockets parser refuses request and header lines over
#: 8,192 bytes before heliport sees them.
WS_LONG = 8_000

JSON = b"application/json"


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    #: Sent as given; None sends no body at all.
    body: bytes | None = None
    headers: tuple[tuple[bytes, bytes], ...] = ()
    content_type: bytes | None = JSON
    #: None: the route's own method.
    method: str | None = None
    #: The whole request-target (path and query, already encoded), replacing the route's.
    target: bytes | None = None
    #: Appended to the route's path (``?query``, ``/segment``...), already encoded.
    suffix: bytes = b""
    #: Bytes httpx will not send, or would rewrite: written to a raw socket.
    raw: bool = False
    #: Sent with Transfer-Encoding: chunked (no Content-Length).
    chunked: bool = False
    #: Whether the family's usual credential header is added.
    auth: bool = True
    #: The exact status the contract names, when it names one.
    expect: int | None = None
    #: "root" when the request-target leaves the route family's prefix, so heliport's top-level
    #: router answers (in its own error shape) instead of the family.
    surface: str | None = None


@dataclass(frozen=True, slots=True)
class WsCase:
    id: str
    headers: tuple[tuple[bytes, bytes], ...] = ()
    subprotocols: tuple[str, ...] = ()
    target: bytes = b"/v1/gateway/oai/realtime?model=gpt-realtime"
    raw: bool = False
    auth: bool = True
    expect: int | None = None


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    method: str
    path: str
    #: A valid body, the base of the ``field:`` mutations (None: the route takes no body).
    template: dict[str, Any] | None = None
    #: Paths into ``template`` to mutate, and the value set for each: "core" or "full" replace the
    #: value, "keys" the object key that ends the path.
    fields: tuple[tuple[tuple[str | int, ...], str], ...] = ()
    #: Request headers the route needs besides the credential.
    headers: tuple[tuple[bytes, bytes], ...] = ()


# --- building blocks ---------------------------------------------------------------------------------


def deep_array(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_object(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


_SLOT = "\x01fuzz-slot\x01"


def with_literal(template: dict[str, Any], path: Sequence[str | int], literal: bytes, *, key: bool = False) -> bytes:
    """``template`` as compact JSON with the value at ``path`` (or, with ``key``, the object key that
    ends ``path``) replaced by ``literal``, raw JSON text: so 1e400, NaN, ``"\\ud800"`` and 100,000
    brackets can be written, which ``json.dumps`` cannot."""
    doc = copy.deepcopy(template)
    node: Any = doc
    for step in path[:-1]:
        node = node[step]
    last = path[-1]
    if key:
        node[_SLOT] = node.pop(last)
    else:
        node[last] = _SLOT
    encoded = json.dumps(doc, separators=(",", ":")).encode()
    slot = json.dumps(_SLOT).encode()
    assert encoded.count(slot) == 1
    return encoded.replace(slot, literal)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


# Values put in place of a field. "core" for templates with many fields, "full" for the main ones.
CORE_VALUES: dict[str, bytes] = {
    "null": b"null",
    "true": b"true",
    "numeric-string": b'"1"',
    "array": b"[]",
    "object": b"{}",
    "1e400": b"1e400",
    "int-10e400": b"1" + b"0" * 400,
    "NaN": b"NaN",
    "Infinity": b"Infinity",
    "neg-zero": b"-0",
    "lone-surrogate": b'"\\ud800"',
    "nul-escaped": b'"a\\u0000b"',
    "deep-array-1000": deep_array(1000),
}
FULL_VALUES: dict[str, bytes] = {
    **CORE_VALUES,
    "false": b"false",
    "zero": b"0",
    "minus-one": b"-1",
    "float": b"0.5",
    "empty-string": b'""',
    "bool-string": b'"true"',
    "array-of-null": b"[null]",
    "empty-key-object": b'{"":null}',
    "-1e400": b"-1e400",
    "1e-400": b"1e-400",
    "-Infinity": b"-Infinity",
    "low-surrogate-first": b'"\\udc00\\ud800"',
    "ansi-control-escapes": b'"\\u001b[2J\\u0007\\r\\n\\u007f"',
    "string-64k": b'"' + b"x" * 65536 + b'"',
    "deep-object-1000": deep_object(1000),
}
VALUE_SETS = {"core": CORE_VALUES, "full": FULL_VALUES}
#: Object keys put in place of a key (property names, score names, sort keys).
KEY_VALUES: dict[str, bytes] = {
    "empty": b'""',
    "nul": b'"\\u0000"',
    "lone-surrogate": b'"\\ud800"',
    "ansi": b'"\\u001b[31m"',
    "long-64k": b'"' + b"k" * 65536 + b'"',
}


@functools.cache
def _json_bodies(cap: int) -> tuple[Case, ...]:
    return tuple(_make_json_bodies(cap))


def json_bodies(cap: int) -> list[Case]:
    """Bodies any JSON route meets: nesting, size, encodings, control characters, types, numbers,
    empty and invalid JSON, duplicate keys (built once per cap: some are hundreds of KB)."""
    return list(_json_bodies(cap))


def _make_json_bodies(cap: int) -> list[Case]:
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    pad_at_cap = cap - len(_dumps({**chat, "pad": ""}))
    at_cap = _dumps({**chat, "pad": "x" * pad_at_cap})
    assert len(at_cap) == cap
    over_cap = _dumps({**chat, "pad": "x" * (pad_at_cap + 1)})
    bodies: list[tuple[str, bytes]] = [
        # nesting
        ("deep-array-1000", deep_array(1000)),
        ("deep-array-100000", deep_array(100_000)),
        ("deep-object-1000", deep_object(1000)),
        ("deep-object-100000", deep_object(100_000)),
        ("deep-array-in-body-1000", with_literal(chat, ("messages",), deep_array(1000))),
        ("deep-array-in-body-100000", with_literal(chat, ("messages",), deep_array(100_000))),
        ("deep-object-in-body-1000", with_literal(chat, ("metadata",), deep_object(1000))),
        ("deep-object-in-body-100000", with_literal(chat, ("metadata",), deep_object(100_000))),
        ("deep-unclosed-100000", b"[" * 100_000),
        ("deep-mixed-1000", b'[{"a":' * 500 + b"1" + b"}]" * 500),
        # encodings
        ("invalid-utf8", b'{"model":"\xff\xfe\xfd","messages":[]}'),
        ("invalid-utf8-in-key", b'{"\xc3\x28":1}'),
        ("utf16-le-bom", json.dumps(chat).encode("utf-16")),
        ("utf16-be-bom", b"\xfe\xff" + json.dumps(chat).encode("utf-16-be")),
        ("utf32-bom", json.dumps(chat).encode("utf-32")),
        ("utf8-bom", b"\xef\xbb\xbf" + _dumps(chat)),
        ("latin1", '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"café ñ"}]}'.encode("latin-1")),
        ("nul-bytes-raw", b'{"model":"gpt\x00-4o-mini","messages":[]}'),
        ("nul-bytes-only", b"\x00" * 64),
        ("nul-escaped", b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"a\\u0000b"}]}'),
        ("nul-escaped-key", b'{"\\u0000":1,"model":"gpt-4o-mini"}'),
        ("overlong-slash", b'{"model":"\xc0\xaf","messages":[]}'),
        ("overlong-nul", b'{"model":"\xc0\x80","messages":[]}'),
        ("overlong-3-byte", b'{"model":"\xe0\x80\xaf","messages":[]}'),
        ("cesu-surrogate-raw", b'{"model":"\xed\xa0\x80","messages":[]}'),
        ("lone-surrogate-escaped", b'{"model":"\\ud800","messages":[{"role":"user","content":"\\ud800"}]}'),
        ("lone-low-surrogate-escaped", b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"\\udfff"}]}'),
        ("lone-surrogate-key", b'{"\\ud800":1,"model":"gpt-4o-mini"}'),
        ("truncated-escape", b'{"model":"\\u12'),
        # control characters
        ("ctl-raw-in-string", b'{"model":"a\x01\x1b\x1fb","messages":[]}'),
        ("ctl-escaped-in-string", b'{"model":"\\u0001\\u001b[2J\\r\\n\\u007f","messages":[]}'),
        ("ctl-raw-whitespace", b'\x0b{\x0c"model"\x1c:"x"}'),
        # wrong top-level types
        ("top-array", b"[]"),
        ("top-array-of-object", b'[{"model":"gpt-4o-mini"}]'),
        ("top-null", b"null"),
        ("top-true", b"true"),
        ("top-number", b"1"),
        ("top-string", b'"gpt-4o-mini"'),
        # huge numbers
        ("top-1e400", b"1e400"),
        ("value-1e400", b'{"model":"gpt-4o-mini","temperature":1e400,"messages":[]}'),
        ("value-minus-1e400", b'{"model":"gpt-4o-mini","max_tokens":-1e400,"messages":[]}'),
        ("value-int-10e400", b'{"model":"gpt-4o-mini","max_tokens":1' + b"0" * 400 + b',"messages":[]}'),
        ("value-int-5000-digits", b'{"model":"gpt-4o-mini","seed":' + b"9" * 5000 + b',"messages":[]}'),
        ("value-neg-zero", b'{"model":"gpt-4o-mini","temperature":-0,"n":-0.0,"messages":[]}'),
        ("value-nan", b'{"model":"gpt-4o-mini","temperature":NaN,"messages":[]}'),
        ("value-infinity", b'{"model":"gpt-4o-mini","temperature":Infinity,"top_p":-Infinity,"messages":[]}'),
        ("value-1e-400", b'{"model":"gpt-4o-mini","temperature":1e-400,"messages":[]}'),
        # empty, truncated, invalid
        ("empty", b""),
        ("whitespace", b" \r\n\t "),
        ("truncated-object", b'{"model":"gpt-4o-mini","messages":[{"role":"us'),
        ("truncated-after-key", b'{"model":'),
        ("trailing-garbage", b'{"model":"gpt-4o-mini"}xyz'),
        ("two-documents", b'{"model":"gpt-4o-mini"}{"model":"gpt-4o-mini"}'),
        ("trailing-comma", b'{"model":"gpt-4o-mini",}'),
        ("single-quotes", b"{'model':'gpt-4o-mini'}"),
        ("comment", b'{"model":"gpt-4o-mini" /* hi */}'),
        ("unquoted-key", b"{model:1}"),
        ("binary-junk", bytes(range(256))),
        # duplicate keys
        ("duplicate-keys", b'{"model":"gpt-4o-mini","model":"x","messages":[],"messages":{}}'),
        (
            "duplicate-keys-type-change",
            b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"model":null}',
        ),
        ("duplicate-keys-10000", b'{"model":"gpt-4o-mini",' + b'"a":1,' * 10000 + b'"messages":[]}'),
        ("many-keys-50000", _dumps({**chat, **{f"k{i}": i for i in range(50_000)}})),
    ]
    cases = [Case("body:" + name, body=body) for name, body in bodies]
    cases += [
        Case("size:over-cap", body=over_cap, expect=413),
        Case("size:over-cap-chunked", body=over_cap, chunked=True, expect=413),
        Case("size:at-cap", body=at_cap),
    ]
    return cases


def field_cases(route: Route) -> list[Case]:
    """The route's valid body with one field at a time replaced by each wrong value."""
    if route.template is None:
        return []
    cases = [Case("field:baseline", body=_dumps(route.template))]
    for path, value_set in route.fields:
        label = ".".join(str(p) for p in path)
        if value_set == "keys":
            cases += [
                Case(f"field:{label}<key>={name}", body=with_literal(route.template, path, literal, key=True))
                for name, literal in KEY_VALUES.items()
            ]
            continue
        cases += [
            Case(f"field:{label}={name}", body=with_literal(route.template, path, literal))
            for name, literal in VALUE_SETS[value_set].items()
        ]
    return cases


def content_type_cases(valid: bytes) -> list[Case]:
    junk = b"\x1f\x8b\x08\x00junk that is not deflate data"
    return [
        Case("ctype:missing", body=valid, content_type=None),
        Case("ctype:text-plain", body=valid, content_type=b"text/plain"),
        Case(
            "ctype:form", body=b"model=gpt-4o-mini&messages=%5B%5D", content_type=b"application/x-www-form-urlencoded"
        ),
        Case(
            "ctype:multipart",
            body=b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-4o-mini\r\n--b--\r\n',
            content_type=b"multipart/form-data; boundary=b",
        ),
        Case(
            "ctype:json-charset-utf16",
            body=valid.decode().encode("utf-16"),
            content_type=b"application/json; charset=utf-16",
        ),
        Case("ctype:junk-value", body=valid, content_type=b";;;=;"),
        Case("ctype:octet-stream", body=bytes(range(256)), content_type=b"application/octet-stream"),
        Case("ctype:gzip-junk", body=junk, headers=((b"Content-Encoding", b"gzip"),)),
        Case("ctype:gzip-valid", body=gzip.compress(valid), headers=((b"Content-Encoding", b"gzip"),)),
        Case("ctype:br-junk", body=b"\xce\xb2\x00junk", headers=((b"Content-Encoding", b"br"),)),
        Case("ctype:encoding-chain", body=junk, headers=((b"Content-Encoding", b"gzip, deflate, identity, x-junk"),)),
    ]


_FALLBACK = {"target-url": UPSTREAM, "headers": {"authorization": "Bearer sk-x"}, "onCodes": [500]}


def _fallbacks(path: Sequence[str | int], literal: bytes, *, key: bool = False) -> bytes:
    return with_literal({"list": [copy.deepcopy(_FALLBACK)]}, ("list", 0, *path), literal, key=key)[8:-1]


def header_cases() -> list[Case]:
    """Malformed ``Helicone-*`` header values."""
    digits = b"9" * 5000
    h: list[tuple[str, tuple[tuple[bytes, bytes], ...]]] = [
        ("request-id-not-uuid", ((b"Helicone-Request-Id", b"not-a-uuid"),)),
        ("request-id-traversal", ((b"Helicone-Request-Id", b"../../etc/passwd"),)),
        ("request-id-64k", ((b"Helicone-Request-Id", b"a" * 65536),)),
        ("fallbacks-not-json", ((b"Helicone-Fallbacks", b"{nope"),)),
        ("fallbacks-empty-array", ((b"Helicone-Fallbacks", b"[]"),)),
        ("fallbacks-object", ((b"Helicone-Fallbacks", b"{}"),)),
        ("fallbacks-array-of-null", ((b"Helicone-Fallbacks", b"[null]"),)),
        ("fallbacks-deep-array-1000", ((b"Helicone-Fallbacks", deep_array(1000)),)),
        ("fallbacks-deep-object-1000", ((b"Helicone-Fallbacks", b"[" + deep_object(1000) + b"]"),)),
        (
            "fallbacks-body-override-deep-1000",
            ((b"Helicone-Fallbacks", _fallbacks(("bodyKeyOverride",), deep_object(1000))),),
        ),
        (
            "fallbacks-crlf-in-header-value",
            ((b"Helicone-Fallbacks", _fallbacks(("headers", "authorization"), b'"Bearer x\\r\\nX-Injected: 1"')),),
        ),
        (
            "fallbacks-lf-in-header-value",
            ((b"Helicone-Fallbacks", _fallbacks(("headers", "authorization"), b'"Bearer x\\nX-Injected: 1"')),),
        ),
        (
            "fallbacks-crlf-in-header-name",
            ((b"Helicone-Fallbacks", _fallbacks(("headers", "authorization"), b'"x\\r\\ny"', key=True)),),
        ),
        (
            "fallbacks-nul-in-header-value",
            ((b"Helicone-Fallbacks", _fallbacks(("headers", "authorization"), b'"a\\u0000b"')),),
        ),
        (
            "fallbacks-empty-header-name",
            ((b"Helicone-Fallbacks", _fallbacks(("headers", "authorization"), b'""', key=True)),),
        ),
        (
            "fallbacks-crlf-in-target-url",
            ((b"Helicone-Fallbacks", _fallbacks(("target-url",), b'"@UPSTREAM@/v1\\r\\nHost: evil"')),),
        ),
        ("fallbacks-lone-surrogate-target", ((b"Helicone-Fallbacks", _fallbacks(("target-url",), b'"\\ud800"')),)),
        ("fallbacks-target-file", ((b"Helicone-Fallbacks", _fallbacks(("target-url",), b'"file:///etc/passwd"')),)),
        (
            "fallbacks-target-metadata",
            ((b"Helicone-Fallbacks", _fallbacks(("target-url",), b'"http://169.254.169.254/latest"')),),
        ),
        ("fallbacks-oncodes-1e400", ((b"Helicone-Fallbacks", _fallbacks(("onCodes", 0), b"1e400")),)),
        ("fallbacks-oncodes-int-10e400", ((b"Helicone-Fallbacks", _fallbacks(("onCodes", 0), b"1" + b"0" * 400)),)),
        ("fallbacks-oncodes-nan", ((b"Helicone-Fallbacks", _fallbacks(("onCodes", 0), b"NaN")),)),
        ("fallbacks-range-reversed", ((b"Helicone-Fallbacks", _fallbacks(("onCodes", 0), b'{"from":599,"to":400}')),)),
        ("fallbacks-headers-null", ((b"Helicone-Fallbacks", _fallbacks(("headers",), b"null")),)),
        ("ratelimit-empty", ((b"Helicone-RateLimit-Policy", b""),)),
        ("ratelimit-1e400", ((b"Helicone-RateLimit-Policy", b"1e400;w=60"),)),
        ("ratelimit-nan", ((b"Helicone-RateLimit-Policy", b"NaN;w=60"),)),
        ("ratelimit-negative", ((b"Helicone-RateLimit-Policy", b"-1;w=60"),)),
        ("ratelimit-window-5000-digits", ((b"Helicone-RateLimit-Policy", b"10;w=" + digits),)),
        ("ratelimit-quota-5000-digits", ((b"Helicone-RateLimit-Policy", digits + b";w=60"),)),
        ("ratelimit-empty-segment", ((b"Helicone-RateLimit-Policy", b"10;w=60;s="),)),
        ("ratelimit-junk-params", ((b"Helicone-RateLimit-Policy", b"10;;;w=60;=;u="),)),
        ("cache-bucket-1e400", ((b"Helicone-Cache-Enabled", b"true"), (b"Helicone-Cache-Bucket-Max-Size", b"1e400"))),
        (
            "cache-bucket-5000-digits",
            ((b"Helicone-Cache-Enabled", b"true"), (b"Helicone-Cache-Bucket-Max-Size", digits)),
        ),
        ("cache-bucket-neg-zero", ((b"Helicone-Cache-Enabled", b"true"), (b"Helicone-Cache-Bucket-Max-Size", b"-0"))),
        ("cache-enabled-junk", ((b"Helicone-Cache-Enabled", b"yes please"),)),
        (
            "cache-ignore-keys-quotes",
            ((b"Helicone-Cache-Enabled", b"true"), (b"Helicone-Cache-Ignore-Keys", b'""",,"')),
        ),
        ("cache-control-max-age-1e400", ((b"Helicone-Cache-Enabled", b"true"), (b"Cache-Control", b"max-age=1e400"))),
        (
            "cache-control-max-age-5000-digits",
            ((b"Helicone-Cache-Enabled", b"true"), (b"Cache-Control", b"max-age=" + digits)),
        ),
        ("cache-seed-64k", ((b"Helicone-Cache-Enabled", b"true"), (b"Helicone-Cache-Seed", b"s" * 65536))),
        ("retry-num-1e400", ((b"Helicone-Retry-Enabled", b"true"), (b"Helicone-Retry-Num", b"1e400"))),
        ("retry-num-5000-digits", ((b"Helicone-Retry-Enabled", b"true"), (b"Helicone-Retry-Num", digits))),
        ("retry-factor-nan", ((b"Helicone-Retry-Enabled", b"true"), (b"Helicone-Retry-Factor", b"NaN"))),
        ("retry-factor-inf", ((b"Helicone-Retry-Enabled", b"true"), (b"Helicone-Retry-Factor", b"inf"))),
        ("retry-min-over-max", ((b"Helicone-Retry-Min-Timeout", b"5000"), (b"Helicone-Retry-Max-Timeout", b"10"))),
        ("omit-request-junk", ((b"Helicone-Omit-Request", b"maybe"),)),
        ("stream-usage-junk", ((b"Helicone-Stream-Usage", b"1"),)),
        ("target-url-file", ((b"Helicone-Target-Url", b"file:///etc/passwd"),)),
        ("target-url-metadata", ((b"Helicone-Target-Url", b"http://169.254.169.254/latest/meta-data"),)),
        ("target-url-not-a-url", ((b"Helicone-Target-Url", b"::::"),)),
        ("target-url-unclosed-bracket", ((b"Helicone-Target-Url", b"http://[::1"),)),
        ("target-url-bad-port", ((b"Helicone-Target-Url", b"http://127.0.0.1:99999999"),)),
        ("api-base-metadata", ((b"Helicone-OpenAI-Api-Base", b"http://169.254.169.254"),)),
        ("api-base-unclosed-bracket", ((b"Helicone-OpenAI-Api-Base", b"https://[::1"),)),
        ("api-base-userinfo", ((b"Helicone-OpenAI-Api-Base", b"https://user:pass@10.0.0.1:-1"),)),
        ("property-64k", ((b"Helicone-Property-Env", b"v" * 65536),)),
        ("property-empty-name", ((b"Helicone-Property-", b"v"),)),
        ("user-id-64k", ((b"Helicone-User-Id", b"u" * 65536),)),
        ("session-path-traversal", ((b"Helicone-Session-Id", b"s"), (b"Helicone-Session-Path", b"/../../../%00"))),
        ("properties-1000", tuple((f"Helicone-Property-P{i}".encode(), b"v") for i in range(1000))),
        (
            "same-header-twice",
            ((b"Helicone-Request-Id", b"00000000-0000-0000-0000-000000000001"), (b"Helicone-Request-Id", b"x")),
        ),
    ]
    cases = [Case("header:" + name, body=None, headers=headers) for name, headers in h]
    raw: list[tuple[str, tuple[tuple[bytes, bytes], ...]]] = [
        ("user-id-invalid-utf8", ((b"Helicone-User-Id", b"\xff\xfe\xfd"),)),
        ("property-latin1", ((b"Helicone-Property-Env", b"caf\xe9"),)),
        ("property-utf8", ((b"Helicone-Property-Env", "日本語 🎉".encode()),)),
        (
            "fallbacks-invalid-utf8",
            ((b"Helicone-Fallbacks", b'[{"target-url":"\xff\xfe","headers":{},"onCodes":[500]}]'),),
        ),
        ("request-id-overlong-utf8", ((b"Helicone-Request-Id", b"\xc0\xaf"),)),
        ("ratelimit-policy-latin1", ((b"Helicone-RateLimit-Policy", b"10;w=60;s=\xe9"),)),
        ("tab-in-value", ((b"Helicone-User-Id", b"a\tb"),)),
    ]
    cases += [Case("header:" + name, body=None, headers=headers, raw=True) for name, headers in raw]
    return cases


def with_body(cases: Iterable[Case], body: bytes) -> list[Case]:
    return [c if c.body is not None else replace(c, body=body) for c in cases]


def wire_cases(header: bytes = b"Helicone-User-Id") -> list[Case]:
    """Control characters in a header value and in the request line, raw UTF-8 in the path, an
    unknown method: the HTTP server parses these bytes before any application code runs."""
    values = {
        "nul": b"a\x00b",
        "soh": b"a\x01b",
        "esc": b"a\x1b[2Jb",
        "del": b"a\x7fb",
        "bare-cr": b"a\rb",
        "bare-lf": b"a\nb",
        "obs-fold": b"a\r\n b",
    }
    cases = [Case(f"wire:header-{name}", headers=((header, value),), raw=True) for name, value in values.items()]
    cases += [
        Case("wire:path-nul", suffix=b"\x00", raw=True),
        Case("wire:path-esc", suffix=b"\x1b", raw=True),
        Case("wire:path-raw-utf8", suffix="/ñ".encode(), raw=True),
        Case("wire:method-unknown", method="FOO", raw=True),
    ]
    return cases


def auth_cases(headers: Sequence[str]) -> list[Case]:
    """Unusable credentials in each of ``headers``: a 401 every time."""
    unknown = "sk-heliport-" + "0" * 48
    values: list[tuple[str, bytes, bool]] = [
        ("bearer-only", b"Bearer", False),
        ("bearer-space", b"Bearer ", True),
        ("empty", b"", False),
        ("basic", b"Basic dXNlcjpwYXNz", False),
        ("unknown-key", f"Bearer {unknown}".encode(), False),
        ("not-a-heliport-key", b"Bearer sk-proj-abc", False),
        ("bearer-bearer", f"Bearer Bearer {KEY}".encode(), False),
        ("key-64k", b"Bearer sk-heliport-" + b"a" * 65536, False),
        ("key-invalid-utf8", b"Bearer sk-heliport-\xff\xfe", True),
        ("key-latin1", b"Bearer sk-heliport-caf\xe9", True),
    ]
    cases = [Case("auth:no-credentials", auth=False, expect=401)]
    for header in headers:
        slug = header.lower()
        cases += [
            Case(f"auth:{slug}-{name}", headers=((header.encode(), value),), auth=False, raw=raw, expect=401)
            for name, value, raw in values
        ]
    return cases


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE")


def method_cases(own: str, *, passthrough: bool = False) -> list[Case]:
    """Every other method; a route that is not a pass-through answers 405 (HEAD is GET's)."""
    cases = []
    for method in _METHODS:
        if method == own or (method == "HEAD" and own == "GET"):
            continue
        cases.append(Case(f"method:{method}", method=method, expect=None if passthrough else 405))
    return cases


def path_cases(path: str, *, exact: bool = False) -> list[Case]:
    """Junk in the request-target around ``path``. With ``exact`` the family owns ``path`` itself,
    not a prefix, so a changed path is answered by heliport's top-level router."""
    p = path.encode()
    head, _, last = p.rpartition(b"/")
    changed = "root" if exact else None
    return [
        Case("path:trailing-slash", suffix=b"/", surface=changed),
        Case("path:double-slash", target=b"/" + p, raw=True, surface="root"),
        Case("path:dot-segments", suffix=b"/../../../../etc/passwd", raw=True, surface=changed),
        Case("path:pct-slash", target=(head or b"/") + b"%2f" + last, raw=True, surface="root" if not head else None),
        Case("path:pct-traversal", suffix=b"/..%2f..%2f..%2fetc%2fpasswd", raw=True, surface=changed),
        Case("path:pct-nul", suffix=b"%00", raw=True, surface=changed),
        Case("path:pct-invalid", suffix=b"%zz%", raw=True, surface=changed),
        Case("path:pct-invalid-utf8", suffix=b"%ff%fe", raw=True, surface=changed),
        Case("path:pct-overlong", suffix=b"%c0%af", raw=True, surface=changed),
        Case("path:pct-lone-surrogate", suffix=b"%ed%a0%80", raw=True, surface=changed),
        Case("path:pct-encoded-route", target=b"".join(b"%%%02x" % c if c != ord("/") else b"/" for c in p), raw=True),
        Case("path:long-60k", suffix=b"/" + b"a" * LONG, raw=True, surface=changed),
        Case("path:long-query-60k", suffix=b"?" + b"a=1&" * (LONG // 4), raw=True),
        Case("path:query-junk", suffix=b"?%zz=%00&&=&a&%ff=%fe&a=1&a=2", raw=True),
        Case("path:query-nul", suffix=b"?model=%00", raw=True),
        Case("path:fragment", suffix=b"#frag", raw=True),
        Case("path:absolute-form", target=b"http://evil.example" + p, raw=True),
        Case("path:asterisk", target=b"*", raw=True, surface="root"),
    ]


def request_id_cases(template: str) -> list[Case]:
    """Bad request ids in a ``/v1/request/{id}...`` path (``template`` has ``{id}``)."""
    ids = {
        "not-uuid": b"not-a-uuid",
        "pct-traversal": b"..%2f..%2fetc%2fpasswd",
        "dot-dot": b"..",
        "pct-nul": b"%00",
        "pct-invalid": b"%zz",
        "pct-invalid-utf8": b"%ff%fe",
        "pct-lone-surrogate": b"%ed%a0%80",
        "braces": b"%7B" + RID.encode() + b"%7D",
        "urn": b"urn:uuid:" + RID.encode(),
        "no-dashes": b"0123456789abcdef0123456789abcdef",
        "newline-suffix": RID.encode() + b"%0a",
        "nul-suffix": RID.encode() + b"%00",
        "long-60k": b"a" * LONG,
        "fullwidth-digits": quote("１２３４５６７８-１２３４-１２３４-１２３４-１２３４５６７８９０１２").encode(),
        "sql": b"'%20OR%201=1--",
        "int-10e400": b"1" + b"0" * 400,
        "negative": b"-1",
    }
    return [
        Case(f"path:id-{name}", target=template.encode().replace(b"{id}", value), raw=True)
        for name, value in ids.items()
    ]


# --- the families ------------------------------------------------------------------------------------

_CHAT_OPENAI = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
    "max_tokens": 16,
    "temperature": 0.5,
    "stream": False,
    "user": "fuzz-user",
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}],
}
_MESSAGES_ANTHROPIC = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 16,
    "system": "be brief",
    "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    "stream": False,
}
_CHAT_FIELDS: tuple[tuple[tuple[str | int, ...], str], ...] = (
    (("model",), "full"),
    (("messages",), "full"),
    (("messages", 1), "core"),
    (("messages", 1, "role"), "core"),
    (("messages", 1, "content"), "full"),
    (("stream",), "full"),
    (("max_tokens",), "core"),
    (("temperature",), "core"),
    (("user",), "core"),
    (("tools",), "core"),
    (("tools", 0, "function"), "core"),
    (("tools", 0, "function", "parameters"), "core"),
)

PROXY_ROUTES = (
    Route(
        "oai-chat",
        "POST",
        "/v1/gateway/oai/v1/chat/completions",
        _CHAT_OPENAI,
        _CHAT_FIELDS,
        ((b"Authorization", b"Bearer sk-provider-fuzz"),),
    ),
    Route(
        "anthropic-messages",
        "POST",
        "/v1/gateway/anthropic/v1/messages",
        _MESSAGES_ANTHROPIC,
        (
            (("model",), "full"),
            (("messages",), "full"),
            (("messages", 0, "content"), "full"),
            (("messages", 0, "content", 0), "core"),
            (("system",), "core"),
            (("stream",), "full"),
            (("max_tokens",), "core"),
        ),
        ((b"x-api-key", b"sk-ant-fuzz"), (b"anthropic-version", b"2023-06-01")),
    ),
    Route(
        "key-in-path",
        "POST",
        f"/{KEY}/v1/gateway/oai/v1/chat/completions",
        _CHAT_OPENAI,
        ((("model",), "core"), (("stream",), "core")),
        ((b"Authorization", b"Bearer sk-provider-fuzz"),),
    ),
)


def _key_path_cases() -> list[Case]:
    route = "/v1/gateway/oai/v1/chat/completions"
    targets = {
        "empty-key": b"/sk-heliport-" + route.encode(),
        "unknown-key": b"/sk-heliport-" + b"0" * 48 + route.encode(),
        "key-pct-nul": b"/sk-heliport-%00" + route.encode(),
        "key-pct-invalid-utf8": b"/sk-heliport-%ff%fe" + route.encode(),
        "key-after-route": route.encode() + b"/sk-heliport-" + b"0" * 48,
        "key-60k": b"/sk-heliport-" + b"a" * LONG + route.encode(),
    }
    cases = [Case(f"auth:path-{name}", target=t, auth=False, raw=True, expect=401) for name, t in targets.items()]
    cases.append(
        Case("path:two-key-segments", target=b"/sk-heliport-a/sk-heliport-b" + route.encode(), auth=False, raw=True)
    )
    cases.append(
        Case(
            "auth:path-key-with-bad-header",
            headers=((b"Helicone-Auth", b"Bearer sk-heliport-" + b"0" * 48),),
            auth=False,
            expect=401,
        )
    )
    return cases


def _stream_usage_cases(template: dict[str, Any]) -> list[Case]:
    """``Helicone-Stream-Usage: true`` on a streamed body re-encodes the whole body (stream_options)."""
    streamed = {**template, "stream": True}
    literals = {
        "deep-array-1000": (("messages",), deep_array(1000)),
        "deep-array-100000": (("messages",), deep_array(100_000)),
        "deep-object-1000": (("metadata",), deep_object(1000)),
        "1e400": (("temperature",), b"1e400"),
        "int-10e400": (("max_tokens",), b"1" + b"0" * 400),
        "NaN": (("temperature",), b"NaN"),
        "lone-surrogate": (("metadata",), b'"\\ud800"'),
        "stream-options-string": (("stream_options",), b'"x"'),
        "stream-options-array": (("stream_options",), b"[1]"),
        "stream-options-null": (("stream_options",), b"null"),
        "stream-options-deep-1000": (("stream_options",), deep_object(1000)),
    }
    headers = ((b"Helicone-Stream-Usage", b"true"),)
    cases = [
        Case(f"stream-usage+stream-true+{name}", body=with_literal(streamed, path, literal), headers=headers)
        for name, (path, literal) in literals.items()
    ]
    cases.append(
        Case(
            "stream-usage+duplicate-stream-keys",
            body=b'{"stream":false,"model":"gpt-4o-mini","messages":[],"stream":true}',
            headers=headers,
        )
    )
    return cases


def proxy_cases() -> dict[str, list[Case]]:
    out: dict[str, list[Case]] = {}
    for route in PROXY_ROUTES:
        valid = _dumps(route.template or {})
        cases = json_bodies(REQUEST_CAP) + field_cases(route) + content_type_cases(valid)
        if route.name == "key-in-path":
            cases += _key_path_cases()
            out[route.name] = cases
            continue
        cases += with_body(header_cases(), valid)
        # The header-activated features parse the body again (cache key, stream usage, fallbacks'
        # bodyKeyOverride): the odd bodies once more with each of them on.
        odd = [c for c in json_bodies(REQUEST_CAP) if not c.id.startswith("size:")]
        features = {
            "cache": ((b"Helicone-Cache-Enabled", b"true"),),
            "stream-usage": ((b"Helicone-Stream-Usage", b"true"),),
            "fallback-override": (
                (
                    b"Helicone-Fallbacks",
                    _fallbacks(("bodyKeyOverride",), b'{"temperature":0}'),
                ),
            ),
        }
        for feature, headers in features.items():
            cases += [replace(c, id=f"{feature}+{c.id}", headers=headers) for c in odd]
        cases += _stream_usage_cases(route.template or {})
        if route.name == "oai-chat":
            cases += with_body(wire_cases(), valid)
        cases += with_body(auth_cases(["Helicone-Auth"]), valid)
        cases += method_cases(route.method, passthrough=True)
        cases += path_cases(route.path)
        out[route.name] = cases
    return out


_RESPONSES_OPENAI = {
    "model": "gpt-4o-mini",
    "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
    "instructions": "be brief",
    "max_output_tokens": 16,
    "stream": False,
    "tools": [{"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}}],
}
_RESPONSES_FIELDS: tuple[tuple[tuple[str | int, ...], str], ...] = (
    (("model",), "full"),
    (("input",), "full"),
    (("input", 0), "core"),
    (("input", 0, "content"), "full"),
    (("input", 0, "content", 0), "core"),
    (("instructions",), "core"),
    (("stream",), "core"),
    (("max_output_tokens",), "core"),
    (("tools",), "core"),
    (("tools", 0), "core"),
)

#: The AI gateway: each body route once per provider family it translates to.
GATEWAY_ROUTES = (
    Route("chat-openai", "POST", "/v1/chat/completions", {**_CHAT_OPENAI, "model": "gpt-4o-mini/openai"}, _CHAT_FIELDS),
    Route(
        "chat-anthropic",
        "POST",
        "/v1/chat/completions",
        {
            **_CHAT_OPENAI,
            "model": "claude-sonnet-4-5/anthropic",
            "messages": [
                {"role": "system", "content": "be brief"},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "hi"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "ok"},
            ],
        },
        (
            *_CHAT_FIELDS,
            (("messages", 1, "content", 0), "core"),
            (("messages", 1, "content", 1, "image_url"), "core"),
            (("messages", 1, "content", 1, "image_url", "url"), "core"),
            (("messages", 2, "tool_calls"), "core"),
            (("messages", 2, "tool_calls", 0, "function", "arguments"), "full"),
            (("messages", 3, "tool_call_id"), "core"),
            (("tool_choice",), "core"),
            (("top_p",), "core"),
            (("stop",), "core"),
            (("response_format",), "core"),
        ),
    ),
    Route(
        "chat-bedrock",
        "POST",
        "/v1/chat/completions",
        {**_CHAT_OPENAI, "model": "claude-sonnet-4-5/bedrock"},
        (
            (("messages", 1, "content"), "core"),
            (("tools", 0, "function", "parameters"), "core"),
            (("max_tokens",), "core"),
            (("temperature",), "core"),
            (("top_p",), "core"),
        ),
    ),
    Route(
        "responses-openai",
        "POST",
        "/v1/responses",
        {**_RESPONSES_OPENAI, "model": "gpt-4o-mini/openai"},
        _RESPONSES_FIELDS,
    ),
    Route(
        "responses-anthropic",
        "POST",
        "/v1/responses",
        {**_RESPONSES_OPENAI, "model": "claude-sonnet-4-5/anthropic"},
        (
            *_RESPONSES_FIELDS,
            (("previous_response_id",), "core"),
            (("reasoning",), "core"),
            (("text",), "core"),
            (("temperature",), "core"),
        ),
    ),
    Route("models", "GET", "/v1/models"),
    Route("models-multimodal", "GET", "/v1/models/multimodal"),
    Route("model-registry", "GET", "/v1/public/model-registry/models"),
)

_MODEL_STRINGS = {
    "empty": b'""',
    "blank": b'" "',
    "slash": b'"/"',
    "slashes": b'"////"',
    "trailing-slash": b'"gpt-4o-mini/"',
    "provider-only": b'"/openai"',
    "too-many-parts": b'"gpt-4o-mini/openai/dep/extra/more"',
    "exclusion-only": b'"!openai"',
    "exclusion-everything": b'"gpt-4o-mini,!openai,!azure,!openrouter"',
    "commas": b'",,,"',
    "chain-1000": b'"' + b",".join([b"gpt-4o-mini/openai"] * 1000) + b'"',
    "unknown-provider": b'"gpt-4o-mini/nope"',
    "unknown-model-pinned": b'"no-such-model/openai"',
    "unknown-model": b'"no-such-model"',
    "unconfigured-deployment": b'"gpt-4o/azure/no-such-deployment"',
    "nul": b'"gpt-4o-mini\\u0000/openai"',
    "lone-surrogate": b'"gpt-4o-mini\\ud800"',
    "long-64k": b'"' + b"m" * 65536 + b'"',
    "traversal": b'"../../v1/models/openai"',
    "url": b'"http://169.254.169.254/openai"',
}


def gateway_cases() -> dict[str, list[Case]]:
    out: dict[str, list[Case]] = {}
    for route in GATEWAY_ROUTES:
        if route.template is None:
            cases = method_cases(route.method) + path_cases(route.path)
            cases += [
                Case("path:query-1000-params", suffix=b"?" + b"&".join(b"p%d=%d" % (i, i) for i in range(1000))),
                Case("path:query-nan", suffix=b"?limit=NaN&offset=1e400&provider=%00"),
            ]
            if route.name != "model-registry":  # public: no key needed
                cases += auth_cases(["Authorization", "Helicone-Auth"])
                cases += with_body(header_cases(), b"")
            out[route.name] = cases
            continue
        valid = _dumps(route.template)
        cases = field_cases(route)
        if route.name in ("chat-openai", "responses-openai"):
            cases += json_bodies(REQUEST_CAP) + content_type_cases(valid)
            cases += [
                Case(f"field:model=spec-{name}", body=with_literal(route.template, ("model",), literal))
                for name, literal in _MODEL_STRINGS.items()
            ]
            cases += with_body(header_cases(), valid)
            if route.name == "chat-openai":
                cases += with_body(wire_cases(), valid)
            cases += with_body(auth_cases(["Authorization", "Helicone-Auth"]), valid)
            cases += method_cases(route.method)
            cases += path_cases(route.path)
            cases += [
                replace(c, id=f"cache+{c.id}", headers=((b"Helicone-Cache-Enabled", b"true"),))
                for c in json_bodies(REQUEST_CAP)
                if c.id.startswith("body:") and any(k in c.id for k in ("deep", "1e400", "nan", "surrogate", "dup"))
            ]
        out[route.name] = cases
    return out


_ASYNC_PAYLOAD = {
    "providerRequest": {
        "url": "https://api.openai.com/v1/chat/completions",
        "json": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        "meta": {"Helicone-User-Id": "fuzz-user", "Helicone-Property-Env": "fuzz"},
    },
    "providerResponse": {
        "status": 200,
        "headers": {"content-type": "application/json"},
        "json": {"choices": [{"message": {"role": "assistant", "content": "hello"}}], "usage": {"prompt_tokens": 1}},
    },
    "timing": {
        "startTime": {"seconds": 1_767_225_600, "milliseconds": 0},
        "endTime": {"seconds": 1_767_225_601, "milliseconds": 500},
        "timeToFirstToken": 100,
    },
}

ASYNC_LOG_ROUTES = (
    Route(
        "custom",
        "POST",
        "/custom/v1/log",
        _ASYNC_PAYLOAD,
        (
            (("providerRequest",), "full"),
            (("providerRequest", "url"), "core"),
            (("providerRequest", "json"), "full"),
            (("providerRequest", "json", "model"), "core"),
            (("providerRequest", "meta"), "full"),
            (("providerRequest", "meta", "Helicone-User-Id"), "full"),
            (("providerRequest", "meta", "Helicone-Property-Env"), "core"),
            (("providerResponse",), "core"),
            (("providerResponse", "status"), "full"),
            (("providerResponse", "headers"), "core"),
            (("providerResponse", "headers", "content-type"), "core"),
            (("providerResponse", "json"), "full"),
            (("timing",), "core"),
            (("timing", "startTime"), "core"),
            (("timing", "startTime", "seconds"), "full"),
            (("timing", "startTime", "milliseconds"), "full"),
            (("timing", "endTime", "seconds"), "core"),
            (("timing", "timeToFirstToken"), "core"),
            (("providerRequest", "meta", "Helicone-User-Id"), "keys"),
        ),
    ),
    Route("trace-custom", "POST", "/v1/trace/custom/log", _ASYNC_PAYLOAD),
    Route("oai", "POST", "/oai/v1/log", _ASYNC_PAYLOAD, ((("providerResponse", "json"), "core"),)),
    Route("anthropic", "POST", "/anthropic/v1/log", _ASYNC_PAYLOAD, ((("providerResponse", "json"), "core"),)),
)


def _async_specific() -> list[Case]:
    """Payload values the generic sets miss: instants far from now, meta acting as headers."""
    p = _ASYNC_PAYLOAD
    seconds = ("timing", "startTime", "seconds")
    instants = {
        "seconds-1e15": b"1000000000000000",
        "seconds-minus-1e15": b"-1000000000000000",
        "seconds-int64-max": b"9223372036854775807",
        "seconds-int64-min": b"-9223372036854775808",
        "seconds-2e11": b"200000000000",
    }
    cases = [Case(f"field:timing.startTime.seconds={n}", body=with_literal(p, seconds, v)) for n, v in instants.items()]
    cases += [
        Case(
            "field:timing.endTime.seconds=1e15",
            body=with_literal(p, ("timing", "endTime", "seconds"), b"1000000000000000"),
        ),
        Case(
            "field:timing.startTime.milliseconds=1e18",
            body=with_literal(p, ("timing", "startTime", "milliseconds"), b"1000000000000000000"),
        ),
        Case("field:timing.end-before-start", body=with_literal(p, ("timing", "endTime", "seconds"), b"0")),
        Case("field:timing.timeToFirstToken=1e308", body=with_literal(p, ("timing", "timeToFirstToken"), b"1e308")),
        Case("field:providerResponse.status=99999", body=with_literal(p, ("providerResponse", "status"), b"99999")),
        Case(
            "field:providerResponse.status=int64-max",
            body=with_literal(p, ("providerResponse", "status"), b"9223372036854775807"),
        ),
        Case(
            "field:providerResponse.textBody=deep-1000-text",
            body=with_literal(p, ("providerResponse",), b'{"status":200,"textBody":"' + deep_array(1000) + b'"}'),
        ),
        Case(
            "field:providerResponse.textBody=nul",
            body=with_literal(p, ("providerResponse",), b'{"status":200,"textBody":"a\\u0000b"}'),
        ),
        Case(
            "field:providerRequest.url=crlf",
            body=with_literal(p, ("providerRequest", "url"), b'"https://x/\\r\\nHost: evil"'),
        ),
    ]
    meta = ("providerRequest", "meta")
    headers = {
        "auth-bearer-only": b'{"Helicone-Auth":"Bearer"}',
        "request-id-junk": b'{"Helicone-Request-Id":"not-a-uuid"}',
        "fallbacks-deep-1000": b'{"Helicone-Fallbacks":"' + deep_array(1000) + b'"}',
        "fallbacks-crlf": b'{"Helicone-Fallbacks":'
        + _dumps(_fallbacks(("headers", "authorization"), b'"a\\r\\nb"').decode())
        + b"}",
        "ratelimit-junk": b'{"Helicone-RateLimit-Policy":"NaN;w=1e400"}',
        "retry-num-junk": b'{"Helicone-Retry-Num":"1e400"}',
        "cache-bucket-junk": b'{"Helicone-Cache-Bucket-Max-Size":"' + b"9" * 5000 + b'"}',
        "crlf-in-value": b'{"Helicone-User-Id":"a\\r\\nb"}',
        "crlf-in-name": b'{"Helicone-Property-a\\r\\nb":"v"}',
        "nul-name": b'{"\\u0000":"v"}',
        "nested-value": b'{"Helicone-Property-Env":{"a":[1,2,{"b":null}]}}',
        "1000-properties": _dumps({f"Helicone-Property-P{i}": "v" for i in range(1000)}),
        "omit-response-with-junk": b'{"Helicone-Omit-Response":"true"}',
    }
    cases += [Case(f"field:meta={n}", body=with_literal(p, meta, v)) for n, v in headers.items()]
    cases.append(
        Case(
            "field:meta=omit-response+textBody-junk",
            body=with_literal(
                {**p, "providerRequest": {**p["providerRequest"], "meta": {"Helicone-Omit-Response": "true"}}},
                ("providerResponse",),
                b'{"status":200,"textBody":"data: {\\"usage\\":' + deep_array(1000) + b'}\\n\\n"}',
            ),
        )
    )
    return cases


def async_log_cases() -> dict[str, list[Case]]:
    valid = _dumps(_ASYNC_PAYLOAD)
    out: dict[str, list[Case]] = {}
    for route in ASYNC_LOG_ROUTES:
        cases = json_bodies(REQUEST_CAP) + field_cases(route)
        if route.name == "custom":
            cases += _async_specific()
            cases += content_type_cases(valid)
            cases += with_body(header_cases(), valid)
            cases += with_body(wire_cases(), valid)
            cases += with_body(auth_cases(["Authorization", "Helicone-Auth"]), valid)
            cases += method_cases(route.method)
            cases += path_cases(route.path)
        else:
            cases += method_cases(route.method)[:2]
            cases += with_body(auth_cases(["Authorization"]), valid)[:4]
        out[route.name] = cases
    return out


_END_MS = 4_102_444_800_000  # 2100-01-01
_MS_FILTER = {"startTimeUnixMs": 0, "endTimeUnixMs": _END_MS}
_S_FILTER = {"startTimeUnixSeconds": 0, "endTimeUnixSeconds": _END_MS // 1000}
_LEAF_FILTER = {
    "left": {"request_response_rmt": {"model": {"equals": "gpt-4o-mini"}}},
    "operator": "or",
    "right": {
        "left": {"request_response_rmt": {"latency": {"gte": 0}}},
        "operator": "and",
        "right": {
            "left": {"request_response_rmt": {"request_created_at": {"gte": "2020-01-01T00:00:00Z"}}},
            "operator": "and",
            "right": {"request_response_rmt": {"properties": {"env": {"equals": "fuzz"}}}},
        },
    },
}
_MODEL_LEAF = ("filter", "left", "request_response_rmt", "model", "equals")
_LATENCY_LEAF = ("filter", "right", "left", "request_response_rmt", "latency", "gte")
_TIME_LEAF = ("filter", "right", "right", "left", "request_response_rmt", "request_created_at", "gte")
_PROPERTY_LEAF = ("filter", "right", "right", "right", "request_response_rmt", "properties", "env")

_HQL = "SELECT request_model, COUNT(*) AS count FROM request_response_rmt GROUP BY request_model"
_EVAL_QUERY = {
    "filter": "all",
    "timeFilter": {"start": "2020-01-01", "end": "2100-01-01T00:00:00"},
    "offset": 0,
    "limit": 10,
    "timeZoneDifference": 0,
}
_EVAL_FIELDS: tuple[tuple[tuple[str | int, ...], str], ...] = (
    (("timeFilter", "start"), "full"),
    (("timeFilter", "end"), "full"),
    (("filter",), "full"),
    (("timeFilter",), "core"),
    (("offset",), "core"),
    (("limit",), "core"),
    (("timeZoneDifference",), "full"),
)

API_ROUTES = (
    Route(
        "request-query",
        "POST",
        "/v1/request/query",
        {
            "filter": _LEAF_FILTER,
            "sort": {"created_at": "desc", "properties": {"env": "asc"}},
            "limit": 10,
            "offset": 0,
        },
        (
            (("filter",), "full"),
            (_MODEL_LEAF, "full"),
            (_MODEL_LEAF[:-1], "core"),
            (_LATENCY_LEAF, "full"),
            (_TIME_LEAF, "full"),
            (_PROPERTY_LEAF, "core"),
            (_PROPERTY_LEAF, "keys"),
            (("filter", "operator"), "core"),
            (("sort",), "core"),
            (("sort", "created_at"), "core"),
            (("sort", "created_at"), "keys"),
            (("sort", "properties", "env"), "keys"),
            (_MODEL_LEAF[:3], "keys"),
            (_MODEL_LEAF[:4], "keys"),
            (("limit",), "full"),
            (("offset",), "full"),
            (("isCached",), "core"),
        ),
    ),
    Route(
        "request-query-clickhouse",
        "POST",
        "/v1/request/query-clickhouse",
        {"filter": _LEAF_FILTER, "limit": 10},
        ((_LATENCY_LEAF, "core"), (("limit",), "core")),
    ),
    Route(
        "request-query-ids",
        "POST",
        "/v1/request/query-ids",
        {"requestIds": [RID]},
        ((("requestIds",), "full"), (("requestIds", 0), "full")),
    ),
    Route("request-get", "GET", f"/v1/request/{RID}"),
    Route("request-body", "GET", f"/v1/request/{RID}/body"),
    Route("request-feedback", "POST", f"/v1/request/{RID}/feedback", {"rating": True}, ((("rating",), "full"),)),
    Route(
        "request-property",
        "PUT",
        f"/v1/request/{RID}/property",
        {"key": "env", "value": "fuzz"},
        ((("key",), "full"), (("value",), "full")),
    ),
    Route(
        "request-score",
        "POST",
        f"/v1/request/{RID}/score",
        {"scores": {"quality": 1}},
        ((("scores",), "core"), (("scores", "quality"), "full"), (("scores", "quality"), "keys")),
    ),
    Route(
        "legacy-feedback",
        "POST",
        "/v1/feedback",
        {"helicone-id": RID, "rating": True},
        ((("helicone-id",), "full"), (("rating",), "core")),
    ),
    Route(
        "session-query",
        "POST",
        "/v1/session/query",
        {"search": "", "timeFilter": _MS_FILTER, "timezoneDifference": 0, "filter": "all", "limit": 10, "offset": 0},
        (
            (("search",), "full"),
            (("timeFilter",), "core"),
            (("timeFilter", "startTimeUnixMs"), "full"),
            (("timeFilter", "endTimeUnixMs"), "full"),
            (("timezoneDifference",), "full"),
            (("filter",), "core"),
            (("limit",), "core"),
            (("nameEquals",), "core"),
        ),
    ),
    Route(
        "session-metrics",
        "POST",
        "/v1/session/metrics/query",
        {
            "nameContains": "",
            "timezoneDifference": 0,
            "pSize": "p50",
            "useInterquartile": False,
            "timeFilter": _MS_FILTER,
        },
        (
            (("nameContains",), "full"),
            (("timezoneDifference",), "full"),
            (("pSize",), "core"),
            (("timeFilter", "startTimeUnixMs"), "core"),
            (("filter",), "core"),
        ),
    ),
    Route(
        "user-query",
        "POST",
        "/v1/user/query",
        {"userIds": ["fuzz-user"], "timeFilter": _S_FILTER},
        (
            (("userIds",), "core"),
            (("userIds", 0), "full"),
            (("timeFilter", "startTimeUnixSeconds"), "full"),
            (("timeFilter", "endTimeUnixSeconds"), "core"),
        ),
    ),
    Route(
        "user-metrics",
        "POST",
        "/v1/user/metrics/query",
        {
            "filter": "all",
            "offset": 0,
            "limit": 10,
            "timeFilter": _S_FILTER,
            "timeZoneDifferenceMinutes": 0,
            "sort": {"user_id": "asc"},
        },
        (
            (("filter",), "core"),
            (("offset",), "core"),
            (("limit",), "core"),
            (("timeFilter", "startTimeUnixSeconds"), "core"),
            (("timeZoneDifferenceMinutes",), "full"),
            (("sort",), "core"),
            (("sort", "user_id"), "keys"),
        ),
    ),
    Route(
        "user-metrics-overview",
        "POST",
        "/v1/user/metrics-overview/query",
        {"useInterquartile": False, "pSize": "p50", "filter": "all"},
        ((("useInterquartile",), "core"), (("pSize",), "core"), (("filter",), "core")),
    ),
    Route("property-query", "POST", "/v1/property/query", {}),
    Route("openapi", "GET", "/openapi.json"),
    # Issue 23's routes: HQL, datasets, evals and scores, session feedback, assets.
    Route("hql-execute", "POST", "/v1/helicone-sql/execute", {"sql": _HQL}, ((("sql",), "full"),)),
    Route("hql-download", "POST", "/v1/helicone-sql/download", {"sql": _HQL}, ((("sql",), "core"),)),
    Route(
        "hql-saved-query",
        "POST",
        "/v1/helicone-sql/saved-query",
        {"name": "fuzz", "sql": _HQL},
        ((("name",), "full"), (("sql",), "core")),
    ),
    Route("hql-schema", "GET", "/v1/helicone-sql/schema"),
    Route("hql-download-csv", "GET", "/v1/helicone-sql/download/csv"),
    Route(
        "dataset-create",
        "POST",
        "/v1/helicone-dataset",
        {"name": "fuzz", "description": "fuzz", "requestIds": [RID], "meta": {"k": "v"}},
        (
            (("name",), "full"),
            (("description",), "core"),
            (("requestIds",), "full"),
            (("requestIds", 0), "full"),
            (("meta",), "core"),
            (("meta", "k"), "core"),
            (("meta", "k"), "keys"),
        ),
    ),
    Route(
        "dataset-query",
        "POST",
        "/v1/helicone-dataset/query",
        {"datasetIds": [DATASET]},
        ((("datasetIds",), "full"), (("datasetIds", 0), "full")),
    ),
    Route(
        "dataset-rows",
        "POST",
        f"/v1/helicone-dataset/{DATASET}/query",
        {"offset": 0, "limit": 10},
        ((("offset",), "full"), (("limit",), "full")),
    ),
    Route("dataset-count", "POST", f"/v1/helicone-dataset/{DATASET}/count"),
    Route(
        "dataset-mutate",
        "POST",
        f"/v1/helicone-dataset/{DATASET}/mutate",
        {"addRequests": [RID], "removeRequests": []},
        (
            (("addRequests",), "full"),
            (("addRequests", 0), "full"),
            (("removeRequests",), "core"),
        ),
    ),
    Route(
        "dataset-item-edit",
        "POST",
        f"/v1/helicone-dataset/{DATASET}/request/{RID}",
        {"requestBody": {"model": "gpt-4o-mini"}, "responseBody": {"choices": []}},
        ((("requestBody",), "full"), (("responseBody",), "core")),
    ),
    Route("dataset-export", "GET", f"/v1/helicone-dataset/{DATASET}/export"),
    Route("evals-query", "POST", "/v1/evals/query", _EVAL_QUERY, _EVAL_FIELDS),
    Route("evals-distributions", "POST", "/v1/evals/score-distributions/query", _EVAL_QUERY, _EVAL_FIELDS[:3]),
    Route("evals-scores", "GET", "/v1/evals/scores"),
    Route(
        "eval-add",
        "POST",
        f"/v1/evals/{RID}",
        {"name": "quality", "score": 0.5},
        ((("name",), "full"), (("score",), "full")),
    ),
    Route(
        "session-feedback",
        "POST",
        "/v1/session/fuzz-session/feedback",
        {"rating": True},
        ((("rating",), "full"),),
    ),
    Route("asset-url", "POST", f"/v1/request/{RID}/assets/fuzz-asset"),
    Route("asset-signed", "GET", f"/v1/request/{RID}/assets/fuzz-asset"),
    Route("assets", "GET", f"/v1/request/{RID}/assets"),
)

DASHBOARD_ROUTES = (
    Route(
        "timeseries",
        "POST",
        "/v1/dashboard/timeseries",
        {"timeFilter": _MS_FILTER, "filter": "all", "timeZoneDifference": 0},
        (
            (("timeFilter",), "core"),
            (("timeFilter", "startTimeUnixMs"), "full"),
            (("timeFilter", "endTimeUnixMs"), "full"),
            (("filter",), "full"),
            (("timeZoneDifference",), "full"),
        ),
    ),
    Route(
        "scores",
        "POST",
        "/v1/dashboard/scores/query",
        {
            "timeFilter": {"start": "2020-01-01", "end": "2100-01-01"},
            "userFilter": "all",
            "dbIncrement": "day",
            "timeZoneDifference": 0,
        },
        (
            (("timeFilter", "start"), "full"),
            (("timeFilter", "end"), "core"),
            (("userFilter",), "full"),
            (("dbIncrement",), "full"),
            (("timeZoneDifference",), "full"),
        ),
    ),
    Route(
        "overview",
        "POST",
        "/v1/dashboard/overview",
        {"timeFilter": _MS_FILTER, "filter": "all", "property": "env", "limit": 10},
        (
            (("timeFilter",), "core"),
            (("timeFilter", "startTimeUnixMs"), "full"),
            (("timeFilter", "endTimeUnixMs"), "full"),
            (("filter",), "full"),
            (("property",), "full"),
            (("limit",), "full"),
        ),
    ),
    Route(
        "session-tree",
        "POST",
        "/v1/dashboard/session-tree",
        {"sessionId": "fuzz-session"},
        ((("sessionId",), "full"),),
    ),
)

_TIMESTAMPS = {
    "min-with-positive-offset": b'"0001-01-01T00:00:00+14:00"',
    "max-with-negative-offset": b'"9999-12-31T23:59:59-14:00"',
    "feb-30": b'"2026-02-30T00:00:00Z"',
    "year-99999": b'"99999-01-01T00:00:00Z"',
    "hour-25": b'"2026-01-01T25:00:00Z"',
    "many-fraction-digits": b'"2026-01-01T00:00:00.' + b"1" * 1000 + b'Z"',
    "nul": b'"2026-01-01T00:00:00\\u0000Z"',
    "now": b'"now"',
}
_NUMBER_STRINGS = {
    "1e400-string": b'"1e400"',
    "nan-string": b'"NaN"',
    "infinity-string": b'"Infinity"',
    "neg-zero-string": b'"-0"',
    "5000-digits-string": b'"' + b"9" * 5000 + b'"',
    "hex-string": b'"0x10"',
}


def _api_specific() -> dict[str, list[Case]]:
    query = API_ROUTES[0].template or {}
    sessions = API_ROUTES[9].template or {}
    cases: dict[str, list[Case]] = {
        "request-query": [
            *(
                Case(f"field:request_created_at.gte={n}", body=with_literal(query, _TIME_LEAF, v))
                for n, v in _TIMESTAMPS.items()
            ),
            *(
                Case(f"field:latency.gte={n}", body=with_literal(query, _LATENCY_LEAF, v))
                for n, v in _NUMBER_STRINGS.items()
            ),
            Case(
                "field:filter=deep-branches-1000",
                body=with_literal(
                    query, ("filter",), b'{"left":' * 1000 + b'"all"' + b',"operator":"and","right":"all"}' * 1000
                ),
            ),
            Case("field:filter=600-conditions", body=_dumps({**query, "filter": _chain(600)})),
            Case("field:sort.random=true", body=_dumps({**query, "sort": {"random": True}})),
            Case("field:sort=unknown-key-64k", body=_dumps({**query, "sort": {"k" * 65536: "asc"}})),
        ],
        "session-query": [
            *(
                Case(
                    f"field:timeFilter.startTimeUnixMs={n}",
                    body=with_literal(sessions, ("timeFilter", "startTimeUnixMs"), v),
                )
                for n, v in {
                    "1e20": b"1e20",
                    "minus-1e20": b"-1e20",
                    "1e308": b"1e308",
                    "int64-max": b"9223372036854775807",
                }.items()
            ),
            Case("field:timezoneDifference=1e308", body=with_literal(sessions, ("timezoneDifference",), b"1e308")),
            Case("field:search=like-wildcards", body=with_literal(sessions, ("search",), b'"%_\\\\%"')),
        ],
        "hql-execute": _hql_cases({"sql": _HQL}),
        "hql-download": _hql_cases({"sql": _HQL})[:12],
        "evals-query": [
            Case(f"field:timeFilter.start={n}", body=with_literal(_EVAL_QUERY, ("timeFilter", "start"), v))
            for n, v in _TIMESTAMPS.items()
        ]
        + [
            Case(
                "field:timeFilter=reversed",
                body=_dumps({**_EVAL_QUERY, "timeFilter": {"start": "2100-01-01", "end": "2020-01-01"}}),
            )
        ],
        "eval-add": [
            Case("field:score=1e308", body=_dumps({"name": "q", "score": 1e308})),
            Case("field:score=-1e308", body=_dumps({"name": "q", "score": -1e308})),
            Case("field:score=5000-digits", body=b'{"name":"q","score":' + b"9" * 5000 + b"}"),
        ],
    }
    return cases


def _chain(count: int) -> Any:
    node: Any = {"request_response_rmt": {"status": {"equals": 200}}}
    for _ in range(count - 1):
        node = {"left": node, "operator": "and", "right": {"request_response_rmt": {"status": {"equals": 200}}}}
    return node


def _signed_body_cases() -> list[Case]:
    queries = {
        "no-signature": b"",
        "expires-1e400": b"?org=x&expires=1e400&signature=00",
        "expires-5000-digits": b"?org=x&expires=" + b"9" * 5000 + b"&signature=00",
        "expires-negative": b"?org=x&expires=-1&signature=00",
        "signature-nul": b"?org=x&expires=9999999999&signature=%00",
        "signature-invalid-utf8": b"?org=%ff&expires=9999999999&signature=%ff%fe",
        "signature-lone-surrogate": b"?org=x&expires=9999999999&signature=%ed%a0%80",
        "repeated-params": b"?org=a&org=b&expires=1&expires=2&signature=a&signature=b",
    }
    return [Case(f"path:signed-{n}", suffix=q, raw=True) for n, q in queries.items()]


# --- issue 23's query API routes ------------------------------------------------------------------------

#: Statements HQL must refuse with a 400 (or run): other tables and schemas, writes, several statements,
#: functions that reach outside, nesting deep enough to exhaust a recursive parser, numbers past any type.
_HQL_STATEMENTS: dict[str, str] = {
    "other-table": "SELECT * FROM requests",
    "catalog": "SELECT * FROM pg_catalog.pg_authid",
    "sqlite-master": "SELECT * FROM sqlite_master",
    "information-schema": "SELECT * FROM information_schema.tables",
    "two-statements": "SELECT 1 FROM request_response_rmt; DROP TABLE requests",
    "delete": "DELETE FROM request_response_rmt",
    "insert-select": "INSERT INTO request_response_rmt SELECT * FROM request_response_rmt",
    "update": "UPDATE request_response_rmt SET status = 1",
    "drop": "DROP TABLE request_response_rmt",
    "attach": "ATTACH DATABASE '/tmp/x' AS x",
    "pragma": "PRAGMA table_info(requests)",
    "set-org": "SELECT set_config('heliport.org_id', 'other', false) FROM request_response_rmt",
    "current-setting": "SELECT current_setting('heliport.org_id') FROM request_response_rmt",
    "pg-sleep": "SELECT pg_sleep(60) FROM request_response_rmt",
    "sleep": "SELECT sleep(3) FROM request_response_rmt",
    "read-file": "SELECT pg_read_file('/etc/passwd')",
    "table-function-file": "SELECT * FROM file('/etc/passwd')",
    "table-function-url": "SELECT * FROM url('http://169.254.169.254/latest', 'CSV')",
    "table-function-numbers": "SELECT * FROM numbers(1000000000)",
    "into-outfile": "SELECT * FROM request_response_rmt INTO OUTFILE '/tmp/x'",
    "settings": "SELECT * FROM request_response_rmt SETTINGS max_execution_time = 1000",
    "format": "SELECT * FROM request_response_rmt FORMAT TabSeparated",
    "subquery-other-table": "SELECT * FROM request_response_rmt WHERE status IN (SELECT 1 FROM requests)",
    "cte-shadowing": "WITH request_response_rmt AS (SELECT * FROM requests) SELECT * FROM request_response_rmt",
    "cross-join-4": "SELECT count() FROM request_response_rmt a, request_response_rmt b, request_response_rmt c, "
    "request_response_rmt d",
    "parentheses-1000": "SELECT " + "(" * 1000 + "1" + ")" * 1000 + " FROM request_response_rmt",
    "parentheses-100000": "SELECT " + "(" * 100_000 + "1" + ")" * 100_000 + " FROM request_response_rmt",
    "unary-minus-10000": "SELECT " + "-" * 10_000 + "1 FROM request_response_rmt",
    "subqueries-500": "SELECT * FROM " + "(SELECT * FROM " * 500 + "request_response_rmt" + ")" * 500,
    "union-1000": " UNION ALL ".join(["SELECT status FROM request_response_rmt"] * 1000),
    "and-chain-10000": "SELECT 1 FROM request_response_rmt WHERE " + " AND ".join(["status = 200"] * 10_000),
    "1e400": "SELECT 1e400 FROM request_response_rmt",
    "int-5000-digits": "SELECT " + "9" * 5000 + " FROM request_response_rmt",
    "limit-huge": "SELECT * FROM request_response_rmt LIMIT 99999999999999999999999",
    "limit-negative": "SELECT * FROM request_response_rmt LIMIT -1",
    "offset-huge": "SELECT * FROM request_response_rmt LIMIT 1 OFFSET 9223372036854775808",
    "order-by-position-999": "SELECT status FROM request_response_rmt ORDER BY 999",
    "divide-by-zero": "SELECT status / 0, intDiv(status, 0), status % 0 FROM request_response_rmt",
    "bad-cast": "SELECT CAST('x' AS Int64), toInt64('x'), toDateTime('garbage') FROM request_response_rmt",
    "bad-interval": "SELECT * FROM request_response_rmt WHERE request_created_at > now() - INTERVAL 1e400 DAY",
    "interval-huge": "SELECT * FROM request_response_rmt WHERE request_created_at > now() - INTERVAL "
    "9223372036854775807 YEAR",
    "to-date-time-64-precision": "SELECT toDateTime64(now(), 99) FROM request_response_rmt",
    "unknown-function": "SELECT no_such_function(status) FROM request_response_rmt",
    "unknown-column": "SELECT no_such_column FROM request_response_rmt",
    "map-junk-key": "SELECT properties[NULL], properties[1], properties[''] FROM request_response_rmt",
    "map-nul-key": "SELECT properties['a\x00b'] FROM request_response_rmt",
    "string-nul": "SELECT * FROM request_response_rmt WHERE request_model = 'a\x00b'",
    "string-unterminated": "SELECT * FROM request_response_rmt WHERE request_model = 'a",
    "comment-only": "-- nothing",
    "block-comment-unterminated": "SELECT 1 /* FROM request_response_rmt",
    "whitespace": " \t\r\n ",
    "lone-surrogate": "SELECT '\ud800' FROM request_response_rmt",
    "ansi-escapes": "SELECT '\x1b[2J' AS \"\x1b[31m\" FROM request_response_rmt",
    "identifier-64k": "SELECT status AS " + "a" * 65536 + " FROM request_response_rmt",
    "quoted-identifier-junk": 'SELECT "status""" FROM request_response_rmt',
    "backtick-table": "SELECT * FROM `requests`",
    "dollar-quote": "SELECT $$x$$ FROM request_response_rmt",
    "bind-parameter": "SELECT $1, ?, :name FROM request_response_rmt",
    "window-function": "SELECT row_number() OVER (PARTITION BY request_model) FROM request_response_rmt",
    "array-join": "SELECT arrayJoin(range(1000000)) FROM request_response_rmt",
    "all-columns-grouped": "SELECT *, count() FROM request_response_rmt GROUP BY ALL",
}


def _hql_cases(template: dict[str, Any]) -> list[Case]:
    return [Case(f"field:sql={name}", body=_dumps({**template, "sql": sql})) for name, sql in _HQL_STATEMENTS.items()]


def _session_id_cases() -> list[Case]:
    """Bad session ids in ``/v1/session/{id}/feedback``."""
    ids = {
        "empty": b"",
        "pct-nul": b"%00",
        "pct-invalid-utf8": b"%ff%fe",
        "pct-lone-surrogate": b"%ed%a0%80",
        "pct-slash": b"a%2fb",
        "dot-dot": b"..",
        "long-60k": b"s" * LONG,
        "sql": b"'%20OR%201=1--",
    }
    return [
        Case(f"path:session-{name}", target=b"/v1/session/" + value + b"/feedback", raw=True)
        for name, value in ids.items()
    ]


def _bodiless_specific() -> dict[str, list[Case]]:
    """Cases of issue 23's routes that take no body: signed URLs, query strings, ids in the path."""
    sql = quote(_HQL).encode()
    return {
        "hql-download-csv": [
            *_signed_body_cases(),
            Case("path:csv-sql-nul", suffix=b"?org=x&expires=9999999999&sql=%00&signature=00", raw=True),
            Case("path:csv-sql-60k", suffix=b"?org=x&expires=9999999999&sql=" + b"a" * LONG, raw=True),
            Case("path:csv-unsigned", suffix=b"?org=x&expires=9999999999&sql=" + sql, raw=True),
            Case("path:csv-signature-junk", suffix=b"?org=x&expires=9999999999&sql=" + sql + b"&signature=zz"),
        ],
        "dataset-count": with_body(request_id_cases("/v1/helicone-dataset/{id}/count"), b""),
        "dataset-export": [
            Case("path:format-xml", suffix=b"?format=xml"),
            Case("path:format-nul", suffix=b"?format=%00", raw=True),
            Case("path:format-twice", suffix=b"?format=jsonl&format=csv"),
            Case("path:format-csv", suffix=b"?format=csv"),
            *request_id_cases("/v1/helicone-dataset/{id}/export"),
        ],
        "asset-url": [*request_id_cases("/v1/request/{id}/assets/fuzz-asset")]
        + [
            Case(f"path:asset-{name}", target=f"/v1/request/{RID}/assets/".encode() + value, raw=True)
            for name, value in {
                "pct-nul": b"%00",
                "pct-invalid-utf8": b"%ff%fe",
                "dot-dot": b"..",
                "long-60k": b"a" * LONG,
                "pct-traversal": b"..%2f..%2fbody",
            }.items()
        ],
        "asset-signed": [*_signed_body_cases(), *request_id_cases("/v1/request/{id}/assets/fuzz-asset")],
        "assets": request_id_cases("/v1/request/{id}/assets"),
    }


#: Issue 23's routes that are exact API routes (``heliport.app.API_ROUTES``), not only under a prefix.
_EXACT = ("/v1/helicone-dataset",)
#: Paths served for more than one method: another of those methods is not a 405 there.
_METHODS_OF_PATH: dict[str, frozenset[str]] = {
    f"/v1/request/{RID}/assets/fuzz-asset": frozenset({"GET", "POST"}),
    f"/v1/helicone-dataset/{DATASET}/request/{RID}": frozenset({"POST", "DELETE"}),
}


def _adjusted(route: Route, cases: list[Case]) -> list[Case]:
    """Fit the generic cases to routes that share a path with another method, and to the one route
    (``/v1/helicone-dataset``) that is both an exact API route and the prefix of others: a request-target
    that only adds ``/...`` to it is still the API's."""
    served = _METHODS_OF_PATH.get(route.path, frozenset())
    served |= {"HEAD"} if "GET" in served else set()  # a GET route answers HEAD too
    cases = [c for c in cases if not (c.id.startswith("method:") and c.method in served)]
    if route.path == "/v1/helicone-dataset":
        cases = [replace(c, surface=None) if c.surface == "root" and c.suffix.startswith(b"/") else c for c in cases]
    return cases


def api_cases() -> dict[str, list[Case]]:
    out: dict[str, list[Case]] = {}
    specific = _api_specific()
    first = True
    for route in API_ROUTES:
        if route.template is None:
            cases = method_cases(route.method) + path_cases(route.path, exact=route.path == "/openapi.json")
            if route.name == "request-get":
                cases += request_id_cases("/v1/request/{id}")
                cases += [
                    Case("path:include-body-junk", suffix=b"?includeBody=maybe"),
                    Case("path:include-body-nul", suffix=b"?includeBody=%00", raw=True),
                    Case("path:include-body-true", suffix=b"?includeBody=true"),
                    Case("stored:deep-body-inline", target=f"/v1/request/{DEEP}?includeBody=true".encode()),
                ]
                cases += auth_cases(["Authorization", "Helicone-Auth"])
            if route.name == "request-body":
                cases = method_cases(route.method) + _signed_body_cases() + request_id_cases("/v1/request/{id}/body")
                cases.append(Case("stored:deep-body-signed-url", target=DEEP_URL.encode()))
            cases += _bodiless_specific().get(route.name, [])
            out[route.name] = _adjusted(route, cases)
            continue
        valid = _dumps(route.template)
        cases = json_bodies(API_BODY_CAP) + field_cases(route) + specific.get(route.name, [])
        cases += method_cases(route.method) + content_type_cases(valid)
        if RID not in route.path:
            cases += path_cases(route.path, exact=route.path in ("/v1/feedback", "/openapi.json", *_EXACT))
        if route.name in ("request-feedback", "request-property", "request-score"):
            cases += with_body(request_id_cases("/v1/request/{id}/" + route.path.rsplit("/", 1)[1]), valid)
        if first:
            cases += with_body(auth_cases(["Authorization", "Helicone-Auth"]), valid)
            cases += with_body(wire_cases(b"Authorization"), valid)
            first = False
        if route.name in ("dataset-rows", "dataset-mutate"):
            template = "/v1/helicone-dataset/{id}/" + route.path.rsplit("/", 1)[1]
            cases += with_body(request_id_cases(template), valid)
        if route.name == "eval-add":
            cases += with_body(request_id_cases("/v1/evals/{id}"), valid)
        if route.name == "session-feedback":
            cases += with_body(_session_id_cases(), valid)
        out[route.name] = _adjusted(route, cases)
    return out


def dashboard_cases() -> dict[str, list[Case]]:
    out: dict[str, list[Case]] = {}
    for route in DASHBOARD_ROUTES:
        valid = _dumps(route.template or {})
        cases = json_bodies(API_BODY_CAP) + field_cases(route)
        cases += method_cases(route.method) + content_type_cases(valid) + path_cases(route.path)
        cases += with_body(auth_cases(["Authorization", "Helicone-Auth"]), valid)
        if route.name == "overview":
            cases += with_body(wire_cases(b"Authorization"), valid)
            cases += [
                Case(
                    f"field:timeFilter.startTimeUnixMs={n}",
                    body=with_literal(route.template or {}, ("timeFilter", "startTimeUnixMs"), v),
                )
                for n, v in {"1e20": b"1e20", "minus-1e20": b"-1e20", "1e308": b"1e308"}.items()
            ]
            cases.append(
                Case(
                    "field:property=nul-escaped-key",
                    body=with_literal(route.template or {}, ("property",), b'"\\u0000"'),
                )
            )
        out[route.name] = cases
    return out


def realtime_cases() -> list[WsCase]:
    unknown = "sk-heliport-" + "0" * 48
    route = b"/v1/gateway/oai/realtime"
    cases = [
        # heliport keys
        WsCase("auth:no-credentials", auth=False, expect=401),
        WsCase("auth:helicone-auth-bearer-only", headers=((b"Helicone-Auth", b"Bearer"),), auth=False, expect=401),
        WsCase("auth:helicone-auth-empty", headers=((b"Helicone-Auth", b""),), auth=False, expect=401),
        WsCase(
            "auth:helicone-auth-basic", headers=((b"Helicone-Auth", b"Basic dXNlcjpwYXNz"),), auth=False, expect=401
        ),
        WsCase(
            "auth:helicone-auth-unknown-key",
            headers=((b"Helicone-Auth", f"Bearer {unknown}".encode()),),
            auth=False,
            expect=401,
        ),
        WsCase(
            "auth:helicone-auth-key-8k",
            headers=((b"Helicone-Auth", b"Bearer sk-heliport-" + b"a" * WS_LONG),),
            auth=False,
            expect=401,
        ),
        WsCase(
            "auth:helicone-auth-invalid-utf8",
            headers=((b"Helicone-Auth", b"Bearer sk-heliport-\xff\xfe"),),
            auth=False,
            raw=True,
            expect=401,
        ),
        WsCase("auth:subprotocol-empty-key", subprotocols=("helicone-auth.",), auth=False, expect=401),
        WsCase("auth:subprotocol-unknown-key", subprotocols=(f"helicone-auth.{unknown}",), auth=False, expect=401),
        WsCase("auth:subprotocol-not-a-key", subprotocols=("helicone-auth.x", "realtime"), auth=False, expect=401),
        WsCase("auth:subprotocol-key-8k", subprotocols=("helicone-auth." + "a" * WS_LONG,), auth=False, expect=401),
        WsCase(
            "auth:openai-subprotocol-only",
            subprotocols=("realtime", "openai-insecure-api-key.sk-x"),
            auth=False,
            expect=401,
        ),
        WsCase("auth:path-unknown-key", target=f"/{unknown}".encode() + route, auth=False, expect=401),
        WsCase("auth:path-empty-key", target=b"/sk-heliport-" + route, auth=False, raw=True, expect=401),
        WsCase(
            "auth:path-key-pct-invalid-utf8", target=b"/sk-heliport-%ff%fe" + route, auth=False, raw=True, expect=401
        ),
        WsCase("auth:path-key-pct-nul", target=b"/sk-heliport-%00" + route, auth=False, raw=True, expect=401),
        # queries, with a valid key
        WsCase("query:azure-empty-resource", target=route + b"?resource=&deployment=d"),
        WsCase("query:azure-resource-dots", target=route + b"?resource=../../x&deployment=d"),
        WsCase("query:azure-resource-host", target=route + b"?resource=evil.example%2F&deployment=d"),
        WsCase("query:azure-resource-nul", target=route + b"?resource=a%00b&deployment=d", raw=True),
        WsCase("query:azure-resource-unicode", target=route + b"?resource=%C3%A9vil&deployment=d", raw=True),
        WsCase("query:azure-resource-invalid-utf8", target=route + b"?resource=%ff%fe&deployment=d", raw=True),
        WsCase("query:azure-deployment-traversal", target=route + b"?resource=r&deployment=..%2F..%2Fx", raw=True),
        WsCase("query:azure-deployment-8k", target=route + b"?resource=r&deployment=" + b"d" * WS_LONG),
        WsCase(
            "query:azure-api-version-junk",
            target=route + b"?resource=r&deployment=d&api-version=%0d%0aX:%201",
            raw=True,
        ),
        WsCase("query:azure-repeated", target=route + b"?resource=a&resource=b&deployment=d&deployment=..", raw=True),
        WsCase("query:junk", target=route + b"?%zz=%00&&=&a&%ff=%fe", raw=True),
        WsCase("query:model-nul", target=route + b"?model=%00", raw=True),
        WsCase("query:model-crlf", target=route + b"?model=a%0d%0aHost:%20evil", raw=True),
        WsCase("query:long-8k", target=route + b"?" + b"a=1&" * (WS_LONG // 4), raw=True),
        # paths
        WsCase("path:unknown-route", target=b"/v1/gateway/oai/realtimeX"),
        WsCase("path:other-provider", target=b"/v1/gateway/anthropic/realtime"),
        WsCase("path:root", target=b"/"),
        WsCase("path:pct-traversal", target=route + b"/..%2f..%2fv1%2fmodels", raw=True),
        WsCase("path:pct-nul", target=route + b"%00", raw=True),
        WsCase("path:long-8k", target=route + b"/" + b"a" * WS_LONG, raw=True),
        # subprotocols
        WsCase("subprotocol:1000", subprotocols=tuple(f"p{i}" for i in range(1000))),
        WsCase("subprotocol:8k", headers=((b"Sec-WebSocket-Protocol", b"p" * WS_LONG),), raw=True),
        WsCase("subprotocol:helicone-auth-and-realtime", subprotocols=("realtime", "helicone-auth.@KEY@"), auth=False),
        # Helicone-* headers parsed before the upgrade
        WsCase("header:request-id-junk", headers=((b"Helicone-Request-Id", b"not-a-uuid"),)),
        WsCase("header:fallbacks-deep-1000", headers=((b"Helicone-Fallbacks", deep_array(1000)),)),
        WsCase(
            "header:fallbacks-body-override-deep-1000",
            headers=((b"Helicone-Fallbacks", _fallbacks(("bodyKeyOverride",), deep_object(1000))),),
        ),
        WsCase("header:ratelimit-junk", headers=((b"Helicone-RateLimit-Policy", b"NaN;w=1e400"),)),
        WsCase("header:cache-bucket-5000-digits", headers=((b"Helicone-Cache-Bucket-Max-Size", b"9" * 5000),)),
        WsCase("header:audio-flag-invalid-utf8", headers=((b"Helicone-Realtime-Log-Audio", b"\xff"),), raw=True),
        WsCase("header:user-id-invalid-utf8", headers=((b"Helicone-User-Id", b"\xff\xfe"),), raw=True),
        # what the HTTP and WebSocket servers parse before heliport
        WsCase("wire:header-nul", headers=((b"Helicone-User-Id", b"a\x00b"),), raw=True),
        WsCase("wire:header-esc", headers=((b"Helicone-User-Id", b"a\x1bb"),), raw=True),
        WsCase("wire:subprotocol-ctl", headers=((b"Sec-WebSocket-Protocol", b"real\x01time"),), raw=True),
        WsCase("wire:subprotocol-empty-list", headers=((b"Sec-WebSocket-Protocol", b",,,"),), raw=True),
        WsCase("wire:subprotocol-space-inside", headers=((b"Sec-WebSocket-Protocol", b"a b, c"),), raw=True),
        WsCase("wire:subprotocol-quoted", headers=((b"Sec-WebSocket-Protocol", b'"realtime"'),), raw=True),
        WsCase(
            "wire:subprotocol-invalid-utf8", headers=((b"Sec-WebSocket-Protocol", b"helicone-auth.\xff\xfe"),), raw=True
        ),
        WsCase("wire:subprotocol-latin1", headers=((b"Sec-WebSocket-Protocol", b"r\xe9altime"),), raw=True),
    ]
    return cases


# --- OpenTelemetry ingest (the proxy app's /v1/trace/log and /v1/trace/log-python) ----------------------

_OTEL_NS = 1_767_225_600_000_000_000  # 2026-01-01
_OTEL_ATTRIBUTES: dict[str, str | int] = {
    "llm.request.type": "chat",
    "gen_ai.system": "OpenAI",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.prompt.0.role": "user",
    "gen_ai.prompt.0.content": "hi",
    "gen_ai.completion.0.role": "assistant",
    "gen_ai.completion.0.content": "hello",
    "gen_ai.usage.prompt_tokens": 1,
    "llm.usage.total_tokens": 2,
    "traceloop.association.properties.Helicone-User-Id": "fuzz-user",
}


def _otel_value(value: str | int) -> dict[str, str]:
    # OTLP/JSON writes 64-bit integers as strings.
    return {"intValue": str(value)} if isinstance(value, int) else {"stringValue": value}


_OTEL_TRACE_ID, _OTEL_SPAN_ID = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
_OTEL_SPAN: dict[str, Any] = {
    "traceId": _OTEL_TRACE_ID,
    "spanId": _OTEL_SPAN_ID,
    "name": "openai.chat",
    "kind": 3,
    "startTimeUnixNano": str(_OTEL_NS),
    "endTimeUnixNano": str(_OTEL_NS + 1_000_000_000),
    "attributes": [{"key": k, "value": _otel_value(v)} for k, v in _OTEL_ATTRIBUTES.items()],
    "status": {"code": 1},
}
#: Helicone's ``OTELTrace``: one resource, one scope, one LLM span.
_OTEL_TRACE = {
    "resourceSpans": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "fuzz"}}]},
            "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation.openai.v1"}, "spans": [_OTEL_SPAN]}],
        }
    ]
}
_SPAN: tuple[str | int, ...] = ("resourceSpans", 0, "scopeSpans", 0, "spans", 0)

OTEL_ROUTES = (
    Route(
        "trace-log",
        "POST",
        "/v1/trace/log",
        _OTEL_TRACE,
        (
            (("resourceSpans",), "full"),
            (("resourceSpans", 0), "core"),
            (("resourceSpans", 0, "scopeSpans"), "core"),
            (("resourceSpans", 0, "resource"), "core"),
            ((*_SPAN[:-1],), "core"),
            (_SPAN, "core"),
            ((*_SPAN, "traceId"), "full"),
            ((*_SPAN, "spanId"), "core"),
            ((*_SPAN, "name"), "core"),
            ((*_SPAN, "kind"), "core"),
            ((*_SPAN, "startTimeUnixNano"), "full"),
            ((*_SPAN, "endTimeUnixNano"), "full"),
            ((*_SPAN, "attributes"), "full"),
            ((*_SPAN, "attributes", 0), "core"),
            ((*_SPAN, "attributes", 0, "key"), "core"),
            ((*_SPAN, "attributes", 0, "value"), "full"),
            ((*_SPAN, "attributes", 7, "value", "intValue"), "full"),
            ((*_SPAN, "attributes", 9, "value", "stringValue"), "full"),
            ((*_SPAN, "status"), "core"),
            ((*_SPAN, "status", "code"), "core"),
        ),
    ),
    Route("trace-log-python", "POST", "/v1/trace/log-python", _OTEL_TRACE, ((("resourceSpans",), "core"),)),
)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _fixed64(number: int, value: int) -> bytes:
    return _varint(number << 3 | 1) + value.to_bytes(8, "little")


def _attribute(key: str, any_value: bytes) -> bytes:
    """A span attribute (``KeyValue``) whose value is the given encoded ``AnyValue``."""
    return _field(9, _field(1, key.encode()) + _field(2, any_value))


def _export(span_fields: bytes, *, attributes: bool = True, spans: int = 1) -> bytes:
    """An ``ExportTraceServiceRequest`` holding ``spans`` copies of one span: the given fields, plus
    (unless told not to) the LLM attributes of the JSON template, so the span is an LLM call."""
    span = span_fields
    if attributes:
        for key, value in _OTEL_ATTRIBUTES.items():
            any_value = _varint(3 << 3) + _varint(value) if isinstance(value, int) else _field(1, value.encode())
            span += _attribute(key, any_value)
    scope_spans = _field(1, _field(1, b"opentelemetry.instrumentation.openai.v1")) + _field(2, span) * spans
    return _field(1, _field(2, scope_spans))


def _deep_any_value(depth: int, field: int) -> bytes:
    """An ``AnyValue`` nested ``depth`` deep: arrays of arrays (``field`` 5) or key-value lists (6)."""
    value = _field(1, b"x")
    for _ in range(depth):
        inner = _field(1, value) if field == 5 else _field(1, _field(1, b"k") + _field(2, value))
        value = _field(field, inner)
    return value


def _protobuf_cases() -> list[Case]:
    """OTLP/protobuf bodies (``application/x-protobuf``) a decoder meets: valid, truncated, overlong
    lengths and varints, nesting past any recursion limit, invalid UTF-8, times and ids out of range."""
    trace_id, span_id = bytes.fromhex(_OTEL_TRACE_ID), bytes.fromhex(_OTEL_SPAN_ID)
    ids = _field(1, trace_id) + _field(2, span_id)
    times = _fixed64(7, _OTEL_NS) + _fixed64(8, _OTEL_NS + 1_000_000_000)
    span = ids + _field(5, b"openai.chat") + times
    valid = _export(span)
    bodies: dict[str, bytes] = {
        "valid": valid,
        "empty": b"",
        "binary-junk": bytes(range(256)),
        "truncated": valid[:-7],
        "length-overflow": b"\x0a\xff\xff\xff\xff\x0f",
        "length-past-end": b"\x0a\x10\x12\x02",
        "varint-11-bytes": b"\x08" + b"\xff" * 10 + b"\x01",
        "group-start": b"\x0b\x0b\x0b",
        "field-zero": b"\x00\x01",
        "json-as-protobuf": _dumps(_OTEL_TRACE),
        "deep-array-value-1000": _export(span + _attribute("gen_ai.prompt.1.content", _deep_any_value(1000, 5))),
        "deep-kvlist-1000": _export(span + _attribute("gen_ai.prompt.1.content", _deep_any_value(1000, 6))),
        "deep-array-value-50000": _export(span + _attribute("x", _deep_any_value(50_000, 5)), attributes=False),
        "name-invalid-utf8": _export(ids + _field(5, b"\xff\xfe") + times),
        "attribute-invalid-utf8": _export(span + _attribute("gen_ai.prompt.1.content", _field(1, b"\xc0\xaf"))),
        "trace-id-3-bytes": _export(_field(1, b"abc") + _field(2, span_id) + times),
        "span-id-64k": _export(_field(1, trace_id) + _field(2, b"s" * 65536) + times),
        "no-ids": _export(times),
        "times-max": _export(ids + _fixed64(7, 2**64 - 1) + _fixed64(8, 2**64 - 1)),
        "end-before-start": _export(ids + _fixed64(7, _OTEL_NS) + _fixed64(8, 0)),
        "times-zero": _export(ids),
        "tokens-int64-min": _export(
            span + _attribute("gen_ai.usage.completion_tokens", _varint(3 << 3) + _varint(2**64 - 2**63))
        ),
        "tokens-nan": _export(
            span + _attribute("gen_ai.usage.completion_tokens", _varint(4 << 3 | 1) + b"\x00" * 6 + b"\xf8\x7f")
        ),
        "attributes-10000": _export(span + b"".join(_attribute(f"a{i}", _field(1, b"v")) for i in range(10_000))),
        "spans-200": _export(span, spans=200),
        "prompt-index-huge": _export(span + _attribute("gen_ai.prompt.99999999999.content", _field(1, b"x"))),
        "association-crlf": _export(
            span + _attribute("traceloop.association.properties.Helicone-Property-a\r\nb", _field(1, b"v\r\nx"))
        ),
        "association-request-id-junk": _export(
            span + _attribute("traceloop.association.properties.Helicone-Request-Id", _field(1, b"not-a-uuid"))
        ),
    }
    protobuf = b"application/x-protobuf"
    cases = [Case(f"proto:{name}", body=body, content_type=protobuf) for name, body in bodies.items()]
    cases += [
        Case(
            "proto:gzip-valid",
            body=gzip.compress(valid),
            content_type=protobuf,
            headers=((b"Content-Encoding", b"gzip"),),
        ),
        Case(
            "proto:gzip-junk",
            body=b"\x1f\x8b\x08\x00junk",
            content_type=protobuf,
            headers=((b"Content-Encoding", b"gzip"),),
        ),
        Case(
            "proto:gzip-bomb",
            body=gzip.compress(b"\x00" * (REQUEST_CAP * 4)),
            content_type=protobuf,
            headers=((b"Content-Encoding", b"gzip"),),
            expect=413,
        ),
        Case("proto:deflate-junk", body=b"junk", content_type=protobuf, headers=((b"Content-Encoding", b"deflate"),)),
        Case("proto:encoding-unknown", body=valid, content_type=protobuf, headers=((b"Content-Encoding", b"zstd"),)),
        Case("proto:over-cap", body=valid + _field(15, b"x" * REQUEST_CAP), content_type=protobuf, expect=413),
    ]
    return cases


def _otel_specific() -> list[Case]:
    """OTLP/JSON values the generic sets miss: 64-bit integers past their range, ids of the wrong size."""
    t = _OTEL_TRACE
    values = {
        "startTimeUnixNano": {
            "2^64": b'"18446744073709551616"',
            "negative": b'"-1"',
            "float": b"1.5e18",
            "hex": b'"0x10"',
        },
        "endTimeUnixNano": {"5000-digits": b'"' + b"9" * 5000 + b'"', "before-start": b'"0"'},
        "traceId": {
            "odd-hex": b'"abc"',
            "not-hex": b'"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"',
            "base64": b'"W47/95gDgQPSabYzgT/GDA=="',
        },
        "spanId": {"64k": b'"' + b"a" * 65536 + b'"', "empty": b'""'},
    }
    cases = [
        Case(f"field:span.{name}={label}", body=with_literal(t, (*_SPAN, name), literal))
        for name, literals in values.items()
        for label, literal in literals.items()
    ]
    tokens = (*_SPAN, "attributes", 7, "value")
    cases += [
        Case(f"field:span.tokens={label}", body=with_literal(t, tokens, literal))
        for label, literal in {
            "int-2^63": b'{"intValue":"9223372036854775808"}',
            "int-1e400": b'{"intValue":"1e400"}',
            "double-1e308": b'{"doubleValue":1e308}',
            "double-nan-string": b'{"doubleValue":"NaN"}',
            "two-kinds": b'{"intValue":"1","stringValue":"x"}',
            "deep-array-value-1000": b'{"arrayValue":{"values":[' * 1000 + b'{"stringValue":"x"}' + b"]}}" * 1000,
        }.items()
    ]
    cases.append(
        Case("field:spans-200", body=_dumps({"resourceSpans": [{"scopeSpans": [{"spans": [_OTEL_SPAN] * 200}]}]}))
    )
    return cases


def otel_cases() -> dict[str, list[Case]]:
    valid = _dumps(_OTEL_TRACE)
    out: dict[str, list[Case]] = {}
    for route in OTEL_ROUTES:
        if route.name == "trace-log":
            cases = json_bodies(REQUEST_CAP) + field_cases(route) + _otel_specific()
            cases += content_type_cases(valid) + [replace(c, content_type=JSON) for c in _protobuf_cases()[:6]]
            cases += with_body(header_cases(), valid)
            cases += with_body(wire_cases(), valid)
            cases += with_body(auth_cases(["Authorization", "Helicone-Auth"]), valid)
            cases += method_cases(route.method) + path_cases(route.path, exact=True)
        else:
            cases = _protobuf_cases() + field_cases(route) + json_bodies(REQUEST_CAP)[:12]
            cases += method_cases(route.method)[:2] + path_cases(route.path, exact=True)[:4]
            cases += with_body(auth_cases(["Authorization", "Helicone-Auth"]), _protobuf_cases()[0].body or b"")
        out[route.name] = cases
    return out


def sizes() -> dict[str, int]:
    """The number of cases per family (and in all)."""
    counts = {
        "proxy": sum(len(c) for c in proxy_cases().values()),
        "gateway": sum(len(c) for c in gateway_cases().values()),
        "async_log": sum(len(c) for c in async_log_cases().values()),
        "otel_ingest": sum(len(c) for c in otel_cases().values()),
        "query_api": sum(len(c) for c in api_cases().values()),
        "dashboard_api": sum(len(c) for c in dashboard_cases().values()),
        "realtime": len(realtime_cases()),
    }
    counts["total"] = sum(counts.values())
    return counts


if __name__ == "__main__":
    for family, count in sizes().items():
        print(f"{family:>14} {count}")
