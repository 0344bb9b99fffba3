"""One contract for every CacheStore adapter: SQLite locally, DynamoDB (on moto's server) with S3 in AWS.

Expiry is tested with an injected clock the test steps forward, rather than by sleeping: for DynamoDB
the clock feeds both the item's ``expires_at`` and the write condition's ``:now``, so moto still
evaluates the real condition expression.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from heliport.store.blobs import BlobStore, LocalBlobStore, S3BlobStore
from heliport.store.cache_store import (
    INLINE_LIMIT,
    CacheStore,
    CacheUnavailableError,
    DynamoCacheStore,
    SqliteCacheStore,
)
from tests.aws import REGION

pytestmark = pytest.mark.anyio


class FakeClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Backend:
    kind: str
    tmp_path: Path
    table: str = ""
    bucket: str = ""
    endpoint: str = ""


@pytest.fixture(params=["sqlite", "dynamo"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Where the adapters keep their entries; sync, so it may pull in the async AWS fixtures only when needed."""
    if request.param == "sqlite":
        return Backend("sqlite", tmp_path)
    return Backend(
        "dynamo",
        tmp_path,
        table=request.getfixturevalue("dynamo_table"),
        bucket=request.getfixturevalue("s3_bucket"),
        endpoint=request.getfixturevalue("aws_endpoint"),
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


OpenStore = Callable[[], CacheStore]


@pytest.fixture
async def open_store(backend: Backend, clock: FakeClock) -> AsyncIterator[OpenStore]:
    """Opens another adapter on the same storage each call: what a second process or Lambda would see."""
    opened: list[CacheStore | BlobStore] = []

    def make() -> CacheStore:
        store: CacheStore
        if backend.kind == "sqlite":
            store = SqliteCacheStore(backend.tmp_path / "cache.sqlite3", clock=clock)
        else:
            blobs = S3BlobStore(backend.bucket, region=REGION, endpoint_url=backend.endpoint)
            opened.append(blobs)
            store = DynamoCacheStore(backend.table, blobs, region=REGION, endpoint_url=backend.endpoint, clock=clock)
        opened.append(store)
        return store

    try:
        yield make
    finally:
        for closable in opened:
            await closable.aclose()


@pytest.fixture
def store(open_store: OpenStore) -> CacheStore:
    return open_store()


def key(name: str) -> str:
    """A key shaped like the cache's: sha256 hex, with a slot suffix."""
    return hashlib.sha256(name.encode()).hexdigest() + ":0"


# Every byte value, so a text or escaping round trip would show.
VALUE = bytes(range(256)) * 3


async def test_miss_reads_as_none(store: CacheStore) -> None:
    assert await store.get_many([key("nothing")]) == [None]
    assert await store.get_many([]) == []


async def test_put_then_get(store: CacheStore) -> None:
    assert await store.put_if_absent(key("a"), VALUE, 60) is True
    assert await store.get_many([key("a")]) == [VALUE]


async def test_order_is_kept_with_hits_and_misses(store: CacheStore) -> None:
    for name in ("b", "d"):
        assert await store.put_if_absent(key(name), name.encode() * 10, 60)
    got = await store.get_many([key("a"), key("b"), key("c"), key("d"), key("e")])
    assert got == [None, b"b" * 10, None, b"d" * 10, None]
    assert await store.get_many([key("d"), key("b")]) == [b"d" * 10, b"b" * 10]


async def test_live_entry_is_not_replaced(store: CacheStore, clock: FakeClock) -> None:
    assert await store.put_if_absent(key("a"), b"first", 60)
    assert await store.put_if_absent(key("a"), b"second", 60) is False
    clock.advance(59)
    assert await store.put_if_absent(key("a"), b"third", 60) is False
    assert await store.get_many([key("a")]) == [b"first"]


async def test_expired_entry_reads_as_none_and_can_be_replaced(store: CacheStore, clock: FakeClock) -> None:
    assert await store.put_if_absent(key("a"), b"old", 60)
    clock.advance(59.5)
    assert await store.get_many([key("a")]) == [b"old"]  # still within its TTL
    clock.advance(1.6)
    assert await store.get_many([key("a")]) == [None]
    assert await store.put_if_absent(key("a"), b"new", 60) is True
    assert await store.get_many([key("a")]) == [b"new"]
    assert await store.put_if_absent(key("a"), b"newer", 60) is False
    assert await store.get_many([key("a")]) == [b"new"]


async def test_ttl_must_be_positive(store: CacheStore) -> None:
    for ttl in (0, -5):
        with pytest.raises(ValueError, match="positive"):
            await store.put_if_absent(key("a"), b"x", ttl)
    assert await store.get_many([key("a")]) == [None]
    assert await store.put_if_absent(key("a"), b"x", 1) is True


async def test_large_value_round_trips_and_is_not_replaced(store: CacheStore) -> None:
    big = os.urandom(600_000)
    assert await store.put_if_absent(key("big"), big, 60) is True
    other = os.urandom(600_000)
    assert await store.put_if_absent(key("big"), other, 60) is False
    assert await store.put_if_absent(key("small"), b"s", 60)
    assert await store.get_many([key("small"), key("big"), key("none")]) == [b"s", big, None]


async def test_twenty_keys_in_one_call(store: CacheStore) -> None:
    keys = [hashlib.sha256(f"k{i}".encode()).hexdigest() + f":{i}" for i in range(20)]
    for i in range(0, 20, 3):
        assert await store.put_if_absent(keys[i], f"v{i}".encode(), 60)
    expected = [f"v{i}".encode() if i % 3 == 0 else None for i in range(20)]
    assert await store.get_many(keys) == expected


async def test_more_keys_than_one_dynamodb_batch(store: CacheStore) -> None:
    keys = [key(f"k{i}") for i in range(150)]
    for i in (0, 99, 100, 149):
        assert await store.put_if_absent(keys[i], str(i).encode(), 60)
    got = await store.get_many(keys)
    assert {i: v for i, v in enumerate(got) if v is not None} == {0: b"0", 99: b"99", 100: b"100", 149: b"149"}


async def test_duplicate_keys(store: CacheStore) -> None:
    big = os.urandom(INLINE_LIMIT + 1)
    assert await store.put_if_absent(key("a"), b"va", 60)
    assert await store.put_if_absent(key("big"), big, 60)
    got = await store.get_many([key("a"), key("b"), key("a"), key("big"), key("a"), key("big"), key("b")])
    assert got == [b"va", None, b"va", big, b"va", big, None]


async def test_concurrent_writers_to_one_key_have_one_winner(open_store: OpenStore) -> None:
    stores = [open_store(), open_store()]
    for round_ in range(3):
        k = key(f"race{round_}")
        values = [f"writer{i}".encode() for i in range(10)]
        results = await asyncio.gather(*(stores[i % 2].put_if_absent(k, value, 60) for i, value in enumerate(values)))
        assert results.count(True) == 1
        winner = values[results.index(True)]
        assert await stores[0].get_many([k]) == [winner]
        assert await stores[1].get_many([k]) == [winner]


async def test_concurrent_large_writers_keep_the_winners_bytes(store: CacheStore) -> None:
    """A losing writer of a large value must not disturb the winner's bytes (DynamoDB: its blob)."""
    values = [os.urandom(INLINE_LIMIT + 1000) for _ in range(5)]
    results = await asyncio.gather(*(store.put_if_absent(key("big"), value, 60) for value in values))
    assert results.count(True) == 1
    assert await store.get_many([key("big")]) == [values[results.index(True)]]


async def test_entries_outlive_the_adapter(open_store: OpenStore) -> None:
    first = open_store()
    assert await first.put_if_absent(key("a"), VALUE, 60)
    await first.aclose()
    second = open_store()
    assert await second.get_many([key("a")]) == [VALUE]
    assert await second.put_if_absent(key("a"), b"other", 60) is False


# --- SQLite only --------------------------------------------------------------------------------


async def test_sqlite_writers_on_separate_connections_never_share_a_slot(tmp_path: Path) -> None:
    """Threads, each with its own connection to the file, racing as separate processes would."""
    path = tmp_path / "cache.sqlite3"
    keys = [key(f"slot{i}") for i in range(40)]
    writers = 6
    barrier = threading.Barrier(writers)

    def write(n: int) -> list[bool]:
        store = SqliteCacheStore(path)
        barrier.wait(timeout=30)
        won = [asyncio.run(store.put_if_absent(k, f"writer{n}".encode(), 60)) for k in keys]
        asyncio.run(store.aclose())
        return won

    # Threads of their own: anyio's shared worker pool may be short of free threads when other tests
    # left some busy, and then the barrier would wait for a writer that never starts.
    with ThreadPoolExecutor(max_workers=writers) as pool:
        results = list(pool.map(write, range(writers)))
    reader = SqliteCacheStore(path)
    stored = await reader.get_many(keys)
    await reader.aclose()
    for i, value in enumerate(stored):
        winners = [n for n in range(writers) if results[n][i]]
        assert len(winners) == 1
        assert value == f"writer{winners[0]}".encode()


async def test_sqlite_sweeps_expired_rows(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    clock = FakeClock()
    store = SqliteCacheStore(path, clock=clock, sweep_every=3)
    assert await store.put_if_absent(key("short"), b"x", 10)  # the first write sweeps an empty table
    assert await store.put_if_absent(key("long"), b"y", 1000)
    clock.advance(11)
    assert await store.put_if_absent(key("two"), b"z", 1000)  # not a sweep: the row stays, unread
    assert [row[0] for row in _sqlite_keys(path)] == sorted([key("short"), key("long"), key("two")])
    assert await store.put_if_absent(key("three"), b"w", 1000)  # the fourth write sweeps
    assert [row[0] for row in _sqlite_keys(path)] == sorted([key("long"), key("two"), key("three")])
    assert await store.get_many([key("short"), key("long")]) == [None, b"y"]
    await store.aclose()


def _sqlite_keys(path: Path) -> list[tuple[str]]:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT key FROM cache ORDER BY key").fetchall()
    finally:
        conn.close()


# --- DynamoDB only ------------------------------------------------------------------------------


@pytest.fixture
async def s3_blobs(aws_endpoint: str, s3_bucket: str) -> AsyncIterator[S3BlobStore]:
    blobs = S3BlobStore(s3_bucket, region=REGION, endpoint_url=aws_endpoint)
    try:
        yield blobs
    finally:
        await blobs.aclose()


@pytest.fixture
async def dynamo_store(aws_endpoint: str, dynamo_table: str, s3_blobs: S3BlobStore) -> AsyncIterator[DynamoCacheStore]:
    store = DynamoCacheStore(dynamo_table, s3_blobs, region=REGION, endpoint_url=aws_endpoint)
    try:
        yield store
    finally:
        await store.aclose()


@pytest.fixture
async def raw_dynamo(aws_endpoint: str) -> AsyncIterator[Any]:
    """A plain client, to see and write items as they are in the table."""
    import aioboto3

    async with aioboto3.Session().client("dynamodb", region_name=REGION, endpoint_url=aws_endpoint) as client:
        yield client


async def _raw_item(client: Any, table: str, k: str) -> dict[str, Any]:
    response = await client.get_item(TableName=table, Key={"pk": {"S": f"cache#{k}"}, "sk": {"S": "cache"}})
    item: dict[str, Any] = response["Item"]
    return item


async def test_dynamo_item_layout(
    dynamo_store: DynamoCacheStore, raw_dynamo: Any, dynamo_table: str, s3_blobs: S3BlobStore
) -> None:
    before = time.time()
    at_limit, over_limit = os.urandom(INLINE_LIMIT), os.urandom(INLINE_LIMIT + 1)
    assert await dynamo_store.put_if_absent(key("small"), at_limit, 3600)
    assert await dynamo_store.put_if_absent(key("large"), over_limit, 3600)
    after = time.time()

    small = await _raw_item(raw_dynamo, dynamo_table, key("small"))
    assert set(small) == {"pk", "sk", "v", "expires_at"}
    assert small["v"]["B"] == at_limit
    expires_at = small["expires_at"]["N"]
    assert expires_at.isdigit()  # whole epoch seconds, as DynamoDB's TTL wants
    assert math.ceil(before + 3600) <= int(expires_at) <= math.ceil(after + 3600)

    large = await _raw_item(raw_dynamo, dynamo_table, key("large"))
    assert set(large) == {"pk", "sk", "blob", "expires_at"}
    blob_key = large["blob"]["S"]
    assert blob_key.startswith(f"cache/{key('large')}/")
    assert await s3_blobs.list("cache/") == [blob_key]
    assert await s3_blobs.get(blob_key) == over_limit


async def test_dynamo_missing_blob_reads_as_miss(
    dynamo_store: DynamoCacheStore, s3_blobs: S3BlobStore, clock: FakeClock
) -> None:
    big = os.urandom(INLINE_LIMIT + 1)
    assert await dynamo_store.put_if_absent(key("big"), big, 60)
    assert await dynamo_store.put_if_absent(key("small"), b"s", 60)
    [blob_key] = await s3_blobs.list("cache/")
    await s3_blobs.delete(blob_key)
    assert await dynamo_store.get_many([key("big"), key("small")]) == [None, b"s"]


async def test_dynamo_ignores_expired_items_ttl_has_not_deleted(
    dynamo_store: DynamoCacheStore, raw_dynamo: Any, dynamo_table: str
) -> None:
    """With the real clock: an item past ``expires_at`` still in the table, as TTL's lazy deletion leaves it."""
    past = str(int(time.time()) - 5)
    for name in ("inline", "blob"):
        item = {"pk": {"S": f"cache#{key(name)}"}, "sk": {"S": "cache"}, "expires_at": {"N": past}}
        item |= {"v": {"B": b"stale"}} if name == "inline" else {"blob": {"S": "cache/whatever"}}
        await raw_dynamo.put_item(TableName=dynamo_table, Item=item)
    assert await dynamo_store.get_many([key("inline"), key("blob")]) == [None, None]
    assert await dynamo_store.put_if_absent(key("inline"), b"fresh", 60) is True
    assert await dynamo_store.get_many([key("inline")]) == [b"fresh"]


class CallSpy:
    """Wraps one method of a live client, counting calls and optionally rewriting responses."""

    def __init__(
        self,
        call: Callable[..., Awaitable[dict[str, Any]]],
        rewrite: Callable[[int, dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self._call = call
        self._rewrite = rewrite
        self.requests: list[dict[str, Any]] = []

    async def __call__(self, **params: Any) -> dict[str, Any]:
        self.requests.append(params)
        response = await self._call(**params)
        return self._rewrite(len(self.requests), response) if self._rewrite else response


async def _spy_batch_get(
    store: DynamoCacheStore,
    monkeypatch: pytest.MonkeyPatch,
    rewrite: Callable[[int, dict[str, Any]], dict[str, Any]] | None = None,
) -> CallSpy:
    client = await store._client.get()
    spy = CallSpy(client.batch_get_item, rewrite)
    monkeypatch.setattr(client, "batch_get_item", spy)
    return spy


async def test_dynamo_reads_a_bucket_in_one_batch(
    dynamo_store: DynamoCacheStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [key(f"k{i}") for i in range(20)]
    assert await dynamo_store.put_if_absent(keys[4], b"four", 60)
    spy = await _spy_batch_get(dynamo_store, monkeypatch)
    got = await dynamo_store.get_many([*keys, keys[4], keys[0]])
    assert got == [None] * 4 + [b"four"] + [None] * 15 + [b"four", None]
    assert len(spy.requests) == 1
    [table_request] = spy.requests[0]["RequestItems"].values()
    assert len(table_request["Keys"]) == 20  # deduplicated: DynamoDB refuses repeated keys


async def test_dynamo_retries_unprocessed_keys(
    dynamo_store: DynamoCacheStore, dynamo_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [key(f"k{i}") for i in range(6)]
    for k in keys:
        assert await dynamo_store.put_if_absent(k, k.encode(), 60)

    def throttle_first(call: int, response: dict[str, Any]) -> dict[str, Any]:
        """The first answer returns two items and leaves the rest unprocessed, as a throttled table does."""
        if call > 1:
            return response
        items = sorted(response["Responses"][dynamo_table], key=lambda item: item["pk"]["S"])
        left = [{"pk": item["pk"], "sk": item["sk"]} for item in items[2:]]
        return {"Responses": {dynamo_table: items[:2]}, "UnprocessedKeys": {dynamo_table: {"Keys": left}}}

    spy = await _spy_batch_get(dynamo_store, monkeypatch, throttle_first)
    assert await dynamo_store.get_many(keys) == [k.encode() for k in keys]
    assert len(spy.requests) == 2
    assert len(spy.requests[1]["RequestItems"][dynamo_table]["Keys"]) == 4


async def test_dynamo_gives_up_on_keys_that_stay_unprocessed(
    dynamo_store: DynamoCacheStore, dynamo_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(call: int, response: dict[str, Any]) -> dict[str, Any]:
        return {"Responses": {}, "UnprocessedKeys": {dynamo_table: {"Keys": [_key_of(key("a"))]}}}

    spy = await _spy_batch_get(dynamo_store, monkeypatch, never)
    with anyio.fail_after(5), pytest.raises(CacheUnavailableError, match="unprocessed"):
        await dynamo_store.get_many([key("a")])
    assert len(spy.requests) == 4


def _key_of(k: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"cache#{k}"}, "sk": {"S": "cache"}}


async def test_dynamo_errors_other_than_a_taken_slot_raise(aws_endpoint: str, tmp_path: Path) -> None:
    store = DynamoCacheStore("no-such-table", LocalBlobStore(tmp_path), region=REGION, endpoint_url=aws_endpoint)
    try:
        with pytest.raises(Exception, match="ResourceNotFoundException"):
            await store.get_many([key("a")])
        with pytest.raises(Exception, match="ResourceNotFoundException"):
            await store.put_if_absent(key("a"), b"x", 60)
    finally:
        await store.aclose()


async def test_dynamo_with_a_local_blob_store(aws_endpoint: str, dynamo_table: str, tmp_path: Path) -> None:
    """Any BlobStore will do; the blob lands under ``cache/``."""
    blobs = LocalBlobStore(tmp_path / "blobs")
    store = DynamoCacheStore(dynamo_table, blobs, region=REGION, endpoint_url=aws_endpoint)
    try:
        big = os.urandom(INLINE_LIMIT * 2)
        assert await store.put_if_absent(key("big"), big, 60)
        assert await store.get_many([key("big")]) == [big]
        [blob_key] = await blobs.list("cache/")
        assert await blobs.get(blob_key) == big
    finally:
        await store.aclose()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel completes them) but never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


async def test_dynamo_refused_connection_raises(aws_endpoint: str, tmp_path: Path) -> None:
    """Nothing listening (port 9 on loopback): both operations raise, after one quick retry."""
    from botocore.exceptions import EndpointConnectionError

    # aws_endpoint is only here for its fake credentials, so the failure is the connection's.
    store = DynamoCacheStore("heliport", LocalBlobStore(tmp_path), region=REGION, endpoint_url="http://127.0.0.1:9")
    try:
        with anyio.fail_after(15):
            with pytest.raises(EndpointConnectionError):
                await store.get_many([key("a")])
            with pytest.raises(EndpointConnectionError):
                await store.put_if_absent(key("a"), b"x", 60)
    finally:
        await store.aclose()


async def test_dynamo_silent_endpoint_times_out(aws_endpoint: str, tmp_path: Path, silent_port: int) -> None:
    """A connection that never answers is given up on after two short read timeouts, not waited on."""
    from botocore.exceptions import ReadTimeoutError

    endpoint = f"http://127.0.0.1:{silent_port}"
    store = DynamoCacheStore("heliport", LocalBlobStore(tmp_path), region=REGION, endpoint_url=endpoint)
    try:
        started = time.monotonic()
        with anyio.fail_after(15), pytest.raises(ReadTimeoutError):
            await store.get_many([key("a")])
        # Two attempts of the 2 s read timeout, with at most a second of backoff between them.
        assert time.monotonic() - started < 9
    finally:
        await store.aclose()


def test_module_does_not_import_the_aws_sdk() -> None:
    code = (
        "import sys, heliport.store.cache_store; "
        "assert not {'aioboto3', 'aiobotocore', 'botocore'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
