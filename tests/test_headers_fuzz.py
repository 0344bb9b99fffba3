"""Fuzzing every ``Helicone-*`` header: :func:`parse_headers` directly, then the live gateway over a raw socket.

Whatever a client sends, heliport answers it as a client error or serves the request: :func:`parse_headers`
returns :class:`RequestOptions` or raises :class:`InvalidHeaderError` (400) or :class:`AuthenticationError`
(401), never anything else; over HTTP no fuzzed header gets a 5xx, and every 4xx is a JSON error.

The header names come from heliport's own table (:data:`heliport.headers._FIELDS`) and from Helicone's
header directory (``/work/shared/seeds/docs/helicone-headers__header-directory.md`` when present, the names
it listed when this suite was written otherwise). The HTTP part writes its requests on a raw socket because
HTTP clients refuse control characters in header values: this way the bytes really reach the server.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import h11
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heliport.auth import create_key
from heliport.errors import AuthenticationError, HeliportError, InvalidHeaderError
from heliport.headers import _FIELDS, RequestOptions, parse_headers
from heliport.store.keys import Organisation
from tests.harness import Gateway
from tests.mock_provider import MockProvider

# --- header names -------------------------------------------------------------------------------------

_DOC = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "docs" / "helicone-headers__header-directory.md"
# What Helicone's header directory listed when this suite was written (request and response headers
# alike: a client may echo a response header back, and heliport must cope).
_DOC_NAMES = (
    "Helicone-Auth", "Helicone-Cache", "Helicone-Cache-Bucket-Idx", "Helicone-Cache-Bucket-Max-Size",
    "Helicone-Cache-Seed", "Helicone-Fallback-Index", "Helicone-Id", "Helicone-Model-Override",
    "Helicone-Property-App", "Helicone-Property-MyUser", "Helicone-Property-Session", "Helicone-RateLimit-Limit",
    "Helicone-RateLimit-Policy", "Helicone-RateLimit-Remaining", "Helicone-Retry-Factor",
    "Helicone-Retry-Max-Timeout", "Helicone-Retry-Min-Timeout", "Helicone-Retry-Num", "Helicone-Session-Id",
)  # fmt: skip


def _doc_names() -> set[str]:
    if not _DOC.exists():
        return set()
    return set(re.findall(r"\bHelicone-[A-Za-z0-9-]*[A-Za-z0-9]\b", _DOC.read_text(), flags=re.IGNORECASE))


# One spelling per name (case-insensitive), the table's own where it has one.
_KNOWN = {display.lower(): display for display, _, _ in _FIELDS.values()}
for _name in (*_DOC_NAMES, *sorted(_doc_names())):
    _KNOWN.setdefault(_name.lower(), _name)
# Edge names of the property family: no property name, and an odd one.
_KNOWN.setdefault("helicone-property-", "Helicone-Property-")
_KNOWN.setdefault("helicone-property-ünïcode", "Helicone-Property-Ünïcode")
HEADER_NAMES = sorted(_KNOWN.values())


def test_every_parsed_and_documented_header_is_fuzzed() -> None:
    names = {name.lower() for name in HEADER_NAMES}
    assert set(_FIELDS) <= names
    assert {name.lower() for name in _doc_names()} <= names


_cases: list[Callable[[str], str]] = [str, str.lower, str.upper, str.swapcase]
header_names = st.builds(lambda name, case: case(name), st.sampled_from(HEADER_NAMES), st.sampled_from(_cases))
# On the wire a name must be a token: the HTTP server refuses any other before heliport sees it.
wire_header_names = header_names.filter(lambda name: name.isascii())

# --- values -------------------------------------------------------------------------------------------

# Characters parsers trip on: separators of the formats heliport parses, JSON punctuation, blanks, controls.
_SPECIAL = "\x00\x01\x08\t\n\x0b\r\x1b\x7f\x85\xa0\u2028\ufeff ;=,\"'{}[]:\\-+._eE0123456789"
texts = st.text(st.one_of(st.characters(codec="utf-8"), st.sampled_from(_SPECIAL)), max_size=80)  # no surrogates
numbers = st.one_of(
    st.integers().map(str),
    st.integers(-(10**400), 10**400).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(4_000, 20_000).map(lambda n: "9" * n),  # past int()'s 4300-digit limit
    st.sampled_from(["1e999", "-0", "nan", "-inf", "1_000", "٣", "0x10", "+5", " 7 ", "5.", ".5", "1e-999"]),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
# Deep nesting, also where the schema lets it go deep: inside a fallback's bodyKeyOverride (any JSON).
_DEEP_PREFIXES = ["", '[{"target-url": "https://x.com", "headers": {}, "onCodes": [], "bodyKeyOverride": ']
json_fragments = st.one_of(
    json_values.map(json.dumps),
    json_values.map(json.dumps).map(lambda text: text[: len(text) // 2]),  # cut short
    st.builds(lambda prefix, opener, n: prefix + opener * n, st.sampled_from(_DEEP_PREFIXES),
              st.sampled_from(["[", "{", '{"a":', "[{", '{"a": [']), st.integers(1, 5000)),
)  # fmt: skip
# Header names for a fallback's `headers`: mostly tokens, some of the framing headers, some junk.
# Never the mock provider's `x-mock-*` knobs, which would make the upstream fail on purpose.
fallback_header_names = st.one_of(
    st.from_regex(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,20}", fullmatch=True).filter(lambda n: "mock" not in n.lower()),
    st.sampled_from(["Transfer-Encoding", "content-length", "Host", "Connection", "TE", "Upgrade", "Authorization"]),
    texts.filter(lambda n: "mock" not in n.lower()),
)
# `MOCK` stands for the mock provider's URL in the HTTP part. No real provider host here: the HTTP part
# must never make the gateway call out to the internet.
target_urls = st.one_of(
    st.sampled_from(["MOCK", "https://attacker.example", "http://localhost", "ftp://x", "", "https://", "//x"]),
    texts,
    texts.map(lambda t: "https://" + t),
)
code_lists = st.lists(
    st.one_of(
        st.integers(-(2**70), 2**70),
        st.fixed_dictionaries({"from": st.integers(0, 999), "to": st.integers(0, 999)}),
        json_values,
    ),
    max_size=4,
)


def _fallback_lists(targets: st.SearchStrategy[str], body_key_override: bool) -> st.SearchStrategy[str]:
    entry = st.fixed_dictionaries(
        {
            "target-url": targets,
            "headers": st.dictionaries(fallback_header_names, st.one_of(texts, json_values), max_size=3),
            "onCodes": code_lists,
        },
        optional={"bodyKeyOverride": json_values} if body_key_override else {},
    )
    return st.lists(entry, max_size=3).map(lambda fallbacks: json.dumps(fallbacks, ensure_ascii=False))


fallback_lists = _fallback_lists(target_urls, body_key_override=True)
# Over HTTP: mostly the mock as target, so that the fallback's headers are the only thing wrong; no
# bodyKeyOverride, which could hand the mock a body it does not answer well (the mock is not under test).
wire_fallback_lists = _fallback_lists(st.one_of(st.just("MOCK"), st.just("MOCK"), target_urls), body_key_override=False)
# Values close to the valid ones, so the parsers get past their first check.
shaped = st.one_of(
    texts.map(lambda t: "Bearer " + t),
    st.sampled_from(["Bearer", "Bearer ", "Bearer    ", "bearer\t", "Basic eHl6", "sk-heliport-x", "true", "FALSE"]),
    st.builds(lambda q, w, rest: f"{q};w={w}{rest}", numbers, numbers, st.sampled_from(["", ";u=cents", ";s=user"])),
    st.uuids().map(str),
    st.builds(lambda u, t: str(u)[: len(str(u)) // 2] + t, st.uuids(), texts),
    st.lists(texts, max_size=5).map(",".join),
)
long_values = st.builds(
    lambda piece, n: piece * n, st.sampled_from(["a", "é", "🙂", " ", ",", "\t", "Bearer "]), st.integers(1_000, 60_000)
)
values = st.one_of(st.just(""), texts, numbers, json_fragments, fallback_lists, shaped, long_values)
value_bytes = st.one_of(values.map(lambda v: v.encode()), st.binary(max_size=200))

# --- parse_headers ------------------------------------------------------------------------------------

_WIRE_FORBIDDEN = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "host",
     "content-length", "proxy-authenticate", "proxy-authorization"}
)  # fmt: skip


def _assert_fallbacks_fit_the_wire(options: RequestOptions) -> None:
    """An accepted fallback can be written on an HTTP/1.1 connection as is (h11 is the judge)."""
    for fallback in options.fallbacks:
        parts = urlsplit(fallback.target_url.strip())
        assert parts.scheme.lower() in ("http", "https") and parts.hostname
        for name, value in fallback.headers.items():
            assert name.lower() not in _WIRE_FORBIDDEN
            # h11 also refuses blanks at either end of a value, which HTTP ignores there anyway.
            request = h11.Request(
                method="POST", target="/", headers=[("host", "x"), (name.encode(), value.encode().strip(b" \t"))]
            )
            h11.Connection(h11.CLIENT).send(request)


def _parse(raw: list[tuple[bytes, bytes]]) -> tuple[RequestOptions, list[tuple[str, str]]] | HeliportError:
    """What :func:`parse_headers` returns, or the client error it raises; any other exception escapes."""
    try:
        return parse_headers(raw)
    except (InvalidHeaderError, AuthenticationError) as err:
        return err


def _assert_options_or_client_error(parsed: tuple[RequestOptions, list[tuple[str, str]]] | HeliportError) -> None:
    if isinstance(parsed, HeliportError):
        assert 400 <= parsed.status < 500
        assert msgspec.json.decode(parsed.body())["error"]["code"] in ("invalid_header", "invalid_api_key")
        return
    options, forward = parsed
    assert isinstance(options, RequestOptions)
    assert forward == []  # every fuzzed header is ours: none goes upstream
    _assert_fallbacks_fit_the_wire(options)


# Values of 60 kB are the point, not a slow test: no deadline, no size health checks.
_FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_UNIT = settings(_FUZZ, max_examples=50)


@pytest.mark.parametrize("name", HEADER_NAMES)
@_UNIT
@given(value=value_bytes)
def test_every_header_parses_or_is_a_client_error(name: str, value: bytes) -> None:
    _assert_options_or_client_error(_parse([(name.encode(), value)]))


@settings(_UNIT, max_examples=200)
@given(headers=st.lists(st.tuples(header_names, value_bytes), min_size=1, max_size=4))
def test_headers_together_parse_or_are_a_client_error(headers: list[tuple[str, bytes]]) -> None:
    # Several at once, in any case and order: Helicone-Auth's 401 waits for the others, the retry
    # timeouts are compared, a header may come twice.
    _assert_options_or_client_error(_parse([(name.encode(), value) for name, value in headers]))


@settings(_UNIT, max_examples=300)
@given(value=fallback_lists)
def test_accepted_fallbacks_can_go_on_the_wire(value: str) -> None:
    parsed = _parse([(b"helicone-fallbacks", value.encode())])
    if isinstance(parsed, HeliportError):
        assert isinstance(parsed, InvalidHeaderError) and parsed.param == "Helicone-Fallbacks"
        return
    _assert_fallbacks_fit_the_wire(parsed[0])


# --- the live gateway, over a raw socket --------------------------------------------------------------

_PATH = "/v1/gateway/oai/v1/chat/completions"
_BODY = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "fuzz"}]}).encode()
# What the HTTP server (uvicorn) answers itself, before heliport sees the request, to bytes HTTP forbids.
_SERVER_REFUSAL = b"Invalid HTTP request received."
# Bytes a field value may not carry (RFC 9110 section 5.5): controls but HTAB, and DEL. CRLF starts a header.
_CTL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


@pytest.fixture(scope="module")
def fuzz_key(gateway: Gateway) -> str:
    """A key of an organisation of its own: fuzzed rate-limit policies count nobody else's requests."""

    async def make() -> str:
        org = Organisation(id=str(uuid.uuid4()), name=f"fuzz-{uuid.uuid4().hex}", created_at=datetime.now(UTC))
        await gateway.store.put_org(org)
        plain, _ = await create_key(gateway.store, org.id, "fuzz")
        return plain

    return asyncio.run(make())


