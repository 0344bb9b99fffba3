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
        ("helicone-fallbacks", "[", "JSON array"),
    ],
)
def test_malformed_values_name_the_header(name: str, value: str, problem: str) -> None:
    with pytest.raises(InvalidHeaderError) as caught:
        parse_headers([(name.encode(), value.encode())])
    assert caught.value.status == 400
    assert caught.value.param is not None and caught.value.param.lower() == name
    assert problem in caught.value.message
