"""Cache keys, lifetimes and bucket rules, over a real local store."""

from __future__ import annotations

import random
from pathlib import Path

import msgspec
import pytest

from heliport.cache import (
    DEFAULT_TTL,
    MAX_TTL,
    CacheEntry,
    ResponseCache,
    cache_key,
    cache_ttl,
    decode_entry,
    encode_entry,
    new_entry,
)
from heliport.errors import InvalidHeaderError
from heliport.headers import RequestOptions, parse_headers
from heliport.store.cache_store import SqliteCacheStore

BODY = msgspec.json.encode({"model": "m", "messages": [{"role": "user", "content": "hi"}], "user": "u1"})


def _options(**headers: str) -> RequestOptions:
    options, _ = parse_headers([(k.encode(), v.encode()) for k, v in headers.items()])
    return options


def _key(options: RequestOptions | None = None, **overrides: object) -> str:
    args: dict[str, object] = {
        "key_hash": "h1",
        "target_url": "https://api.openai.com/v1/chat/completions",
        "body": BODY,
        "forward_headers": [("authorization", "Bearer sk-a"), ("content-type", "application/json")],
    }
    args.update(overrides)
    return cache_key(options or _options(), **args)  # type: ignore[arg-type]


def test_the_key_covers_everything_that_makes_requests_differ() -> None:
    base = _key()
    assert _key() == base
    different = {
        _key(_options(**{"helicone-cache-seed": "s"})),
        _key(target_url="https://api.openai.com/v1/responses"),
        _key(body=BODY.replace(b"hi", b"hello")),
        _key(key_hash="h2"),
        _key(forward_headers=[("authorization", "Bearer sk-b")]),
        _key(forward_headers=[("x-api-key", "sk-a")]),
        _key(_options(**{"helicone-cache-bucket-max-size": "2"})),
    }
    assert base not in different and len(different) == 7


def test_headers_that_are_not_credentials_do_not_split_entries() -> None:
    assert _key(forward_headers=[("authorization", "Bearer sk-a"), ("user-agent", "x/2")]) == _key()


def test_ignored_keys_and_key_order_do_not_change_the_key() -> None:
    options = _options(**{"helicone-cache-ignore-keys": '"user"'})
    reordered = msgspec.json.encode({"user": "u2", "messages": [{"content": "hi", "role": "user"}], "model": "m"})
    assert _key(options, body=reordered) == _key(options)
    assert _key(body=reordered) != _key()  # without the ignore list, the user is part of the request


def test_a_body_that_is_not_json_is_keyed_by_its_bytes() -> None:
    assert _key(body=b"not json") != _key(body=b"not json!")


@pytest.mark.parametrize(
    ("value", "ttl"),
    [
        (None, DEFAULT_TTL),
        ("max-age=3600", 3600),
        ("public, max-age=60, s-maxage=120", 120),
        ('max-age="90"', 90),
        ("max-age=99999999999", MAX_TTL),
        ("no-store", DEFAULT_TTL),
    ],
)
def test_ttl_from_cache_control(value: str | None, ttl: int) -> None:
    headers = [("cache-control", value)] if value is not None else []
    assert cache_ttl(headers) == ttl


@pytest.mark.parametrize("value", ["max-age=abc", "max-age=0", "s-maxage=-5"])
def test_bad_cache_control_names_the_header(value: str) -> None:
    with pytest.raises(InvalidHeaderError) as caught:
        cache_ttl([("cache-control", value)])
    assert caught.value.param == "Cache-Control"


def test_entries_round_trip_and_unreadable_ones_are_misses() -> None:
    entry = new_entry(request_id="r", status=200, headers=[("content-type", "x")], latency_ms=1.5, chunks=[b"a", b"b"])
    assert decode_entry(encode_entry(entry)) == entry
    assert decode_entry(b"garbage") is None


@pytest.mark.anyio
async def test_a_bucket_hits_only_when_full_and_picks_among_slots(tmp_path: Path) -> None:
    store = SqliteCacheStore(tmp_path / "cache.sqlite3")
    cache = ResponseCache(store, rng=random.Random(3))
    assert (await cache.lookup("k", 2)).free == (0, 1)

    def entry(n: int) -> CacheEntry:
        return new_entry(request_id=f"r{n}", status=200, headers=[], latency_ms=1, chunks=[str(n).encode()])

    assert await cache.save("k", 2, entry(0), 60, free=(0, 1)) == 0
    lookup = await cache.lookup("k", 2)
    assert lookup.entry is None and lookup.free == (1,)
    # A write that lost its slot to another instance moves on to the next free one.
    assert await cache.save("k", 2, entry(1), 60, free=(0, 1)) == 1
    assert await cache.save("k", 2, entry(2), 60) is None  # full: nothing written
    picked = {(await cache.lookup("k", 2)).entry.request_id for _ in range(40)}  # type: ignore[union-attr]
    assert picked == {"r0", "r1"}
    await store.aclose()