def _exchange(port: int, headers: list[tuple[bytes, bytes]]) -> tuple[int, dict[str, str], bytes]:
    """One request as these exact bytes, and the response: (status, headers, body)."""
    head = [
        f"POST {_PATH} HTTP/1.1".encode(),
        f"Host: 127.0.0.1:{port}".encode(),
        b"Connection: close",  # before the fuzzed header: a CRLF in its value cannot take it away
        b"Content-Type: application/json",
        f"Content-Length: {len(_BODY)}".encode(),
        *(name + b": " + value for name, value in headers),
    ]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"\r\n".join(head) + b"\r\n\r\n" + _BODY)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    top, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = top.decode("latin-1").split("\r\n")
    response_headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        response_headers[name.strip().lower()] = value.strip()
    if response_headers.get("transfer-encoding") == "chunked":
        body = _unchunk(body)
    return int(status_line.split(" ")[1]), response_headers, body


def _unchunk(data: bytes) -> bytes:
    body = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        body, data = body + data[:size], data[size + 2 :]
    return body


def _auth_unless(name: bytes, key: str) -> list[tuple[bytes, bytes]]:
    """A valid Helicone-Auth, unless ``name`` is the fuzzed one: then that stands alone."""
    return [] if name.lower() == b"helicone-auth" else [(b"Helicone-Auth", f"Bearer {key}".encode())]


