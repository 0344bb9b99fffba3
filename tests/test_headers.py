from __future__ import annotations

import uuid

import pytest

from heliport.errors import InvalidHeaderError
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
        ("helicone-auth", "sk-heliport-abc", "Bearer"),
        ("helicone-auth", "Bearer ", "Bearer"),
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
