from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from heliport.config import Settings
from heliport.errors import RouteNotFoundError, TargetRefusedError
from heliport.headers import RequestOptions
from heliport.proxy.targets import TargetResolver, is_public_address


def opts(**kwargs: str) -> RequestOptions:
    return RequestOptions(request_id="00000000-0000-4000-8000-000000000000", **kwargs)  # type: ignore[arg-type]  # test helper passes str fields


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # EC2/ECS metadata
        ("100.64.1.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("::1", False),
        ("fd00:ec2::254", False),  # EC2 IPv6 metadata
        ("fe80::1%eth0", False),
        ("::ffff:127.0.0.1", False),
        ("224.0.0.1", False),
        # IPv6 forms that carry an IPv4 address are only as public as what they carry.
        ("::ffff:8.8.8.8", True),
        ("::ffff:a9fe:a9fe", False),  # IPv4-mapped metadata address, hex form
        ("64:ff9b::8.8.8.8", True),  # NAT64 well-known prefix
        ("64:ff9b::7f00:1", False),
        ("64:ff9b::169.254.169.254", False),
        ("2002:808:808::1", True),  # 6to4
        ("2002:7f00:1::1", False),
        ("2002:a9fe:a9fe::1", False),
        ("2001:0:808:808::f7f7:f7f7", True),  # Teredo: server 8.8.8.8, client 8.8.8.8
        ("2001:0:808:808::80ff:fffe", False),  # Teredo client 127.0.0.1
        ("2001:0:a00:1::f7f7:f7f7", False),  # Teredo server 10.0.0.1
        # Deprecated or not global unicast, whatever they carry.
        ("::7f00:1", False),  # IPv4-compatible (deprecated)
        ("::8.8.8.8", False),
        ("64:ff9b:1::808:808", False),  # local-use NAT64: the embedding is the operator's choice
        ("fec0::1", False),  # site-local (deprecated)
        ("fc00::1", False),  # unique-local
        ("ff0e::1", False),  # global-scope multicast
        ("2001:db8::1", False),  # documentation
        ("3fff::1", False),  # documentation (RFC 9637)
        ("2001:2::1", False),  # benchmarking
        ("2001:10::1", False),  # ORCHID
        ("2001:20::1", False),  # ORCHIDv2
        ("100::1", False),  # discard-only
        ("4000::1", False),  # reserved by IETF
        ("::", False),
        # A zone id names a local interface; a public address needs none.
        ("2606:4700::1111%eth0", False),
        ("fe80::1%25eth0", False),
        # Numeric IPv4 forms mean what the C library's parser makes of them.
        ("2130706433", False),
        ("0x7f.1", False),
        ("134744072", True),  # 8.8.8.8
        # Not an address at all: refused, never an exception.
        ("not an address", False),
        ("", False),
    ],
)
def test_public_address(address: str, public: bool) -> None:
    assert is_public_address(address) is public