def _assert_answered_without_a_5xx(status: int, headers: dict[str, str], body: bytes, sent: bytes) -> None:
    assert status < 500, (status, body[:500])
    if status < 400:
        return
    if body == _SERVER_REFUSAL:
        # The HTTP server refused bytes HTTP forbids in a header before heliport was called.
        assert status == 400 and _CTL.search(sent), sent[:200]
        return
    assert headers.get("content-type", "").startswith("application/json"), (status, headers, body[:200])
    error = json.loads(body)["error"]
    assert isinstance(error, dict) and error.get("message"), body[:500]


@settings(_FUZZ, max_examples=60)
@given(
    header=st.one_of(
        st.tuples(wire_header_names, value_bytes),
        # Half the requests: fallbacks the gateway would send on to the mock, with fuzzed headers.
        st.tuples(st.just("Helicone-Fallbacks"), wire_fallback_lists.map(str.encode)),
    )
)
def test_the_gateway_answers_fuzzed_headers_without_a_5xx(
    gateway: Gateway, mock_provider: MockProvider, fuzz_key: str, header: tuple[str, bytes]
) -> None:
    name, value = header
    value = value.replace(b"MOCK", mock_provider.url.encode())
    headers = [*_auth_unless(name.encode(), fuzz_key), (name.encode(), value)]
    _assert_answered_without_a_5xx(*_exchange(gateway.server.port, headers), sent=value)


