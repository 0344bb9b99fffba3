"""Where a request goes: provider routes, ``Helicone-Target-Url``, Azure, and the SSRF guard.

The upstream URL is the target's origin + the path after the provider segment + the query string
(any path in a target header is dropped, as Helicone does). User-chosen targets (the
``Helicone-Target-Url`` and ``Helicone-OpenAI-Api-Base`` headers) are *guarded*: https only, default
port, a host on the allow-list, never an address that is not globally routable. The host check
happens here; the address check happens when the upstream client resolves the name
(:mod:`heliport.proxy.transport`), so a DNS answer cannot change between check and connect.
Origins an operator lists in ``HELIPORT_TRUSTED_ORIGINS`` skip both checks (a model server inside
the VPC is a legitimate target; the operator vouches for it).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from heliport.config import Settings
from heliport.errors import RouteNotFoundError, TargetRefusedError
from heliport.headers import RequestOptions

__all__ = ["PROVIDERS", "Provider", "Target", "TargetResolver", "is_public_address"]


@dataclass(frozen=True, slots=True)
class Provider:
    slug: str
    #: Helicone's provider label, stored on the log row so Helicone-shaped queries keep working.
    label: str
    base_url: str


PROVIDERS: dict[str, Provider] = {
    p.slug: p
    for p in (
        Provider("oai", "OPENAI", "https://api.openai.com"),
        Provider("openai", "OPENAI", "https://api.openai.com"),
        Provider("anthropic", "ANTHROPIC", "https://api.anthropic.com"),
        Provider("groq", "GROQ", "https://api.groq.com"),
        Provider("together", "TOGETHER", "https://api.together.xyz"),
        Provider("openrouter", "OPENROUTER", "https://openrouter.ai"),
        Provider("mistral", "MISTRAL", "https://api.mistral.ai"),
        Provider("deepseek", "DEEPSEEK", "https://api.deepseek.com"),
        Provider("x", "X", "https://api.x.ai"),
        Provider("fireworks", "FIREWORKS", "https://api.fireworks.ai"),
        Provider("deepinfra", "DEEPINFRA", "https://api.deepinfra.com"),
        Provider("perplexity", "PERPLEXITY", "https://api.perplexity.ai"),
        Provider("cerebras", "CEREBRAS", "https://api.cerebras.ai"),
        Provider("hyperbolic", "HYPERBOLIC", "https://api.hyperbolic.xyz"),
        Provider("google", "GOOGLE", "https://generativelanguage.googleapis.com"),
        Provider("nvidia", "NVIDIA", "https://integrate.api.nvidia.com"),
        Provider("llama", "LLAMA", "https://api.llama.com"),
        Provider("nebius", "NEBIUS", "https://api.tokenfactory.nebius.com"),
        Provider("novita", "NOVITA", "https://api.novita.ai"),
    )
}

# Hosts a Helicone-Target-Url may name without configuration: the known providers, plus the
# provider families whose hosts are per customer.
_DEFAULT_TARGET_HOSTS = (
    *sorted({urlsplit(p.base_url).hostname or "" for p in PROVIDERS.values()}),
    "*.openai.azure.com",
    "*.cognitiveservices.azure.com",
    "*.services.ai.azure.com",
    "*.amazonaws.com",
    "*.googleapis.com",
)
_AZURE_HOSTS = ("*.openai.azure.com", "*.cognitiveservices.azure.com", "*.services.ai.azure.com")


@dataclass(frozen=True, slots=True)
class Target:
    provider: str
    url: str
    #: True when the caller chose the origin: connect only to public addresses.
    guarded: bool


def is_public_address(address: str) -> bool:
    """True only for globally routable unicast addresses (no loopback, private, link-local, metadata)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _host_matches(host: str, patterns: tuple[str, ...]) -> bool:
    for pattern in patterns:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


