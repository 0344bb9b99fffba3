"""Helicone-RateLimit-Policy: sliding-window counters shared by every proxy instance.

The algorithm
-------------
A policy ``<quota>;w=<W>`` cuts time into fixed windows of ``W`` seconds; window ``i`` is
``[i*W, (i+1)*W)`` and has one counter in the :class:`~heliport.store.counter_store.CounterStore`, keyed
``<segment_key>#<W>#<i>``. At time ``t`` in window ``i`` (``f = (t - i*W) / W``, the fraction of
the window gone), with ``P`` counted in window ``i-1`` and ``C`` so far in window ``i``, the count
in the sliding window ``(t-W, t]`` is estimated as if window ``i-1``'s traffic had been spread
evenly over it::

    estimate = P * (1 - f) + C

* ``u=request``: a request is admitted iff ``estimate + 1 <= quota``. Since ``P`` cannot change any
  more, that is a condition on ``C`` alone: one conditional write, ``add(curr, 1, at_most=quota -
  P*(1-f))``, both decides and counts, atomically for every instance sharing the store. A refused
  request is not counted. When ``P*(1-f)`` alone leaves no room, the request is refused after a
  read of ``C`` (for the headers), with no write at all.
* ``u=cents``: the cost is only known after the response, so the check writes nothing: a request
  is admitted while ``estimate < quota``, and :meth:`RateLimiter.charge` adds the actual cost to
  the window current when it is charged. Concurrent requests may all pass the check and together
  overspend; the overspend then blocks later requests until it slides out, as Helicone's bucket
  (whose tokens may go negative) does.

``P`` is final once window ``i-1`` has closed: checks and charges always write to the window
current at their own clock, so only writes already in flight at the boundary (or from an instance
whose clock is slightly behind) can still land in it. Each instance therefore caches ``P`` per
counter once the boundary is :data:`PREVIOUS_WINDOW_GRACE` seconds past, and reads it on every check
before that. A warm instance makes one store call per request: the conditional add (``u=request``)
or the read of ``C`` (``u=cents``).

Why not a token bucket
----------------------
Helicone keeps a token bucket per segment in a Durable Object: one single-threaded owner per key
that can read-refill-deduct without contention. Lambda has no such owner: every instance must share
the count through DynamoDB, and a bucket's refill depends on its stored state, so each deduction is
a read plus an optimistic-locked write (or two writes), retried under contention. Window counters
only ever grow, so a conditional ``ADD`` is the entire protocol: one write, no lost updates, no
retry loop, and the closed window costs nothing once cached.

The error bound, against an exact sliding log (``u=request``)
-------------------------------------------------------------
Let ``E`` be the exact number of admitted requests in ``(t-W, t]`` before the request at ``t``, and
``P_tail`` those of window ``i-1`` inside that interval (``0 <= P_tail <= P``), so ``E = P_tail + C``.

* Admitted means ``C + 1 <= quota - (1-f)*P``, hence
  ``E + 1 = P_tail + C + 1 <= P + quota - (1-f)*P = quota + f*P``:
  **over-admission is at most f*P requests** beyond the quota. Every admission in window ``i-1``
  obeyed the same rule, so ``P <= quota`` and the excess is at most ``f*quota``: small just after a
  boundary (where a fixed-window counter can double the quota), largest when window ``i-1``'s
  traffic came at its very end and this request comes near the end of window ``i``, where the
  count in one ``W`` can approach ``2*quota``.
* Refused means ``C + 1 > quota - (1-f)*P``, hence ``E + 1 = P_tail + C + 1 > quota - (1-f)*P``:
  the exact log would have admitted it only if ``E + 1 <= quota``, so **under-admission is at most
  (1-f)*P requests** short of the quota (worst when window ``i-1``'s traffic came early). Steady
  traffic at exactly ``quota/W`` shows it: the estimate keeps a sliver of the previous window that
  the exact log has dropped, and every window after the first admits ``quota - 1``.
* Exactly, whatever the traffic: no fixed window ever holds more than ``quota`` admissions.

These hold when the counts read are the true ones (no store failure, no double-counting retry; see
``store.counter_store``). Comparisons carry a slack of 1e-9 so float rounding never refuses what
exact arithmetic admits. ``tests/test_ratelimit.py`` runs the real limiter over a real store on
generated traffic (Hypothesis: bursts, lulls, quotas 1..20 and fractional, W of 60 and 120 s) and,
for every decision, against an exact log of the admitted requests, asserts: both inequalities above
(to 1e-6), the fixed-window cap, that the decision is exactly ``P*(1-f) + C + 1 <= quota`` wherever
rounding cannot decide it, ``remaining``, and that ``reset`` is exact.

``reset`` is the whole number of seconds after which the limiter, seeing no more traffic, would
admit the next request: solved from the same estimate (into window ``i+1``, where ``C`` becomes the
previous count, when ``C`` alone leaves no room), then settled by evaluating the admission rule at
whole seconds, so a client waiting ``reset`` seconds gets in and one waiting a second less does
not. A request policy with a quota below 1 never admits anything (Helicone's bucket needs one
whole token too); its ``reset`` is one window.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import time
import unicodedata
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Literal

import msgspec

from heliport.errors import InvalidHeaderError
from heliport.store.counter_store import CounterStore

__all__ = [
    "MAX_WINDOW",
    "MIN_WINDOW",
    "PREVIOUS_WINDOW_GRACE",
    "Decision",
    "Policy",
    "RateLimiter",
    "SegmentMissing",
    "parse_policy",
]

MIN_WINDOW = 60
MAX_WINDOW = 31_536_000
#: Seconds after a window closes before its count is taken as final and cached.
PREVIOUS_WINDOW_GRACE = 5.0
#: A single charge is capped here (Helicone's cost cap), so one absurd cost cannot poison a window.
MAX_CHARGE_CENTS = 1_000_000.0
#: Float slack in every comparison, far below one request or one cent: ``3 * (1 - 20/60)`` is
#: ``2.0000000000000004``, and that must not refuse a request the exact arithmetic admits.
_SLACK = 1e-9
#: Previous-window counts kept per instance; each is a few hundred bytes.
_CACHE_LIMIT = 4096
#: Cut-off for the length of one segment value in a key, as Helicone does (256 characters).
_VALUE_LIMIT = 256
_NAME_LIMIT = 128

Unit = Literal["request", "cents"]

# JavaScript's \d and \w are ASCII-only; Helicone's parser is JavaScript.
_QUOTA = re.compile(r"\d+(?:\.\d+)?", re.ASCII)
_DIGITS = re.compile(r"\d+", re.ASCII)
_SEGMENT = re.compile(r"[\w-]+", re.ASCII)
_KEY_PART = re.compile(r"[^A-Za-z0-9_-]")


def _number(value: float) -> str:
    """A quota as people write it: ``3`` not ``3.0``, ``0.00001`` not ``1e-05``."""
    if value.is_integer():
        return str(int(value))
    return format(Decimal(repr(value)), "f")


class Policy(msgspec.Struct, frozen=True):
    """One parsed Helicone-RateLimit-Policy."""

    quota: float
    window: int
    unit: Unit = "request"
    #: None for one limit per organisation, "user" per user id, else a lower-cased property name.
    segment: str | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.quota) and self.quota > 0):
            raise ValueError(f"quota must be a finite number above 0, got {self.quota!r}")
        if not MIN_WINDOW <= self.window <= MAX_WINDOW:
            raise ValueError(f"window must be {MIN_WINDOW}..{MAX_WINDOW} seconds, got {self.window!r}")
        if self.unit not in ("request", "cents"):
            raise ValueError(f"unit must be 'request' or 'cents', got {self.unit!r}")
        if self.segment is not None and not (_SEGMENT.fullmatch(self.segment) and self.segment == self.segment.lower()):
            raise ValueError(f"segment must be a lower-case [\\w-]+ name, got {self.segment!r}")

    def canonical(self) -> str:
        """The form echoed in ``Helicone-RateLimit-Policy``: defaults left out, segment lower-cased."""
        text = f"{_number(self.quota)};w={self.window}"
        if self.unit != "request":
            text += f";u={self.unit}"
        if self.segment is not None:
            text += f";s={self.segment}"
        return text


def parse_policy(name: str, value: str) -> Policy:
    """Parse ``<quota>;w=<seconds>[;u=request|cents][;s=<segment>]``; ``name`` is the header, for errors.

    Case-insensitive and trimmed, as Helicone's parser; also tolerant of spaces around ``;`` and
    ``=`` and of the parameters in any order (every policy Helicone accepts parses the same here).
    """
    text = value.strip()
    if not text:
        raise InvalidHeaderError(name, "is empty; expected '<quota>;w=<seconds>[;u=request|cents][;s=<segment>]'")
    quota_text, *params = (part.strip() for part in text.split(";"))
    if not _QUOTA.fullmatch(quota_text):
        raise InvalidHeaderError(name, f"quota must be a positive number like 100 or 0.5, got {quota_text!r}")
    quota = float(quota_text)
    if quota <= 0:
        raise InvalidHeaderError(name, f"quota must be greater than 0, got {quota_text!r}")
    if not math.isfinite(quota):
        raise InvalidHeaderError(name, f"quota is too large: {quota_text!r}")
    seen: dict[str, str] = {}
    for param in params:
        key, eq, raw = param.partition("=")
        key = key.strip().lower()
        raw = raw.strip()
        if not eq or key not in ("w", "u", "s"):
            raise InvalidHeaderError(name, f"unknown parameter {param!r}; expected w=, u= or s=")
        if key in seen:
            raise InvalidHeaderError(name, f"parameter {key}= given twice")
        seen[key] = raw
    if "w" not in seen:
        raise InvalidHeaderError(name, "window missing: add w=<seconds>, e.g. '100;w=60'")
    window_text = seen["w"]
    # The length check keeps int() away from huge digit strings (and its own limit on them).
    if not _DIGITS.fullmatch(window_text):
        raise InvalidHeaderError(name, f"window w= must be a whole number of seconds, got {window_text!r}")
    if len(window_text) > 12 or not MIN_WINDOW <= int(window_text) <= MAX_WINDOW:
        raise InvalidHeaderError(
            name, f"window w= must be between {MIN_WINDOW} and {MAX_WINDOW} seconds, got {window_text}"
        )
    unit_text = seen.get("u", "request").lower()
    if unit_text not in ("request", "cents"):
        raise InvalidHeaderError(name, f"unit u= must be 'request' or 'cents', got {seen['u']!r}")
    unit: Unit = "cents" if unit_text == "cents" else "request"
    segment: str | None = None
    if "s" in seen:
        if not _SEGMENT.fullmatch(seen["s"]):
            raise InvalidHeaderError(
                name, f"segment s= must be 'user' or a property name of letters, digits, '_' and '-', got {seen['s']!r}"
            )
        segment = seen["s"].lower()
    return Policy(quota=quota, window=int(window_text), unit=unit, segment=segment)


class Decision(msgspec.Struct, frozen=True):
    """The limiter's answer for one request, with what the response headers report."""

    allowed: bool
    policy: Policy
    limit: float
    #: Whole units left in the sliding window once this request is counted; never negative.
    remaining: int
    #: Seconds until the limiter would admit the next request; 0 when it would now.
    reset: int
    #: The counters this request counted in (``<org>:...:<unit>``); ``charge`` adds to the same.
    segment_key: str

    def headers(self) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"helicone-ratelimit-limit", _number(self.limit).encode()),
            (b"helicone-ratelimit-remaining", str(self.remaining).encode()),
            (b"helicone-ratelimit-policy", self.policy.canonical().encode()),
        ]
        if self.reset > 0:
            headers.append((b"helicone-ratelimit-reset", str(self.reset).encode()))
        return headers


