from __future__ import annotations

import json
import uuid

import pytest

from heliport.errors import AuthenticationError, InvalidHeaderError
from heliport.headers import parse_headers


def raw(**headers: str) -> list[tuple[bytes, bytes]]:
    return [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]


def test_helicone_headers_become_options_and_are_not_forwarded() -> None:
    request_id = str(uuid.uuid4()).upper()
    options, forward = parse_headers(
        [
            (b"Helicone-Auth", b"Bearer sk-heliport-abc"),
            (b"helicone-request-id", request_id.encode()),
            (b"helicone-property-Feature", b"search"),
            (b"helicone-property-", b"ignored: no name"),
            (b"helicone-cache-enabled", b"TRUE"),
            (b"helicone-cache-ignore-keys", b'"request_id", timestamp'),
            (b"helicone-cache-bucket-max-size", b"3"),
            (b"helicone-some-future-header", b"kept on the log"),
            (b"authorization", b"Bearer sk-provider"),
            (b"content-type", b"application/json"),
            (b"host", b"heliport.local"),
            (b"connection", b"keep-alive"),
            (b"content-length", b"12"),
        ]
    )
    assert options.auth_token == "sk-heliport-abc"
    assert options.request_id == request_id.lower()
    assert options.properties == {"feature": "search"}
    assert options.cache_enabled is True
    assert options.cache_ignore_keys == ("request_id", "timestamp")
    assert options.cache_bucket_max_size == 3
    assert options.other == {"helicone-some-future-header": "kept on the log"}
    assert forward == [("authorization", "Bearer sk-provider"), ("content-type", "application/json")]


def test_defaults_when_no_helicone_headers() -> None:
    options, forward = parse_headers(raw(accept="*/*"))
    uuid.UUID(options.request_id)  # a fresh one
    assert options.auth_token is None
    assert options.omit_request is False
    assert forward == [("accept", "*/*")]


def test_utf8_property_values_survive() -> None:
    options, _ = parse_headers([(b"helicone-property-city", "Zürich".encode())])
    assert options.properties == {"city": "Zürich"}


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("helicone-request-id", "123", "expected a UUID"),
        ("helicone-omit-response", "yes", "expected 'true' or 'false'"),
        ("helicone-cache-bucket-max-size", "0", "from 1 to 20"),
        ("helicone-cache-ignore-keys", "a,,b", "comma-separated"),
        ("helicone-cache-bucket-max-size", "21", "from 1 to 20"),
        ("helicone-fallbacks", "[", "JSON array"),
        ("helicone-fallbacks", "[]", "at least one"),
        ("helicone-fallbacks", '{"target-url": "https://api.openai.com"}', "JSON array of"),
        ("helicone-fallbacks", '[{"target-url": 5, "headers": {}, "onCodes": [500]}]', "$[0].target-url"),
        ("helicone-fallbacks", '[{"target-url": "https://x.com", "headers": {}}]', "onCodes"),
        ("helicone-fallbacks", '[{"target-url": "https://x.com", "headers": {}, "onCodes": ["5xx"]}]', "onCodes"),
        ("helicone-retry-enabled", "1", "expected 'true' or 'false'"),
        ("helicone-retry-num", "many", "integer from 0 to 10"),
        ("helicone-retry-num", "11", "from 0 to 10"),
        ("helicone-retry-factor", "0.5", "from 1 to 10"),
        ("helicone-retry-min-timeout", "-1", "from 0 to 60000"),
        ("helicone-ratelimit-policy", "10;w=30", "60"),
    ],
)
def test_malformed_values_name_the_header(name: str, value: str, problem: str) -> None:
    with pytest.raises(InvalidHeaderError) as caught:
        parse_headers([(name.encode(), value.encode())])
    assert caught.value.status == 400
    assert caught.value.param is not None and caught.value.param.lower() == name
    assert problem in caught.value.message


def test_retry_headers_become_a_policy() -> None:
    options, _ = parse_headers(
        raw(
            helicone_retry_enabled="true",
            helicone_retry_num="3",
            helicone_retry_factor="1.5",
            helicone_retry_min_timeout="10",
            helicone_retry_max_timeout="200",
        )
    )
    assert (options.retry_enabled, options.retry_num, options.retry_factor) == (True, 3, 1.5)
    assert (options.retry_min_timeout_ms, options.retry_max_timeout_ms) == (10, 200)


