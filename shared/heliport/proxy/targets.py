"""Where a request goes: provider routes, ``Helicone-Target-Url``, Azure, and the SSRF guard.

The upstream URL is the target's origin + the path after the provider segment + the query string
(any path in a target header is dropped, as Helicone does). User-chosen targets (the
``Helicone-Target-Url`` and ``Helicone-OpenAI-Api-Base`` headers) are *guarded*: https only, default
port, a host on the allow-list, never an address that is not globally routable. The host check, and
the address check of a host written as an address, happen here; a name's addresses are checked
when the upstream client resolves it (:mod:`heliport.proxy.transport`), so a DNS answer cannot
change between check and connect. Both use :func:`is_public_ip`. Origins an operator lists in
``HELIPORT_TRUSTED_ORIGINS`` skip both checks (a model server inside the VPC is a legitimate target;
the operator vouches for it).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from heliport.config import Settings
from heliport.errors import RouteNotFoundError, TargetRefusedError
from heliport.headers import RequestOptions

__all__ = [
    "PROVIDERS",
    "IPAddress",
    "Provider",
    "Target",
    "TargetResolver",
    "host_address",
    "is_public_address",
    "is_public_ip",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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


# IPv6 outside 2000::/3 is never global unicast. Inside it, these blocks are not public either.
_IPV6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_IPV6_NOT_PUBLIC = (
    ipaddress.IPv6Network("2001::/23"),  # IETF protocol assignments: benchmarking, ORCHID, AMT, ...
    ipaddress.IPv6Network("2001:db8::/32"),  # documentation
    ipaddress.IPv6Network("3fff::/20"),  # documentation (RFC 9637)
)
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")


def is_public_ip(ip: IPAddress) -> bool:
    """True only for a globally routable unicast address: the one rule of the SSRF guard.

    Some IPv6 addresses are delivered to an IPv4 address written inside them: IPv4-mapped
    ``::ffff:a.b.c.d`` by the kernel, NAT64 ``64:ff9b::a.b.c.d`` by a translator, 6to4 ``2002:AABB:CCDD::``
    and Teredo ``2001:0:SERVER::~CLIENT`` by relays. Such an address is only as public as every IPv4
    address it carries (``64:ff9b::169.254.169.254`` is the metadata service). Any other IPv6 address
    must lie in the global unicast block 2000::/3, which leaves out the deprecated IPv4-compatible
    ``::a.b.c.d`` and site-local fec0::/10, local-use NAT64 64:ff9b:1::/48 (its embedding is the
    operator's choice, so where it leads cannot be known), unique-local, link-local and multicast.
    An address with a zone id (``fe80::1%eth0``) names a local interface, which nothing public needs.
    """
    if isinstance(ip, ipaddress.IPv4Address):
        # is_global leaves out private, loopback, link-local (the metadata service), CGNAT, "this network";
        # it lets most of multicast 224/4 through, so that is refused here, with reserved 240/4 for good measure.
        return ip.is_global and not ip.is_multicast and not ip.is_reserved
    if ip.scope_id is not None:
        return False
    carried: tuple[ipaddress.IPv4Address, ...] = ()
    if ip.ipv4_mapped is not None:
        carried = (ip.ipv4_mapped,)
    elif ip in _NAT64_WELL_KNOWN:
        carried = (ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF),)
    elif ip.sixtofour is not None:
        carried = (ip.sixtofour,)
    elif ip.teredo is not None:
        carried = ip.teredo  # (server, client): traffic reaches both
    if carried:
        return all(is_public_ip(v4) for v4 in carried)
    # is_global last: whatever else the standard library knows to be not global stays refused.
    return ip in _IPV6_GLOBAL_UNICAST and not any(ip in net for net in _IPV6_NOT_PUBLIC) and ip.is_global


def host_address(host: str) -> IPAddress | None:
    """The address ``host`` stands for when it is written as one, or None when it is a name to look up.

    An IPv4 host goes through the C library's own parser (``getaddrinfo`` with ``AI_NUMERICHOST``,
    which never queries DNS), the code that reads it again when the connection is made: there
    ``2130706433``, ``0177.0.0.1``, ``0x7f.1`` and ``127.1`` all mean 127.0.0.1, so they must here too.
    An IPv6 host keeps its zone id (``fe80::1%eth0``) for :func:`is_public_ip` to refuse.
    """
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            return None
    if not host:
        return None
    try:
        found = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except (OSError, ValueError):  # gaierror is an OSError; a host the IDNA codec rejects, a ValueError
        return None
    return ipaddress.IPv4Address(found[0][4][0])


def is_public_address(address: str) -> bool:
    """True only when ``address`` is an IP address :func:`is_public_ip` accepts; False for anything else."""
    ip = host_address(address)
    return ip is not None and is_public_ip(ip)


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

    def resolve(self, proxy_path: str, query: bytes, options: RequestOptions) -> Target:
        """``proxy_path`` is what follows ``/v1/gateway/`` (no leading slash)."""
        segment, _, rest = proxy_path.partition("/")
        provider = PROVIDERS.get(segment.lower())
        if provider is None:
            if options.target_url is None:
                known = ", ".join(sorted(PROVIDERS))
                raise RouteNotFoundError(
                    f"Unknown provider {segment!r} in /v1/gateway/{segment}/...: use one of {known}, "
                    "or send Helicone-Target-Url to choose the upstream."
                )
            origin, guarded = self._checked_origin(options.target_url, "Helicone-Target-Url", self._hosts)
            return Target(provider=_label_for(origin), url=_join(origin, proxy_path, query), guarded=guarded)
        if provider.label == "OPENAI" and options.openai_api_base is not None:
            origin, guarded = self._checked_origin(options.openai_api_base, "Helicone-OpenAI-Api-Base", _AZURE_HOSTS)
            return Target(provider="AZURE", url=_join(origin, rest, query), guarded=guarded)
        if options.target_url is not None:
            origin, guarded = self._checked_origin(options.target_url, "Helicone-Target-Url", self._hosts)
            return Target(provider=provider.label, url=_join(origin, rest, query), guarded=guarded)
        return Target(provider=provider.label, url=_join(self._bases[provider.slug], rest, query), guarded=False)

    def resolve_fallback(self, proxy_path: str, query: bytes, target_url: str) -> Target:
        """The target of one ``Helicone-Fallbacks`` entry: its origin, this request's path.

        On a provider route (``/v1/gateway/openai/v1/...``) the provider segment is not part of the path.
        """
        segment, _, rest = proxy_path.partition("/")
        path = rest if segment.lower() in PROVIDERS else proxy_path
        origin, guarded = self._checked_origin(target_url, "Helicone-Fallbacks", self._hosts)
        return Target(provider=_label_for(origin), url=_join(origin, path, query), guarded=guarded)

    def checked_callback(self, url: str, field: str) -> tuple[str, bool]:
        """A URL a caller chose for heliport to send to after the fact (a webhook destination, a Slack
        incoming webhook): the rules of caller-chosen targets without the provider-host allow-list (a
        receiver lives anywhere). The URL to post to (path and query kept as given) and whether it goes
        through the guarded resolver; :class:`TargetRefusedError` naming ``field`` when refused."""
        try:
            parts = urlsplit(url.strip())
            name = (parts.hostname or "").lower()
        except ValueError:
            raise TargetRefusedError(f"{field} is not a valid URL", param=field) from None
        origin, guarded = self._checked_origin(url, field, (name,))
        rest = parts.path or "/"
        if parts.query:
            rest += "?" + parts.query
        return origin + rest, guarded

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
        address = host_address(host)
        if address is not None and not is_public_ip(address):
            shown = host if host == str(address) else f"{host}, that is {address}"
            raise TargetRefusedError(f"{header} points at a non-public address ({shown})", param=header)
        # The HTTP client takes a digits-and-dots host for an address and connects without the guarded
        # resolver; one the C library does not parse as an address goes to DNS unchecked. No DNS name has
        # a numeric last label, a zone id or brackets, so such a host can only be an attempt to slip by.
        numeric_label = host.rstrip(".").rpartition(".")[2].isdigit()
        if address is None and ("%" in host or "[" in parts.netloc or numeric_label):
            raise TargetRefusedError(f"{header} host {host!r} is neither an IP address nor a DNS name", param=header)
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