class SegmentMissing(Exception):
    """The policy is per user or per property and the request does not say which: it is not limited."""


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _clean_value(value: str) -> str:
    """A segment value fit for a key: no ':' (the separator), no control characters, 256 at most.

    Those are Helicone's rules, but they merge distinct values ("a:b" and "a_b"), so a value they
    changed gets a digest of the original appended: distinct values keep distinct counters.
    """
    kept = (ch for ch in value if unicodedata.category(ch) not in ("Cc", "Cs"))
    cleaned = "".join(kept).replace(":", "_")[:_VALUE_LIMIT]
    return cleaned if cleaned == value else f"{cleaned}~{_digest(value)}"


def _clean_name(name: str) -> str:
    """An organisation id or property name reduced to ``[A-Za-z0-9_-]``, with a digest if that changed it."""
    cleaned = _KEY_PART.sub("_", name)[:_NAME_LIMIT]
    return cleaned if cleaned == name else f"{cleaned}~{_digest(name)}"


def segment_key(org_id: str, policy: Policy, *, user_id: str | None, properties: Mapping[str, str]) -> str:
    """``<org>:global:<unit>``, ``<org>:user:<id>:<unit>`` or ``<org>:prop:<name>:<value>:<unit>``.

    Values are trimmed (surrounding spaces do not make another user); an empty one is missing.
    """
    org = _clean_name(org_id)
    if policy.segment is None:
        return f"{org}:global:{policy.unit}"
    if policy.segment == "user":
        user = (user_id or "").strip()
        if not user:
            raise SegmentMissing("policy segment s=user needs a Helicone-User-Id header (or a body 'user')")
        return f"{org}:user:{_clean_value(user)}:{policy.unit}"
    name = policy.segment
    raw = properties.get(name)
    if raw is None:
        raw = next((v for k, v in properties.items() if k.lower() == name), None)
    prop = (raw or "").strip()
    if not prop:
        header = "Helicone-Property-" + name[:1].upper() + name[1:]
        raise SegmentMissing(f"policy segment s={name} needs a non-empty {header} header")
    return f"{org}:prop:{_clean_name(name)}:{_clean_value(prop)}:{policy.unit}"