def test_retry_max_below_min_is_refused() -> None:
    with pytest.raises(InvalidHeaderError) as caught:
        parse_headers(raw(helicone_retry_min_timeout="500", helicone_retry_max_timeout="100"))
    assert caught.value.param == "Helicone-Retry-Max-Timeout"


def test_fallbacks_parse_with_codes_and_ranges() -> None:
    value = (
        '[{"target-url": "https://api.openai.com", "headers": {"Authorization": "Bearer a"},'
        ' "onCodes": [429, {"from": 500, "to": 599}], "bodyKeyOverride": {"model": "gpt-4o-mini"}},'
        ' {"target-url": "https://api.groq.com/openai", "headers": {}, "onCodes": []}]'
    )
    options, forward = parse_headers(raw(helicone_fallbacks=value))
    first, second = options.fallbacks
    assert first.target_url == "https://api.openai.com"
    assert first.headers == {"Authorization": "Bearer a"}
    assert first.body_key_override == {"model": "gpt-4o-mini"}
    assert [first.moves_on(s) for s in (429, 430, 499, 500, 503, 599, 600)] == [
        True, False, False, True, True, True, False,
    ]  # fmt: skip
    assert second.moves_on(500) is False
    assert forward == []


def test_rate_limit_policy_is_parsed_once() -> None:
    options, _ = parse_headers(raw(helicone_ratelimit_policy="100;w=3600;u=cents;s=User"))
    policy = options.rate_limit_policy
    assert policy is not None
    assert (policy.quota, policy.window, policy.unit, policy.segment) == (100, 3600, "cents", "user")


def _two_fallbacks(**second: object) -> bytes:
    """A valid first fallback and a second one with ``second`` overriding its fields."""
    entry: dict[str, object] = {"target-url": "https://api.openai.com", "headers": {}, "onCodes": [500]}
    entry.update(second)
    first = {"target-url": "https://api.groq.com/openai", "headers": {"x-ok": "1"}, "onCodes": [500]}
    return json.dumps([first, entry]).encode()


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        # Values: no C0 control character but HTAB, no DEL. CR/LF would split the upstream request.
        ({"x-key": "a\r\nx-injected: 1"}, "control character"),
        ({"x-key": "a\nb"}, "control character"),
        ({"x-key": "a\rb"}, "control character"),
        ({"x-key": "a\x00b"}, "control character"),
        ({"x-key": "\x1b[31m"}, "control character"),
        ({"x-key": "del\x7f"}, "control character"),
        # Names: RFC 9110 tokens only.
        ({"": "v"}, "token"),
        ({"bad name": "v"}, "token"),
        ({"x:y": "v"}, "token"),
        ({"x-clé": "v"}, "token"),
        ({"x\r\ny": "v"}, "token"),
        ({"x\ty": "v"}, "token"),
        # Hop-by-hop and framing headers belong to heliport's own connection to the upstream.
        ({"Transfer-Encoding": "chunked"}, "hop-by-hop"),
        ({"content-length": "5"}, "hop-by-hop"),
        ({"Host": "attacker.example"}, "hop-by-hop"),
        ({"Connection": "close"}, "hop-by-hop"),
        ({"Keep-Alive": "timeout=5"}, "hop-by-hop"),
        ({"Proxy-Connection": "keep-alive"}, "hop-by-hop"),
        ({"TE": "trailers"}, "hop-by-hop"),
        ({"Trailer": "x-checksum"}, "hop-by-hop"),
        ({"Upgrade": "h2c"}, "hop-by-hop"),
        ({"Proxy-Authorization": "Basic eA=="}, "hop-by-hop"),
    ],
)
def test_fallback_headers_are_checked_like_headers(headers: dict[str, str], problem: str) -> None:
    with pytest.raises(InvalidHeaderError) as caught:
        parse_headers([(b"helicone-fallbacks", _two_fallbacks(headers=headers))])
    error = caught.value
    assert error.status == 400 and error.code == "invalid_header" and error.param == "Helicone-Fallbacks"
    (name,) = headers
    assert "fallback 1" in error.message and repr(name) in error.message and problem in error.message