@pytest.mark.parametrize(
    ("name", "value", "status"),
    [
        # No key after Bearer, even with blanks httpx will not send: the 401 of a missing key.
        (b"Helicone-Auth", b"Bearer", 401),
        (b"Helicone-Auth", b"Bearer    ", 401),
        (b"Helicone-Auth", b"Bearer \t ", 401),
        (b"Helicone-Auth", b"Basic eHl6", 401),
        (b"Helicone-Auth", b"\xff\xfe", 401),
        # A fallback's header value with CR/LF (JSON-escaped, so HTTP carries it): a 400 naming the header.
        (b"Helicone-Fallbacks", b'[{"target-url": "MOCK", "headers": {"x-a": "1\\r\\nx-b: 2"}, "onCodes": []}]', 400),
        (b"Helicone-Fallbacks", b'[{"target-url": "MOCK", "headers": {"x-a": "\\u0000"}, "onCodes": []}]', 400),
        (b"Helicone-Fallbacks", b'[{"target-url": "MOCK", "headers": {"TE": "trailers"}, "onCodes": []}]', 400),
        (b"Helicone-Fallbacks", b"[" * 3000, 400),
        (b"Helicone-Fallbacks", b'[{"target-url": "MOCK", "headers": {}, "onCodes": [], "bodyKeyOverride": '
         + b'{"a": ' * 3000 + b"1" + b"}" * 3001 + b"]", 400),
        # Raw control bytes: the HTTP server refuses them before heliport; CRLF just starts another header.
        (b"Helicone-User-Id", b"a\x00b", 400),
        (b"Helicone-User-Id", b"a\x7f", 400),
        (b"Helicone-User-Id", b"a\rb", 400),
        (b"Helicone-User-Id", b"a\r\nx-extra: 1", 200),
        (b"Helicone-Property-City", "Zürich".encode(), 200),
        (b"Helicone-Property-Bytes", b"\xff\xfe\x80", 200),
    ],
)  # fmt: skip
def test_the_gateway_answers_known_hard_cases(
    gateway: Gateway, mock_provider: MockProvider, fuzz_key: str, name: bytes, value: bytes, status: int
) -> None:
    value = value.replace(b"MOCK", mock_provider.url.encode())
    got, response_headers, body = _exchange(gateway.server.port, [*_auth_unless(name, fuzz_key), (name, value)])
    assert got == status, body[:300]
    _assert_answered_without_a_5xx(got, response_headers, body, sent=value)
    if name == b"Helicone-Auth":
        assert json.loads(body)["error"]["code"] == "invalid_api_key"
    elif name == b"Helicone-Fallbacks":
        error: dict[str, Any] = json.loads(body)["error"]
        assert (error["code"], error["param"]) == ("invalid_header", "Helicone-Fallbacks")


def test_non_ascii_values_reach_the_upstream_byte_for_byte(
    gateway: Gateway, mock_provider: MockProvider, fuzz_key: str
) -> None:
    marker = uuid.uuid4().hex
    fallbacks = json.dumps([{"target-url": "MOCK", "headers": {"x-fallback-city": "Zürich"}, "onCodes": []}])
    headers = [
        (b"Helicone-Auth", f"Bearer {fuzz_key}".encode()),
        (b"x-marker", marker.encode()),
        (b"x-city", "Zürich 🙂".encode()),
        (b"Helicone-Fallbacks", fallbacks.replace("MOCK", mock_provider.url).encode()),
    ]
    status, _, body = _exchange(gateway.server.port, headers)
    assert status == 200, body[:300]
    (seen,) = [r for r in mock_provider.requests if r.header("x-marker") == marker]
    # The mock reads header bytes as latin-1: these are the bytes heliport put on the wire.
    assert seen.header("x-city") == "Zürich 🙂".encode().decode("latin-1")
    assert seen.header("x-fallback-city") == "Zürich".encode().decode("latin-1")