def _counter_key(segment: str, window: int, index: int) -> str:
    return f"{segment}#{window}#{index}"


def _ttl(window: int) -> int:
    # A window's counter is read until the next window ends: 2*W after it opened, plus slack.
    return 2 * window + 60


class _Counts(msgspec.Struct, frozen=True):
    """What the limiter knows at one check: window ``index``'s count and the one before it."""

    quota: float
    window: int
    index: int
    prev: float
    curr: float
    #: 1 for ``u=request`` (admit iff estimate + 1 <= quota); 0 for cents (admit iff estimate < quota).
    need: float

    def budget(self, now: float) -> tuple[float, float]:
        """(room for the current count, the current count) as seen at ``now`` with no more traffic."""
        index = math.floor(now / self.window)
        f = (now - index * self.window) / self.window
        if index == self.index:
            return self.quota - self.prev * (1 - f), self.curr
        if index == self.index + 1:
            return self.quota - self.curr * (1 - f), 0.0
        return self.quota, 0.0

    def admits(self, now: float) -> bool:
        room, curr = self.budget(now)
        # For a request, the comparison the store makes (curr + 1 <= at_most); the slack rounds
        # in the client's favour for requests, against it for cents (spend must stay under quota).
        return curr + self.need <= room + _SLACK if self.need else curr < room - _SLACK

    def remaining(self, now: float) -> int:
        room, curr = self.budget(now)
        return max(0, math.floor(room - curr + _SLACK))

    def reset(self, now: float) -> int:
        """Whole seconds until ``admits`` holds, assuming no more traffic; 0 if it holds now."""
        if self.admits(now):
            return 0
        window = self.window
        if self.need and self.quota < self.need:
            return window  # never admits; say "a window" rather than forever
        f = (now - self.index * window) / window
        room = self.quota - self.need
        if self.curr <= room and self.prev > 0:
            # Inside this window, once enough of the previous one has slid out.
            target = 1 - (room - self.curr) / self.prev
            wait = (target - f) * window
        else:
            # Only after this window's count has become the previous one, and partly slid out.
            target = 1 - room / self.curr if self.curr > 0 else 0.0
            wait = ((self.index + 1 + target) * window) - now
        seconds = max(1, math.ceil(wait))
        # Float rounding (or the strict cents rule) may put the analytic instant a hair either side
        # of a whole second: settle on the first one at which the rule really admits, so waiting
        # ``reset`` is always enough and never more than needed.
        for _ in range(3):
            if self.admits(now + seconds):
                break
            seconds += 1
        for _ in range(3):
            if seconds <= 1 or not self.admits(now + seconds - 1):
                break
            seconds -= 1
        return seconds


