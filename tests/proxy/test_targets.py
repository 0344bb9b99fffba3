from __future__ import annotations

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
    ],
)
def test_public_address(address: str, public: bool) -> None:
    assert is_public_address(address) is public


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