def test_fallback_headers_may_carry_tabs_utf8_and_any_token_name() -> None:
    headers = {"x-tab": "a\tb", "x-city": "Zürich", "X-a!#$%&'*+.^_`|~1": "v", "Authorization": "Bearer sk-x"}
    options, _ = parse_headers([(b"helicone-fallbacks", _two_fallbacks(headers=headers))])
    assert options.fallbacks[1].headers == headers


@pytest.mark.parametrize(
    "target",
    ["", "   ", "api.openai.com", "ftp://api.openai.com", "https://", "https://api openai.com",
     "https://api.openai.com\r\nx: 1", "https://api.openai.com\x00", "https://[::1"],
)  # fmt: skip
def test_fallback_target_url_must_be_an_http_url(target: str) -> None:
    with pytest.raises(InvalidHeaderError) as caught:
        parse_headers([(b"helicone-fallbacks", _two_fallbacks(**{"target-url": target}))])
    assert caught.value.param == "Helicone-Fallbacks"
    assert "fallback 1" in caught.value.message and "target-url" in caught.value.message


def test_fallback_body_key_override_is_kept_as_sent() -> None:
    # The override is body content, not a header: control characters and nesting are the caller's business.
    override = {"model": "gpt-4o-mini", "stop": ["\r\n", "\x00"], "metadata": {"a": {"b": [1, None, True]}}}
    options, _ = parse_headers([(b"helicone-fallbacks", _two_fallbacks(bodyKeyOverride=override))])
    assert options.fallbacks[1].body_key_override == override


@pytest.mark.parametrize(
    "value",
    [
        "[" * 5000,
        json.dumps([{"target-url": "https://api.openai.com", "headers": {}, "onCodes": []}])[:-2]
        + ', "bodyKeyOverride": '
        + '{"a": ' * 5000
        + "1"
        + "}" * 5001
        + "]",
    ],
)
def test_deeply_nested_fallbacks_are_a_400_not_a_crash(value: str) -> None:
    with pytest.raises(InvalidHeaderError) as caught:
        parse_headers([(b"helicone-fallbacks", value.encode())])
    assert caught.value.param == "Helicone-Fallbacks"


@pytest.mark.parametrize("value", ["", "   ", "Bearer", "Bearer ", "Bearer    ", "bearer\t", "BEARER  \t "])
def test_a_bearer_without_a_key_is_a_missing_key(value: str) -> None:
    # Exactly like no Helicone-Auth at all: each entry point answers its own 401 "Missing heliport key".
    options, _ = parse_headers([(b"helicone-auth", value.encode())])
    assert options.auth_token is None


@pytest.mark.parametrize(
    "value", ["Basic eHl6", "Token sk-heliport-abc", "sk-heliport-abc", "Bearerabc", "Bearer\x00k"]
)
def test_helicone_auth_that_is_not_a_bearer_key_is_a_401(value: str) -> None:
    with pytest.raises(AuthenticationError) as caught:
        parse_headers([(b"helicone-auth", value.encode())])
    error = caught.value
    assert (error.status, error.code, error.param) == (401, "invalid_api_key", "Helicone-Auth")
    assert "Bearer <heliport key>" in error.message


@pytest.mark.parametrize("auth_first", [True, False])
def test_a_malformed_header_is_reported_before_an_unusable_key(auth_first: bool) -> None:
    # As with a missing key: what is wrong with the request (400) comes before who sent it (401), in any order.
    headers = [(b"helicone-auth", b"Basic eHl6"), (b"helicone-retry-num", b"many")]
    with pytest.raises(InvalidHeaderError):
        parse_headers(headers if auth_first else headers[::-1])


def test_forwarded_utf8_values_keep_their_bytes() -> None:
    # The upstream clients (aiohttp, websockets) encode header text as UTF-8: a value decoded as latin-1
    # would reach the provider double-encoded ("Zürich" as "ZÃ¼rich").
    _, forward = parse_headers([(b"x-city", "Zürich".encode()), (b"x-raw", b"\xff\xfe"), (b"x-plain", b"a\tb")])
    assert forward == [("x-city", "Zürich"), ("x-raw", "ÿþ"), ("x-plain", "a\tb")]