class RateLimiter:
    """Checks requests against their policy; one per process, shared by every request.

    Store failures raise: the caller decides to fail open (Helicone does).
    """

    def __init__(self, store: CounterStore, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        #: Final counts of closed windows: counter key -> (count, time after which it is never asked).
        self._closed: dict[str, tuple[float, float]] = {}

    async def check(
        self, org_id: str, policy: Policy, *, user_id: str | None, properties: Mapping[str, str]
    ) -> Decision:
        """Decide one request; a ``u=request`` admission is counted by this call, a refusal is not.

        Raises :class:`SegmentMissing` when the policy's segment is absent from the request.
        """
        segment = segment_key(org_id, policy, user_id=user_id, properties=properties)
        now = self._clock()
        window = policy.window
        index = math.floor(now / window)
        curr_key = _counter_key(segment, window, index)
        weight = 1 - (now - index * window) / window
        if policy.unit == "cents":
            prev, curr = await asyncio.gather(self._previous(segment, window, index, now), self._store.get(curr_key))
            counts = _Counts(quota=policy.quota, window=window, index=index, prev=prev, curr=curr, need=0)
            allowed = counts.admits(now)
        else:
            prev = await self._previous(segment, window, index, now)
            at_most = policy.quota - prev * weight + _SLACK
            if at_most < 1:
                # The previous window alone leaves no room: refuse without a write.
                allowed, curr = False, await self._store.get(curr_key)
            else:
                allowed, curr = await self._store.add(curr_key, 1, ttl_seconds=_ttl(window), at_most=at_most)
            counts = _Counts(quota=policy.quota, window=window, index=index, prev=prev, curr=curr, need=1)
        return Decision(
            allowed=allowed,
            policy=policy,
            limit=policy.quota,
            remaining=counts.remaining(now),
            reset=counts.reset(now),
            segment_key=segment,
        )

    async def charge(self, decision: Decision, cents: float) -> None:
        """Add a response's actual cost to the window current now (``u=cents`` only; else nothing).

        A cost that is not a positive number is ignored, and one charge is capped at
        :data:`MAX_CHARGE_CENTS`.
        """
        if decision.policy.unit != "cents" or not (math.isfinite(cents) and cents > 0):
            return
        window = decision.policy.window
        index = math.floor(self._clock() / window)
        key = _counter_key(decision.segment_key, window, index)
        await self._store.add(key, min(cents, MAX_CHARGE_CENTS), ttl_seconds=_ttl(window))

    async def _previous(self, segment: str, window: int, index: int, now: float) -> float:
        """Window ``index - 1``'s count, from memory once it is final."""
        key = _counter_key(segment, window, index - 1)
        cached = self._closed.get(key)
        if cached is not None:
            return cached[0]
        count = await self._store.get(key)
        if now - index * window > PREVIOUS_WINDOW_GRACE:
            if len(self._closed) >= _CACHE_LIMIT:
                self._evict(now)
            self._closed[key] = (count, (index + 1) * window)
        return count

    def _evict(self, now: float) -> None:
        """Forget counts no check can ask for any more; if that is not enough, the oldest half."""
        for key in [key for key, (_, until) in self._closed.items() if until <= now]:
            del self._closed[key]
        if len(self._closed) >= _CACHE_LIMIT:
            for key in list(self._closed)[: _CACHE_LIMIT // 2]:
                del self._closed[key]
