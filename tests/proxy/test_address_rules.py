"""Property tests for the SSRF guard's address rule, through the code paths a request takes.

The rule: a caller-chosen target may only reach a globally routable unicast address, however the
address is spelled. An IPv4 address is generated first (biased towards the ranges an attacker
wants: loopback, private, link-local/metadata, carrier-grade NAT) and then written in every form a
URL or resolver answer can carry it: inet_aton's decimal/octal/hex/short forms, and the IPv6 forms
that deliver to an embedded IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo). The expected verdict is
computed here from the generated integer, never from the text, so a parser that reads the text
differently from the C library fails the test. Each verdict is checked on both entry points the
gateway uses: :meth:`TargetResolver.resolve` (target headers, with the host put on the allow-list so
only the address rule can refuse) and :func:`is_public_address` (what the guarded DNS resolver asks).
Nothing here queries DNS: numeric hosts are parsed locally.
"""

from __future__ import annotations

import contextlib
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from heliport.config import Settings
from heliport.errors import TargetRefusedError
from heliport.headers import RequestOptions
from heliport.proxy.targets import TargetResolver, is_public_address

EXAMPLES = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

V4 = ipaddress.IPv4Network
V6 = ipaddress.IPv6Network

#: Where SSRF targets live, plus public space to keep the other side of the rule exercised.
_INTERESTING_V4 = (
    V4("127.0.0.0/8"),
    V4("10.0.0.0/8"),
    V4("172.16.0.0/12"),
    V4("192.168.0.0/16"),
    V4("169.254.0.0/16"),
    V4("169.254.169.254/32"),  # EC2/ECS/GCP/Azure metadata
    V4("100.64.0.0/10"),  # carrier-grade NAT
    V4("0.0.0.0/8"),
    V4("192.0.0.0/24"),
    V4("198.18.0.0/15"),
    V4("224.0.0.0/4"),
    V4("240.0.0.0/4"),
    V4("255.255.255.255/32"),
    V4("8.8.8.0/24"),
    V4("1.0.0.0/8"),
)


def _within(network: V4 | V6) -> st.SearchStrategy[int]:
    return st.integers(int(network.network_address), int(network.broadcast_address))


ipv4_ints: st.SearchStrategy[int] = st.one_of(
    st.integers(0, 2**32 - 1), st.sampled_from(_INTERESTING_V4).flatmap(_within)
)


def ipv4_allowed(value: int) -> bool:
    """The rule for IPv4, as the issue states it."""
    ip = ipaddress.IPv4Address(value)
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


@dataclass(frozen=True)
class Case:
    #: The host as written between ``https://`` and the path.
    host: str
    #: The host as a resolver would hand it over (no brackets, zone after a bare ``%``), or None
    #: when the form only exists inside a URL.
    address: str | None
    allowed: bool


# -- IPv4 in inet_aton's forms -------------------------------------------------------------------


@st.composite
def _number(draw: st.DrawFn, value: int) -> str:
    """``value`` in decimal, octal (leading 0) or hex (0x or 0X), as inet_aton reads each part."""
    base = draw(st.sampled_from(("dec", "oct", "hex", "HEX")))
    if base == "dec":
        return str(value)
    padding = "0" * draw(st.integers(0, 2))
    if base == "oct":
        return "0" + padding + format(value, "o")
    return ("0x" if base == "hex" else "0X") + padding + format(value, "x" if base == "hex" else "X")


@st.composite
def ipv4_text(draw: st.DrawFn, value: int) -> str:
    """``value`` as 1 to 4 dot-separated parts: the leading parts are bytes, the last takes the rest."""
    parts = draw(st.integers(1, 4))
    tail_bits = 32 - 8 * (parts - 1)
    leading = [(value >> (32 - 8 * (i + 1))) & 0xFF for i in range(parts - 1)]
    numbers = [*leading, value & ((1 << tail_bits) - 1)]
    if draw(st.booleans()):  # the plain dotted quad, most of the time in real traffic
        return str(ipaddress.IPv4Address(value))
    return ".".join(draw(_number(n)) for n in numbers)


