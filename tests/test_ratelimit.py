"""The rate limiter: policy parsing, the sliding-window rule against an exact log, segments, cents, headers.

The limiter under test is always the real one over a real store (SQLite, or DynamoDB on moto's
server); only the clock is fake, so windows pass without sleeping.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heliport.errors import InvalidHeaderError
from heliport.ratelimit import (
    PREVIOUS_WINDOW_GRACE,
    Decision,
    Policy,
    RateLimiter,
    SegmentMissing,
    parse_policy,
)
from heliport.store.counter_store import DynamoCounterStore, SqliteCounterStore
from tests.aws import REGION

HEADER = "Helicone-RateLimit-Policy"
#: A multiple of every window used here, so window indexes and fractions are easy to read.
T0 = 1_800_000_000.0


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- parse_policy ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected", "canonical"),
    [
        ("100;w=60", Policy(quota=100, window=60), "100;w=60"),
        ("  1000;W=3600 ", Policy(quota=1000, window=3600), "1000;w=3600"),
        ("0.5;w=60;u=cents", Policy(quota=0.5, window=60, unit="cents"), "0.5;w=60;u=cents"),
        ("10.0;w=60;u=request", Policy(quota=10, window=60), "10;w=60"),
        ("1.50;w=120;U=Request", Policy(quota=1.5, window=120), "1.5;w=120"),
        ("100;w=60;s=user", Policy(quota=100, window=60, segment="user"), "100;w=60;s=user"),
        ("100;w=60;S=USER", Policy(quota=100, window=60, segment="user"), "100;w=60;s=user"),
        (
            "5000;w=3600;s=Organization",
            Policy(quota=5000, window=3600, segment="organization"),
            "5000;w=3600;s=organization",
        ),
        (
            "0.0001;w=60;u=CENTS;s=test",
            Policy(quota=0.0001, window=60, unit="cents", segment="test"),
            "0.0001;w=60;u=cents;s=test",
        ),
        (
            "7;w=31536000;u=cents;s=Tier-1_b",
            Policy(quota=7, window=31_536_000, unit="cents", segment="tier-1_b"),
            "7;w=31536000;u=cents;s=tier-1_b",
        ),
        ("5 ; w = 60 ; s = user", Policy(quota=5, window=60, segment="user"), "5;w=60;s=user"),
        ("5;s=user;w=60", Policy(quota=5, window=60, segment="user"), "5;w=60;s=user"),
        ("0.00001;w=60", Policy(quota=0.00001, window=60), "0.00001;w=60"),
    ],
)
def test_parse_valid_policies(raw: str, expected: Policy, canonical: str) -> None:
    policy = parse_policy(HEADER, raw)
    assert policy == expected
    assert policy.canonical() == canonical
    assert parse_policy(HEADER, canonical) == policy  # the canonical form parses back to the same


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("10;w=59", "window w= must be between 60 and 31536000 seconds, got 59"),
        ("10;w=31536001", "window w= must be between 60 and 31536000 seconds, got 31536001"),
        ("10;w=" + "9" * 5000, "window w= must be between 60 and 31536000"),
        ("10;w=60.5", "window w= must be a whole number of seconds, got '60.5'"),
        ("10;w=abc", "window w= must be a whole number"),
        ("10;w=", "window w= must be a whole number"),
        ("10", "window missing"),
        ("10;u=cents", "window missing"),
        ("0;w=60", "quota must be greater than 0, got '0'"),
        ("0.000;w=60", "quota must be greater than 0"),
        ("-1;w=60", "quota must be a positive number like 100 or 0.5, got '-1'"),
        ("abc;w=60", "quota must be a positive number like 100 or 0.5, got 'abc'"),
        ("1e3;w=60", "quota must be a positive number"),
        (".5;w=60", "quota must be a positive number"),
        ("٣;w=60", "quota must be a positive number"),  # a non-ASCII digit
        ("9" * 400 + ";w=60", "quota is too large"),
        ("10;w=60;u=tokens", "unit u= must be 'request' or 'cents', got 'tokens'"),
        ("10;w=60;u=", "unit u= must be 'request' or 'cents'"),
        ("10;w=60;s=bad segment", "segment s= must be 'user' or a property name"),
        ("10;w=60;s=a.b", "segment s= must be 'user' or a property name"),
        ("10;w=60;s=", "segment s= must be 'user' or a property name"),
        ("10;w=60;s=tenänt", "segment s= must be 'user' or a property name"),
        ("10;w=60;x=1", "unknown parameter 'x=1'"),
        ("10;w=60;cents", "unknown parameter 'cents'"),
        ("10;w=60;", "unknown parameter ''"),
        ("10;w=60;w=120", "parameter w= given twice"),
        ("garbage", "quota must be a positive number"),
        (";;", "quota must be a positive number"),
        ("", "is empty"),
        ("   ", "is empty"),
    ],
)
def test_parse_invalid_policies(raw: str, problem: str) -> None:
    with pytest.raises(InvalidHeaderError) as caught:
        parse_policy(HEADER, raw)
    assert caught.value.message.startswith(f"Invalid {HEADER} header: ")
    assert problem in caught.value.message
    assert caught.value.param == HEADER
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "kwargs",
    [
        {"quota": 0, "window": 60},
        {"quota": math.inf, "window": 60},
        {"quota": 1, "window": 59},
        {"quota": 1, "window": 60, "unit": "tokens"},
        {"quota": 1, "window": 60, "segment": "User"},
        {"quota": 1, "window": 60, "segment": "a b"},
    ],
)
def test_policies_built_directly_are_checked_too(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must be"):
        Policy(**kwargs)  # type: ignore[arg-type]  # deliberately wrong values


# --- helpers --------------------------------------------------------------------------------------


class Limited:
    """A limiter over a SQLite file, its store, and the fake clock both share."""

    def __init__(self, path: Path) -> None:
        self.clock = FakeClock()
        self.store = SqliteCounterStore(path, clock=self.clock)
        self.limiter = RateLimiter(self.store, clock=self.clock)

    async def check(
        self,
        raw: str,
        org: str = "org-1",
        *,
        user: str | None = None,
        properties: dict[str, str] | None = None,
        at: float | None = None,
    ) -> Decision:
        if at is not None:
            self.clock.now = at
        return await self.limiter.check(org, parse_policy(HEADER, raw), user_id=user, properties=properties or {})

    async def allowed(self, raw: str, times: int, **kwargs: object) -> list[bool]:
        return [(await self.check(raw, **kwargs)).allowed for _ in range(times)]  # type: ignore[arg-type]


@pytest.fixture
async def limited(tmp_path: Path) -> AsyncIterator[Limited]:
    subject = Limited(tmp_path / "counters.sqlite3")
    try:
        yield subject
    finally:
        await subject.store.aclose()


class SpyStore(SqliteCounterStore):
    """The real SQLite store, recording every call the limiter makes."""

    def __init__(self, path: Path, clock: FakeClock) -> None:
        super().__init__(path, clock=clock)
        self.calls: list[tuple[str, str]] = []

    async def get(self, key: str) -> float:
        self.calls.append(("get", key))
        return await super().get(key)

    async def add(
        self, key: str, amount: float, *, ttl_seconds: int, at_most: float | None = None
    ) -> tuple[bool, float]:
        self.calls.append(("add", key))
        return await super().add(key, amount, ttl_seconds=ttl_seconds, at_most=at_most)


# --- the sliding-window rule against an exact log (property-based) --------------------------------


@st.composite
def traffic(draw: st.DrawFn) -> tuple[float, int, list[float]]:
    """A quota, a window and sorted request times over a few windows: bursts, lulls and steady runs."""
    window = draw(st.sampled_from([60, 120]))
    quota = draw(st.one_of(st.integers(1, 20).map(float), st.sampled_from([1.5, 2.5, 7.25])))
    gap = st.one_of(
        st.just(0.0),  # bursts: several requests at one instant
        st.floats(0, 2),
        st.floats(0, window / quota * 2),  # around the quota's own rate
        st.floats(0, window * 1.5),  # lulls, sometimes a whole window
    )
    start = draw(st.floats(0, window * 2))
    gaps = draw(st.lists(gap, min_size=1, max_size=100))
    gaps += [0.0] * draw(st.integers(0, 25))  # often end on a burst, so the last answer is a refusal
    times, now = [], T0 + start
    for step in gaps:
        now += step
        times.append(now)
    return quota, window, times


@pytest.fixture(scope="module")
def property_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ratelimit") / "counters.sqlite3"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=traffic())
def test_decisions_stay_within_the_documented_bounds(property_db: Path, case: tuple[float, int, list[float]]) -> None:
    """For every decision, with E the exact count of admitted requests in (t-W, t] before it,
    P the admitted count of the previous fixed window and f the fraction of the current one gone:

    * admitted => E + 1 <= quota + f*P          (over-admission at most f*P)
    * refused  => E + 1 >  quota - (1-f)*P      (under-admission at most (1-f)*P)
    * no fixed window ever holds more than quota admissions;
    * the decision is exactly "P*(1-f) + C + 1 <= quota" wherever float rounding cannot decide it;
    * remaining is that rule's slack, floored; a refusal's reset is >= 1, and is exact: with no more
      traffic, a request reset-1 seconds later is still refused and one reset seconds later admitted.
    """
    quota, window, times = case
    policy = Policy(quota=quota, window=window)
    org = uuid.uuid4().hex  # one file for every example; each its own counters

    async def run() -> None:
        clock = FakeClock()
        store = SqliteCounterStore(property_db, clock=clock)
        limiter = RateLimiter(store, clock=clock)
        admitted: list[float] = []
        decision: Decision | None = None
        try:
            for t in times:
                clock.now = t
                index = math.floor(t / window)
                f = (t - index * window) / window
                exact = sum(1 for a in admitted if t - window < a <= t)
                prev = sum(1 for a in admitted if math.floor(a / window) == index - 1)
                curr = sum(1 for a in admitted if math.floor(a / window) == index)
                decision = await limiter.check(org, policy, user_id=None, properties={})
                margin = quota - (prev * (1 - f) + curr + 1)
                if decision.allowed:
                    assert exact + 1 <= quota + f * prev + 1e-6
                    assert margin >= -1e-6
                    admitted.append(t)
                    assert curr + 1 <= quota  # the fixed-window cap
                    if abs(margin - round(margin)) > 1e-6:  # else float rounding may floor either way
                        assert decision.remaining == max(0, math.floor(margin))
                else:
                    assert exact + 1 > quota - (1 - f) * prev - 1e-6
                    assert margin < 1e-6
                    assert decision.remaining == 0
                    assert decision.reset >= 1
                assert decision.reset == 0 or decision.remaining == 0
            assert decision is not None
            if not decision.allowed:
                last = times[-1]
                if decision.reset > 1:
                    clock.now = last + decision.reset - 1
                    assert not (await limiter.check(org, policy, user_id=None, properties={})).allowed
                clock.now = last + decision.reset
                assert (await limiter.check(org, policy, user_id=None, properties={})).allowed
        finally:
            await store.aclose()

    anyio.run(run)


async def _steady(limited: Limited, raw: str, period: float, windows: int, offset: float) -> list[int]:
    """Admissions per fixed window for one request every ``period`` seconds."""
    per_window: dict[int, int] = {}
    t = T0 + offset
    while t < T0 + windows * 60:
        decision = await limited.check(raw, at=t)
        index = math.floor(t / 60)
        per_window[index] = per_window.get(index, 0) + decision.allowed
        t += period
    return list(per_window.values())


@pytest.mark.anyio
@pytest.mark.parametrize("offset", [0.0, 0.5, 3.0, 5.9])
async def test_steady_traffic_at_the_quota_rate(limited: Limited, offset: float) -> None:
    """At exactly quota/W the estimate counts a sliver of the previous window that an exact log has
    already dropped, so after the first window every window admits quota - 1: the under-admission
    the bound allows, never more."""
    counts = await _steady(limited, "10;w=60", 6.0, 20, offset)
    assert counts[0] == 10
    assert counts[1:] == [9] * 19


@pytest.mark.anyio
async def test_steady_traffic_under_the_quota_rate_is_never_refused(limited: Limited) -> None:
    counts = await _steady(limited, "10;w=60", 60 / 9, 20, 1.0)
    assert counts == [9] * 20


# --- the store calls on the hot path --------------------------------------------------------------


@pytest.mark.anyio
async def test_one_store_call_per_request_once_the_previous_window_is_final(tmp_path: Path) -> None:
    clock = FakeClock(T0 + 30)
    store = SpyStore(tmp_path / "counters.sqlite3", clock)
    limiter = RateLimiter(store, clock=clock)
    other = RateLimiter(store, clock=clock)  # another instance, same counters
    policy = parse_policy(HEADER, "100;w=60")

    async def check(limiter: RateLimiter = limiter) -> Decision:
        return await limiter.check("org", policy, user_id=None, properties={})

    for _ in range(10):
        assert (await check()).allowed
    # Just after the boundary the previous window is read on every check: a late write can land.
    clock.now = T0 + 60 + 1
    store.calls.clear()
    first = await check()
    assert store.calls == [("get", "org:global:request#60#30000000"), ("add", "org:global:request#60#30000001")]
    assert first.remaining == math.floor(100 - 10 * 59 / 60 - 1)  # 89
    await store.add("org:global:request#60#30000000", 5, ttl_seconds=180)  # a write still in flight
    clock.now = T0 + 60 + 2
    second = await check()
    assert second.remaining == math.floor(100 - 15 * 58 / 60 - 2)  # 83: the late write counts
    # Past the grace it is read once more, then never again: one add per request.
    clock.now = T0 + 60 + PREVIOUS_WINDOW_GRACE + 1
    store.calls.clear()
    for _ in range(5):
        assert (await check()).allowed
    assert [call for call, _ in store.calls] == ["get"] + ["add"] * 5
    # Another instance reads it for itself; the cache is per instance.
    store.calls.clear()
    await check(other)
    assert [call for call, _ in store.calls] == ["get", "add"]


@pytest.mark.anyio
async def test_a_refusal_counts_nothing(limited: Limited) -> None:
    assert await limited.allowed("2;w=60", 5, at=T0 + 10) == [True, True, False, False, False]
    decision = await limited.check("2;w=60")
    assert await limited.store.get(f"{decision.segment_key}#60#30000000") == 2
    # The previous window alone leaves no room: refused without any write.
    assert not (await limited.check("2;w=60", at=T0 + 60 + 1)).allowed
    assert await limited.store.get(f"{decision.segment_key}#60#30000001") == 0


@pytest.mark.anyio
async def test_the_previous_window_cache_stays_bounded(limited: Limited) -> None:
    limited.clock.now = T0 + 2
    for n in range(5000):
        await limited.check("5;w=60;s=user", user=f"user-{n}")
    assert len(limited.limiter._closed) == 0  # nothing is final within the grace
    limited.clock.now = T0 + 60 + 30
    for n in range(5000):
        await limited.check("5;w=60;s=user", user=f"user-{n}")
    assert 0 < len(limited.limiter._closed) <= 4096
    # Correct after eviction too: every user still sees its own previous window.
    decision = await limited.check("5;w=60;s=user", user="user-0")
    assert decision.remaining == math.floor(5 - 1 * 0.5 - 2)


# --- segments -------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_global_user_and_property_segments_count_separately(limited: Limited) -> None:
    assert await limited.allowed("1;w=60", 2) == [True, False]
    assert await limited.allowed("1;w=60;s=user", 2, user="alice") == [True, False]
    assert await limited.allowed("1;w=60;s=user", 1, user="bob") == [True]
    assert await limited.allowed("1;w=60;s=tenant", 2, properties={"tenant": "a"}) == [True, False]
    assert await limited.allowed("1;w=60;s=tenant", 1, properties={"tenant": "b"}) == [True]
    assert await limited.allowed("1;w=60;s=region", 1, properties={"region": "a"}) == [True]
    # The property name is matched without regard to case; so is the policy's segment.
    assert await limited.allowed("1;w=60;s=Tenant", 1, properties={"TENANT": "a"}) == [False]
    # Units are separate budgets, and so are windows.
    assert await limited.allowed("1;w=60;u=cents", 1) == [True]
    assert await limited.allowed("1;w=120", 1) == [True]
    decisions = [
        await limited.check("1;w=60"),
        await limited.check("1;w=60;s=user", user="alice"),
        await limited.check("1;w=60;s=tenant", properties={"tenant": "a"}),
        await limited.check("1;w=60;u=cents"),
    ]
    assert [d.segment_key for d in decisions] == [
        "org-1:global:request",
        "org-1:user:alice:request",
        "org-1:prop:tenant:a:request",
        "org-1:global:cents",
    ]


@pytest.mark.anyio
async def test_two_organisations_never_share_counters(limited: Limited) -> None:
    assert await limited.allowed("1;w=60", 2, org="acme") == [True, False]
    assert await limited.allowed("1;w=60", 2, org="globex") == [True, False]
    assert await limited.allowed("1;w=60;s=user", 1, org="acme", user="u") == [True]
    assert await limited.allowed("1;w=60;s=user", 1, org="globex", user="u") == [True]
    # Organisation ids that sanitise alike still get their own counters.
    assert await limited.allowed("1;w=60", 1, org="a:b") == [True]
    assert await limited.allowed("1;w=60", 1, org="a_b") == [True]
    assert await limited.allowed("1;w=60", 1, org="a b") == [True]


@pytest.mark.anyio
async def test_segment_values_are_sanitised_without_merging_users(limited: Limited) -> None:
    for user in ["a:b", "a_b", "a\nb", "ab", "x" * 300, "x" * 256 + "y" * 44]:
        assert await limited.allowed("1;w=60;s=user", 2, user=user) == [True, False], user
    # Surrounding spaces are not another user.
    assert await limited.allowed("1;w=60;s=user", 1, user="  ab ") == [False]
    decision = await limited.check("1;w=60;s=user", user="é:" + "z" * 10_000 + "\x00")
    assert decision.segment_key.startswith("org-1:user:é_zzz")
    assert len(decision.segment_key) < 320
    assert ":" not in decision.segment_key.split(":", 2)[2].rsplit(":", 1)[0]
    assert "\x00" not in decision.segment_key


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("raw", "user", "properties", "message"),
    [
        ("1;w=60;s=user", None, {}, "s=user needs a Helicone-User-Id header"),
        ("1;w=60;s=user", "", {}, "s=user needs a Helicone-User-Id header"),
        ("1;w=60;s=user", "   ", {}, "s=user needs a Helicone-User-Id header"),
        ("1;w=60;s=tenant", "alice", {}, "s=tenant needs a non-empty Helicone-Property-Tenant header"),
        ("1;w=60;s=tenant", None, {"other": "x"}, "s=tenant needs a non-empty Helicone-Property-Tenant header"),
        ("1;w=60;s=tenant", None, {"tenant": ""}, "s=tenant needs a non-empty Helicone-Property-Tenant header"),
    ],
)
async def test_a_missing_segment_raises(
    limited: Limited, raw: str, user: str | None, properties: dict[str, str], message: str
) -> None:
    with pytest.raises(SegmentMissing) as caught:
        await limited.check(raw, user=user, properties=properties)
    assert message in str(caught.value)
    assert limited.store._conn.execute("SELECT count(*) FROM counters").fetchone() == (0,)


# --- cents ----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_cents_are_checked_before_and_charged_after(limited: Limited) -> None:
    raw = "10;w=60;u=cents"
    limited.clock.now = T0 + 10
    first = await limited.check(raw)
    assert first.allowed and first.remaining == 10 and first.reset == 0
    assert [(await limited.check(raw)).allowed for _ in range(20)] == [True] * 20  # checks spend nothing
    await limited.limiter.charge(first, 4.25)
    assert (await limited.check(raw)).remaining == 5
    await limited.limiter.charge(first, 5.749)
    below = await limited.check(raw)
    assert below.allowed and below.remaining == 0  # 9.999 spent: still under
    await limited.limiter.charge(first, 0.001)
    over = await limited.check(raw)
    assert not over.allowed and over.remaining == 0
    # With 10 spent in this window, spend slides out of the estimate once the next window opens.
    assert over.reset == 50 + 1
    assert not (await limited.check(raw, at=T0 + 10 + over.reset - 1)).allowed
    later = await limited.check(raw, at=T0 + 10 + over.reset)
    assert later.allowed and later.remaining == 0
    half = await limited.check(raw, at=T0 + 90)
    assert half.allowed and half.remaining == 5


@pytest.mark.anyio
async def test_tiny_cents_quota_and_fractional_charges(limited: Limited) -> None:
    raw = "0.0001;w=60;u=cents;s=test"
    props = {"test": "x"}
    first = await limited.check(raw, properties=props)
    assert first.allowed
    await limited.limiter.charge(first, 0.00004)
    await limited.limiter.charge(first, 0.00004)
    assert (await limited.check(raw, properties=props)).allowed
    await limited.limiter.charge(first, 0.00003)
    assert not (await limited.check(raw, properties=props)).allowed
    assert await limited.store.get(f"{first.segment_key}#60#30000000") == pytest.approx(0.00011)


@pytest.mark.anyio
async def test_charge_lands_in_the_window_current_when_charged(limited: Limited) -> None:
    limited.clock.now = T0 + 59
    decision = await limited.check("100;w=60;u=cents")
    limited.clock.now = T0 + 61  # the response finished after the boundary
    await limited.limiter.charge(decision, 30)
    assert await limited.store.get("org-1:global:cents#60#30000000") == 0
    assert await limited.store.get("org-1:global:cents#60#30000001") == 30


@pytest.mark.anyio
async def test_charge_ignores_request_policies_and_nonsense_costs(limited: Limited) -> None:
    requests = await limited.check("5;w=60")
    await limited.limiter.charge(requests, 3)
    assert (await limited.check("5;w=60")).remaining == 3  # only the two checks counted
    cents = await limited.check("5;w=60;u=cents")
    for cost in (math.nan, -4.0, 0.0, math.inf):
        await limited.limiter.charge(cents, cost)
    assert (await limited.check("5;w=60;u=cents")).remaining == 5
    await limited.limiter.charge(cents, 1e12)  # capped, but still far over the quota
    assert await limited.store.get("org-1:global:cents#60#30000000") == 1_000_000


# --- headers --------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_headers_of_allowed_and_refused_decisions(limited: Limited) -> None:
    raw = "3;w=60;s=user"
    limited.clock.now = T0 + 30
    decisions = [await limited.check(raw, user="alice") for _ in range(4)]
    assert decisions[0].headers() == [
        (b"helicone-ratelimit-limit", b"3"),
        (b"helicone-ratelimit-remaining", b"2"),
        (b"helicone-ratelimit-policy", b"3;w=60;s=user"),
    ]
    # The third is allowed but leaves nothing: the next one would wait, so reset is given.
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[2].allowed and decisions[2].reset == 50
    refused = decisions[3]
    assert not refused.allowed
    # 3 counted at f=0.5; admission needs 3*(1-g) + 1 <= 3 in the next window: g = 1/3, 20 s in.
    assert refused.headers() == [
        (b"helicone-ratelimit-limit", b"3"),
        (b"helicone-ratelimit-remaining", b"0"),
        (b"helicone-ratelimit-policy", b"3;w=60;s=user"),
        (b"helicone-ratelimit-reset", b"50"),
    ]
    assert not (await limited.check(raw, user="alice", at=T0 + 30 + 49)).allowed
    assert (await limited.check(raw, user="alice", at=T0 + 30 + 50)).allowed


@pytest.mark.anyio
async def test_reset_within_the_window_as_the_previous_one_slides_out(limited: Limited) -> None:
    assert await limited.allowed("4;w=60", 4, at=T0 + 50) == [True] * 4
    # 10 s into the next window the previous 4 still weigh 4 * 50/60 > 3: no room for one more.
    refused = await limited.check("4;w=60", at=T0 + 60 + 10)
    assert not refused.allowed
    # 4 * (1 - f) + 1 <= 4 from f = 1/4: 15 s into the window, 5 s from now.
    assert refused.reset == 5
    assert refused.headers()[-1] == (b"helicone-ratelimit-reset", b"5")
    assert (await limited.check("4;w=60", at=T0 + 60 + 15)).allowed


@pytest.mark.anyio
async def test_decimal_quota_headers(limited: Limited) -> None:
    decision = await limited.check("2.5;w=60")
    assert decision.headers()[0] == (b"helicone-ratelimit-limit", b"2.5")
    assert decision.remaining == 1
    assert await limited.allowed("2.5;w=60", 2) == [True, False]


@pytest.mark.anyio
async def test_a_quota_under_one_request_never_admits(limited: Limited) -> None:
    decision = await limited.check("0.5;w=60")
    assert not decision.allowed
    assert decision.reset == 60
    assert not (await limited.check("0.5;w=60", at=T0 + 3600)).allowed


# --- many instances on DynamoDB -------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.usefixtures("atomic_moto_writes")
async def test_instances_sharing_a_dynamodb_table_share_the_limit(aws_endpoint: str, dynamo_table: str) -> None:
    clock = FakeClock(T0 + 10)
    stores = [DynamoCounterStore(dynamo_table, region=REGION, endpoint_url=aws_endpoint) for _ in range(4)]
    limiters = [RateLimiter(store, clock=clock) for store in stores]
    policy = parse_policy(HEADER, "20;w=60")
    try:
        decisions = await asyncio.gather(
            *(limiters[n % 4].check("org", policy, user_id=None, properties={}) for n in range(60))
        )
        assert sum(d.allowed for d in decisions) == 20
        assert sorted(d.remaining for d in decisions if d.allowed) == list(range(20))
        refused = [d for d in decisions if not d.allowed]
        assert all(d.remaining == 0 and d.reset == 50 + 60 // 20 for d in refused)
        # The next window sees the same count from every instance.
        clock.now = T0 + 60 + 30
        after = [await limiter.check("org", policy, user_id=None, properties={}) for limiter in limiters]
        assert [d.allowed for d in after] == [True] * 4
        assert [d.remaining for d in after] == [9, 8, 7, 6]
    finally:
        for store in stores:
            await store.aclose()