class TargetResolver:
    """Maps a gateway path and its options to the upstream :class:`Target`."""

    def __init__(self, settings: Settings) -> None:
        self._bases = {slug: settings.upstream_overrides.get(slug, p.base_url) for slug, p in PROVIDERS.items()}
        if "openai" not in settings.upstream_overrides and "oai" in settings.upstream_overrides:
            self._bases["openai"] = settings.upstream_overrides["oai"]
        self._hosts = (*_DEFAULT_TARGET_HOSTS, *(h.lower() for h in settings.target_hosts))
        self._trusted = settings.trusted_origins

    def resolve(self, gateway_path: str, query: bytes, options: RequestOptions) -> Target:
        """``gateway_path`` is what follows ``/v1/gateway/`` (no leading slash)."""
        segment, _, rest = gateway_path.partition("/")
        provider = PROVIDERS.get(segment.lower())
        if provider is None:
            if options.target_url is None:
                known = ", ".join(sorted(PROVIDERS))
                raise RouteNotFoundError(
                    f"Unknown provider {segment!r} in /v1/gateway/{segment}/...: use one of {known}, "
                    "or send Helicone-Target-Url to choose the upstream."
                )
            origin, guarded = self._checked_origin(options.target_url, "Helicone-Target-Url", self._hosts)
            return Target(provider=_label_for(origin), url=_join(origin, gateway_path, query), guarded=guarded)
        if provider.label == "OPENAI" and options.openai_api_base is not None:
            origin, guarded = self._checked_origin(options.openai_api_base, "Helicone-OpenAI-Api-Base", _AZURE_HOSTS)
            return Target(provider="AZURE", url=_join(origin, rest, query), guarded=guarded)
        if options.target_url is not None:
            origin, guarded = self._checked_origin(options.target_url, "Helicone-Target-Url", self._hosts)
            return Target(provider=provider.label, url=_join(origin, rest, query), guarded=guarded)
        return Target(provider=provider.label, url=_join(self._bases[provider.slug], rest, query), guarded=False)

    def resolve_fallback(self, gateway_path: str, query: bytes, target_url: str) -> Target:
        """The target of one ``Helicone-Fallbacks`` entry: its origin, this request's path.

        On a provider route (``/v1/gateway/openai/v1/...``) the provider segment is not part of the path.
        """
        segment, _, rest = gateway_path.partition("/")
        path = rest if segment.lower() in PROVIDERS else gateway_path
        origin, guarded = self._checked_origin(target_url, "Helicone-Fallbacks", self._hosts)
        return Target(provider=_label_for(origin), url=_join(origin, path, query), guarded=guarded)

    def _checked_origin(self, url: str, header: str, hosts: tuple[str, ...]) -> tuple[str, bool]:
        try:
            parts = urlsplit(url.strip())
            host = (parts.hostname or "").lower()
            port = parts.port
        except ValueError:
            raise TargetRefusedError(f"{header} is not a valid URL: {url!r}", param=header) from None
        if not parts.scheme or not host:
            raise TargetRefusedError(f"{header} must be an absolute URL like https://api.example.com", param=header)
        origin = f"{parts.scheme.lower()}://{host}" + (f":{port}" if port is not None else "")
        if "[" in parts.netloc:
            origin = f"{parts.scheme.lower()}://[{host}]" + (f":{port}" if port is not None else "")
        if origin in self._trusted:
            return origin, False
        if parts.username is not None or parts.password is not None:
            raise TargetRefusedError(f"{header} must not carry credentials in the URL", param=header)
        if parts.scheme.lower() != "https":
            raise TargetRefusedError(f"{header} must use https, got {parts.scheme!r}", param=header)
        if port not in (None, 443):
            raise TargetRefusedError(f"{header} must use the default https port, got {port}", param=header)
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None and not is_public_address(host):
            raise TargetRefusedError(f"{header} points at a non-public address ({host})", param=header)
        if not _host_matches(host, hosts):
            raise TargetRefusedError(
                f"{header} host {host!r} is not on the allow-list of provider hosts "
                "(an operator can extend it with HELIPORT_TARGET_HOSTS)",
                param=header,
            )
        return origin, True


def _label_for(origin: str) -> str:
    host = urlsplit(origin).hostname or ""
    for provider in PROVIDERS.values():
        if urlsplit(provider.base_url).hostname == host:
            return provider.label
    if _host_matches(host, _AZURE_HOSTS):
        return "AZURE"
    # Helicone's convention for a target it does not know: the URL itself is the provider label.
    return origin


def _join(origin: str, path: str, query: bytes) -> str:
    url = origin.rstrip("/") + "/" + path.lstrip("/")
    if query:
        url += "?" + query.decode("latin-1")
    return url