@st.composite
def ipv4_cases(draw: st.DrawFn) -> Case:
    value = draw(ipv4_ints)
    text = draw(ipv4_text(value))
    return Case(host=text, address=text, allowed=ipv4_allowed(value))


# -- IPv6 that carries an IPv4 address -------------------------------------------------------------


def _ipv6_text(draw: st.DrawFn, value: int, *, dotted_tail: bool) -> str:
    """``value`` compressed, exploded or upper-case; optionally with the last 32 bits as a dotted quad."""
    ip = ipaddress.IPv6Address(value)
    style = draw(st.sampled_from(("compressed", "exploded", "upper")))
    if not dotted_tail:
        text = ip.exploded if style == "exploded" else ip.compressed
    else:
        tail = str(ipaddress.IPv4Address(value & 0xFFFFFFFF))
        text = ip.exploded.rsplit(":", 2)[0] + ":" + tail  # six groups, then the dotted quad
        if style != "exploded":
            head = ipaddress.IPv6Address(value & ~0xFFFFFFFF).compressed
            short = (head if head.endswith("::") else head.rsplit(":", 2)[0] + ":") + tail
            try:  # "1:2:3:4:5:6::1.2.3.4" is not an address: keep the long form then
                if int(ipaddress.IPv6Address(short)) == value:
                    text = short
            except ValueError:
                pass
    assert int(ipaddress.IPv6Address(text)) == value, text
    return text.upper() if style == "upper" else text


@st.composite
def embedded_cases(draw: st.DrawFn) -> Case:
    """An IPv6 address whose traffic is delivered to IPv4 address(es) inside it."""
    carried = draw(ipv4_ints)
    form = draw(st.sampled_from(("mapped", "compatible", "nat64", "6to4", "teredo")))
    dotted_tail = False
    if form == "mapped":  # ::ffff:a.b.c.d, the kernel connects to a.b.c.d
        value, allowed = 0xFFFF << 32 | carried, ipv4_allowed(carried)
        dotted_tail = draw(st.booleans())
    elif form == "compatible":  # ::a.b.c.d, deprecated (RFC 4291): refused whatever it carries
        value, allowed = carried, False
        dotted_tail = draw(st.booleans())
    elif form == "nat64":  # 64:ff9b::a.b.c.d, a translator connects to a.b.c.d (RFC 6052)
        value, allowed = 0x64FF9B << 96 | carried, ipv4_allowed(carried)
        dotted_tail = draw(st.booleans())
    elif form == "6to4":  # 2002:AABB:CCDD::/48, relayed to the IPv4 address in bits 16-48 (RFC 3056)
        value = 0x2002 << 112 | carried << 80 | draw(st.integers(0, 2**80 - 1))
        allowed = ipv4_allowed(carried)
    else:  # Teredo 2001:0:SERVER:flags:port:~CLIENT (RFC 4380): both addresses are reached
        server = draw(ipv4_ints)
        flags_port = draw(st.integers(0, 2**32 - 1))
        value = 0x20010000 << 96 | server << 64 | flags_port << 32 | (carried ^ 0xFFFFFFFF)
        allowed = ipv4_allowed(server) and ipv4_allowed(carried)
    text = _ipv6_text(draw, value, dotted_tail=dotted_tail)
    return Case(host=f"[{text}]", address=text, allowed=allowed)


# -- IPv6 in general -------------------------------------------------------------------------------