def _allow_listed(url: str, **settings: object) -> TargetResolver:
    """A resolver whose allow-list names ``url``'s host, so only the address rule can refuse it."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:  # not a URL: nothing to allow
        host = ""
    return TargetResolver(Settings(target_hosts=(host,), **settings))  # type: ignore[arg-type]  # test helper


@pytest.mark.parametrize(
    "url",
    [
        # Other spellings of 127.0.0.1 and 169.254.169.254: the OS connects to the address they mean.
        "https://2130706433",
        "https://017700000001",
        "https://0x7f000001",
        "https://0X7F000001",
        "https://0177.0.0.1",
        "https://0x7f.0.0.1",
        "https://0x7f.0x0.0x0.0x1",
        "https://127.1",
        "https://127.0.1",
        "https://0x7f.1",
        "https://169.254.43518",
        "https://0xa9.0xfe.0xa9.0xfe",
        "https://0",
        # IPv6 forms that carry a non-public IPv4 address.
        "https://[::ffff:7f00:1]",
        "https://[::ffff:169.254.169.254]",
        "https://[0:0:0:0:0:ffff:127.0.0.1]",
        "https://[::7f00:1]",
        "https://[::127.0.0.1]",
        "https://[::8.8.8.8]",  # IPv4-compatible is deprecated: refused even when what it carries is public
        "https://[64:ff9b::7f00:1]",
        "https://[64:ff9b::169.254.169.254]",
        "https://[64:ff9b:1::808:808]",
        "https://[2002:7f00:1::1]",
        "https://[2002:a9fe:a9fe::]",
        "https://[2001:0:808:808::80ff:fffe]",
        "https://[2001:0:a00:1::f7f7:f7f7]",
        # Deprecated or local IPv6 ranges.
        "https://[fec0::1]",
        "https://[fd00:ec2::254]",
        "https://[ff02::1]",
        "https://[3fff::1]",
        # Zone ids, percent-encoded as a URL writes them.
        "https://[fe80::1%25eth0]",
        "https://[2606:4700::1111%25eth0]",
    ],
)
def test_a_non_public_address_in_any_spelling_is_refused(url: str) -> None:
    resolver = _allow_listed(url)
    with pytest.raises(TargetRefusedError, match="non-public address") as refused:
        resolver.resolve("v1/chat/completions", b"", opts(target_url=url))
    assert (refused.value.status, refused.value.code, refused.value.param) == (
        400,
        "target_refused",
        "Helicone-Target-Url",
    )
    with pytest.raises(TargetRefusedError, match="non-public address"):
        resolver.resolve_fallback("v1/chat/completions", b"", url)
    with pytest.raises(TargetRefusedError, match="non-public address"):
        resolver.resolve("oai/v1/chat/completions", b"", opts(openai_api_base=url))


@pytest.mark.parametrize(
    "url",
    [
        "https://134744072",
        "https://0x8.0x8.0x8.0x8",
        "https://[::ffff:8.8.8.8]",
        "https://[64:ff9b::808:808]",
        "https://[2002:808:808::1]",
        "https://[2001:0:808:808::f7f7:f7f7]",
        "https://[2606:4700::1111]",
    ],
)
def test_a_public_address_on_the_allow_list_is_allowed(url: str) -> None:
    target = _allow_listed(url).resolve("v1/chat/completions", b"", opts(target_url=url))
    assert target.guarded
    assert target.url == url + "/v1/chat/completions"


@pytest.mark.parametrize(
    "url",
    [
        # Digits-and-dots hosts the C library does not parse: the HTTP client would still take them
        # for addresses and skip the guarded resolver, and no DNS name has a numeric top-level label.
        "https://127.0.0.1.",
        "https://1.2.3.4.5",
        "https://999.1.1.1",
        "https://4294967296",
        # A zone id on something that is not an IPv6 address.
        "https://127.0.0.1%25eth0",
    ],
)
def test_a_host_that_is_neither_an_address_nor_a_name_is_refused(url: str) -> None:
    with pytest.raises(TargetRefusedError, match="neither an IP address nor a DNS name"):
        _allow_listed(url).resolve("v1/chat/completions", b"", opts(target_url=url))


@pytest.mark.parametrize(
    "url",
    [
        "https://[fe80::1%]",
        "https://[v1.x]",
        "https://[::1]x",
        "https://[127.0.0.1]",
        "https://::ffff:127.0.0.1",
        "https://[fe80::1%25%00]",
        "https://127.0.0.1\x00",
        "https://\u0661\u0662\u0667.0.0.1",
    ],
)
def test_malformed_hosts_are_refused_not_crashed_on(url: str) -> None:
    with pytest.raises(TargetRefusedError):
        _allow_listed(url).resolve("v1/x", b"", opts(target_url=url))


def test_a_trusted_origin_skips_the_address_rule_in_any_spelling() -> None:
    origins = ("https://2130706433", "http://[64:ff9b::7f00:1]:8000", "https://[fe80::1%25eth0]")
    resolver = TargetResolver(Settings(trusted_origins=frozenset(origins)))
    for origin in origins:
        target = resolver.resolve("v1/x", b"", opts(target_url=origin))
        assert (target.url, target.guarded) == (origin + "/v1/x", False)


def test_provider_routes_join_origin_path_and_query() -> None:
    resolver = TargetResolver(Settings())
    target = resolver.resolve("oai/v1/chat/completions", b"a=1", opts())
    assert (target.provider, target.url, target.guarded) == (
        "OPENAI",
        "https://api.openai.com/v1/chat/completions?a=1",
        False,
    )
    target = resolver.resolve("anthropic/v1/messages", b"", opts())
    assert target.url == "https://api.anthropic.com/v1/messages"
    assert resolver.resolve("x/v1/chat/completions", b"", opts()).url == "https://api.x.ai/v1/chat/completions"


def test_upstream_override_replaces_the_default_base() -> None:
    resolver = TargetResolver(Settings(upstream_overrides={"oai": "http://127.0.0.1:9"}))
    assert resolver.resolve("oai/v1/models", b"", opts()).url == "http://127.0.0.1:9/v1/models"
    assert resolver.resolve("openai/v1/models", b"", opts()).url == "http://127.0.0.1:9/v1/models"


def test_target_url_keeps_only_the_origin_and_is_guarded() -> None:
    resolver = TargetResolver(Settings())
    target = resolver.resolve("v1/chat/completions", b"", opts(target_url="https://api.groq.com/some/base"))
    assert target == target.__class__("GROQ", "https://api.groq.com/v1/chat/completions", True)


def test_azure_base_on_the_oai_route() -> None:
    resolver = TargetResolver(Settings())
    target = resolver.resolve(
        "oai/openai/deployments/d/chat/completions",
        b"api-version=2024-10-21",
        opts(openai_api_base="https://my-res.openai.azure.com/"),
    )
    assert target.provider == "AZURE"
    assert target.url == "https://my-res.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21"
    assert target.guarded


def test_configured_hosts_extend_the_allow_list() -> None:
    target_url = "https://llm.internal.example.com"
    with pytest.raises(TargetRefusedError):
        TargetResolver(Settings()).resolve("v1/x", b"", opts(target_url=target_url))
    resolver = TargetResolver(Settings(target_hosts=("*.example.com",)))
    assert resolver.resolve("v1/x", b"", opts(target_url=target_url)).guarded
    # A wildcard never matches the bare domain or a look-alike suffix.
    for host in ("https://example.com", "https://evilexample.com"):
        with pytest.raises(TargetRefusedError):
            resolver.resolve("v1/x", b"", opts(target_url=host))


def test_trusted_origin_skips_the_guard() -> None:
    resolver = TargetResolver(Settings(trusted_origins=frozenset({"http://10.0.0.5:8000"})))
    target = resolver.resolve("v1/chat/completions", b"", opts(target_url="http://10.0.0.5:8000"))
    assert (target.url, target.guarded) == ("http://10.0.0.5:8000/v1/chat/completions", False)
    with pytest.raises(TargetRefusedError):  # another port on the same host is not trusted
        resolver.resolve("v1/chat/completions", b"", opts(target_url="http://10.0.0.5:8001"))


def test_unknown_provider_without_target_is_404() -> None:
    with pytest.raises(RouteNotFoundError, match="Helicone-Target-Url"):
        TargetResolver(Settings()).resolve("nosuch/v1/x", b"", opts())