#: The IPv6 rule as a longest-prefix table, after the IANA IPv6 Special-Purpose Address Registry.
#: "allow" = public unicast; "refuse" = not globally routable or deprecated; a callable = delivered
#: to the IPv4 address(es) it returns, so judged by them. Everything outside 2000::/3 (the global
#: unicast block) is refused: ::/96 IPv4-compatible, 64:ff9b:1::/48 local-use NAT64, fc00::/7,
#: fe80::/10, fec0::/10, ff00::/8, 100::/64, 5f00::/16 and the reserved rest.
_IPV6_TABLE: tuple[tuple[V6, object], ...] = (
    (V6("::/0"), "refuse"),
    (V6("2000::/3"), "allow"),
    (V6("::ffff:0:0/96"), lambda v: (v & 0xFFFFFFFF,)),
    (V6("64:ff9b::/96"), lambda v: (v & 0xFFFFFFFF,)),
    (V6("2002::/16"), lambda v: ((v >> 80) & 0xFFFFFFFF,)),
    (V6("2001::/32"), lambda v: ((v >> 64) & 0xFFFFFFFF, (v & 0xFFFFFFFF) ^ 0xFFFFFFFF)),
    (V6("2001::/23"), "refuse"),  # IETF protocol assignments: benchmarking, ORCHID, AMT, ...
    (V6("2001:db8::/32"), "refuse"),  # documentation
    (V6("3fff::/20"), "refuse"),  # documentation (RFC 9637)
)

_IPV6_PREFIXES = (
    *(net for net, _ in _IPV6_TABLE[1:]),
    V6("::/96"),
    V6("64:ff9b:1::/48"),
    V6("fc00::/7"),
    V6("fe80::/10"),
    V6("fec0::/10"),
    V6("ff00::/8"),
    V6("100::/64"),
    V6("2001:2::/48"),
    V6("2001:10::/28"),
    V6("2001:20::/28"),
    V6("2606:4700::/32"),
)


def ipv6_allowed(value: int) -> bool:
    ip = ipaddress.IPv6Address(value)
    verdict = max((net for net, _ in _IPV6_TABLE if ip in net), key=lambda net: net.prefixlen)
    rule = dict(_IPV6_TABLE)[verdict]
    if callable(rule):
        return all(ipv4_allowed(carried) for carried in rule(value))
    return rule == "allow" and ip.is_global


@st.composite
def ipv6_cases(draw: st.DrawFn) -> Case:
    value = draw(st.one_of(st.integers(0, 2**128 - 1), st.sampled_from(_IPV6_PREFIXES).flatmap(_within)))
    text = _ipv6_text(draw, value, dotted_tail=False)
    return Case(host=f"[{text}]", address=text, allowed=ipv6_allowed(value))


# -- The same address, decorated -------------------------------------------------------------------

_ZONES = st.sampled_from(("eth0", "lo", "1", "en0", "%2F"))


@st.composite
def decorated(draw: st.DrawFn, cases: st.SearchStrategy[Case]) -> Case:
    """The case as generated, or with a zone id, or with IPv6/IPv4 bracketing swapped: all refused."""
    case = draw(cases)
    how = draw(st.sampled_from(("plain", "plain", "zone", "brackets")))
    bracketed = case.host.startswith("[")
    if how == "zone":  # a zone id names a local interface: no public address has one
        zone = draw(_ZONES)
        host = f"[{case.address}%25{zone}]" if bracketed else f"{case.host}%25{zone}"
        return Case(host=host, address=f"{case.address}%{zone}", allowed=False)
    if how == "brackets":  # IPv6 must be bracketed in a URL, IPv4 must not: either way not a URL
        host = case.host[1:-1] if bracketed else f"[{case.host}]"
        return Case(host=host, address=None, allowed=False)
    return case


def _options(url: str) -> RequestOptions:
    return RequestOptions(request_id="00000000-0000-4000-8000-000000000000", target_url=url)  # type: ignore[arg-type]  # str field


def _allow_listing(url: str, **configured: object) -> TargetResolver:
    """A resolver with ``url``'s host on the allow-list, so only the address rule can refuse it."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        host = ""
    return TargetResolver(Settings(target_hosts=(host,), **configured))  # type: ignore[arg-type]  # per-key types


def _check(case: Case) -> None:
    url = f"https://{case.host}"
    resolver = _allow_listing(url)
    if case.allowed:
        target = resolver.resolve("v1/chat/completions", b"", _options(url))
        assert target.guarded
        assert target.url == (url + "/v1/chat/completions").lower()  # the origin comes back lower-cased
    else:
        with pytest.raises(TargetRefusedError) as refused:
            resolver.resolve("v1/chat/completions", b"", _options(url))
        assert (refused.value.status, refused.value.code) == (400, "target_refused")
    if case.address is not None:
        assert is_public_address(case.address) is case.allowed, case.address


all_cases = decorated(st.one_of(ipv4_cases(), embedded_cases(), ipv6_cases()))


@EXAMPLES
@given(ipv4_cases())
@example(Case("2130706433", "2130706433", False))
@example(Case("0177.0.0.1", "0177.0.0.1", False))
@example(Case("0x7f.1", "0x7f.1", False))
@example(Case("169.254.43518", "169.254.43518", False))
@example(Case("134744072", "134744072", True))
def test_ipv4_in_any_form_is_judged_as_the_address_it_means(case: Case) -> None:
    _check(case)


@EXAMPLES
@given(embedded_cases())
@example(Case("[::ffff:127.0.0.1]", "::ffff:127.0.0.1", False))
@example(Case("[::7f00:1]", "::7f00:1", False))
@example(Case("[64:ff9b::a9fe:a9fe]", "64:ff9b::a9fe:a9fe", False))
@example(Case("[2002:a9fe:a9fe::1]", "2002:a9fe:a9fe::1", False))
@example(Case("[2001:0:808:808::80ff:fffe]", "2001:0:808:808::80ff:fffe", False))
@example(Case("[64:ff9b::8.8.8.8]", "64:ff9b::8.8.8.8", True))
def test_ipv6_that_carries_ipv4_is_judged_by_what_it_carries(case: Case) -> None:
    _check(case)


@EXAMPLES
@given(ipv6_cases())
@example(Case("[fec0::1]", "fec0::1", False))
@example(Case("[64:ff9b:1::808:808]", "64:ff9b:1::808:808", False))
@example(Case("[2606:4700::1111]", "2606:4700::1111", True))
def test_ipv6_is_allowed_only_in_global_unicast_space(case: Case) -> None:
    _check(case)


@EXAMPLES
@given(all_cases)
@example(Case("[fe80::1%25eth0]", "fe80::1%eth0", False))
@example(Case("[2606:4700::1111%25eth0]", "2606:4700::1111%eth0", False))
def test_zone_ids_and_misplaced_brackets_are_refused(case: Case) -> None:
    _check(case)


@EXAMPLES
@given(all_cases)
def test_a_trusted_origin_is_always_allowed(case: Case) -> None:
    url = f"http://{case.host}:8000"
    try:
        parts = urlsplit(url)
        host, _ = (parts.hostname or "").lower(), parts.port
    except ValueError:
        return  # not a URL, so not an origin anyone can list
    if not host:
        return
    origin = f"http://[{host}]:8000" if case.host.startswith("[") else f"http://{host}:8000"
    resolver = TargetResolver(Settings(trusted_origins=frozenset({origin})))
    target = resolver.resolve("v1/chat/completions", b"", _options(url))
    assert (target.url, target.guarded) == (origin + "/v1/chat/completions", False)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from("0123456789abcdefxX.:%[]@\x00①１。"), max_size=40), all_cases)
def test_any_host_is_a_target_or_a_target_refused_never_another_exception(junk: str, case: Case) -> None:
    """A refusal is a 400 ``target_refused``; anything else escaping the guard would be a 500."""
    for url in (f"https://{junk}", f"https://[{junk}]", f"https://{case.host}{junk}"):
        with contextlib.suppress(TargetRefusedError):
            _allow_listing(url).resolve("v1/chat/completions", b"", _options(url))
