"""One contract for every CounterStore adapter: SQLite locally, DynamoDB (on moto's server) in AWS."""

from __future__ import annotations

import asyncio
import math
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import pytest

from heliport.store.aws import LazyClient, create_table
from heliport.store.counter_store import CounterStore, DynamoCounterStore, SqliteCounterStore
from tests.aws import REGION

pytestmark = pytest.mark.anyio

T0 = 1_800_000_000.0


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


#: Opens another store on the same counters (same file or table), with its own connection or client.
OpenStore = Callable[..., CounterStore]


@pytest.fixture(params=["sqlite", "dynamo"])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenStore]:
    opened: list[CounterStore] = []
    if request.param == "sqlite":

        def make(clock: Callable[[], float] | None = None) -> CounterStore:
            store = SqliteCounterStore(tmp_path / "counters.sqlite3", **({"clock": clock} if clock else {}))
            opened.append(store)
            return store

    else:
        # Only the sync fixture can be requested dynamically from inside this async one.
        endpoint: str = request.getfixturevalue("aws_endpoint")
        request.getfixturevalue("atomic_moto_writes")
        table = f"heliport-{uuid.uuid4().hex[:12]}"
        await create_table(table, region=REGION, endpoint_url=endpoint)

        def make(clock: Callable[[], float] | None = None) -> CounterStore:
            store = DynamoCounterStore(
                table, region=REGION, endpoint_url=endpoint, **({"clock": clock} if clock else {})
            )
            opened.append(store)
            return store

    try:
        yield make
    finally:
        for store in opened:
            await store.aclose()


@pytest.fixture
def store(open_store: OpenStore) -> CounterStore:
    return open_store()


async def test_absent_counter_reads_zero(store: CounterStore) -> None:
    assert await store.get("nobody") == 0


async def test_unconditional_adds_accumulate(store: CounterStore) -> None:
    assert await store.add("k", 1, ttl_seconds=60) == (True, 1)
    assert await store.add("k", 2.5, ttl_seconds=60) == (True, 3.5)
    assert await store.get("k") == 3.5
    assert await store.get("other") == 0


async def test_at_most_applies_up_to_the_limit_then_refuses_with_the_blocking_value(store: CounterStore) -> None:
    assert await store.add("k", 3, ttl_seconds=60, at_most=5) == (True, 3)
    assert await store.add("k", 2, ttl_seconds=60, at_most=5) == (True, 5)  # reaching it exactly is allowed
    assert await store.add("k", 1, ttl_seconds=60, at_most=5) == (False, 5)
    assert await store.add("k", 0.5, ttl_seconds=60, at_most=5.4) == (False, 5)
    assert await store.get("k") == 5  # a refused add left nothing behind
    assert await store.add("k", 1, ttl_seconds=60, at_most=6) == (True, 6)


async def test_at_most_on_an_absent_counter(store: CounterStore) -> None:
    # Over the limit even from zero: refused, reports 0, and creates nothing.
    assert await store.add("k", 2, ttl_seconds=60, at_most=1) == (False, 0)
    assert await store.add("k", 1, ttl_seconds=60, at_most=0.5) == (False, 0)
    assert await store.get("k") == 0
    assert await store.add("k", 1, ttl_seconds=60, at_most=1) == (True, 1)


async def test_fractional_amounts(store: CounterStore) -> None:
    for _ in range(10):
        applied, _value = await store.add("cents", 0.1, ttl_seconds=60)
        assert applied
    assert await store.get("cents") == pytest.approx(1.0)
    applied, value = await store.add("cents", 0.05, ttl_seconds=60, at_most=1.0)
    assert not applied and value == pytest.approx(1.0)
    assert await store.add("small", 0.3, ttl_seconds=60, at_most=0.5) == (True, 0.3)
    assert await store.add("small", 0.3, ttl_seconds=60, at_most=0.5) == (False, 0.3)
    applied, value = await store.add("small", 0.0125, ttl_seconds=60, at_most=0.5)
    assert applied and value == pytest.approx(0.3125)


async def test_expiry_is_set_by_the_first_add_and_an_expired_counter_restarts(open_store: OpenStore) -> None:
    clock = FakeClock()
    store = open_store(clock)
    await store.add("k", 5, ttl_seconds=60)
    clock.now = T0 + 59
    assert await store.add("k", 1, ttl_seconds=60) == (True, 6)  # a later add does not extend the expiry
    assert await store.get("k") == 6
    clock.now = T0 + 60
    assert await store.get("k") == 0
    # Expired counts as zero for the limit too: over it even from zero, so refused at 0.
    assert await store.add("k", 4, ttl_seconds=60, at_most=3) == (False, 0)
    assert await store.add("k", 2, ttl_seconds=60, at_most=3) == (True, 2)
    clock.now = T0 + 60 + 59
    assert await store.get("k") == 2
    clock.now = T0 + 60 + 60
    assert await store.get("k") == 0
    assert await store.add("k", 1.5, ttl_seconds=60) == (True, 1.5)  # unconditional restart too


async def test_concurrent_adds_never_pass_the_limit(store: CounterStore) -> None:
    results = await asyncio.gather(*(store.add("hot", 1, ttl_seconds=60, at_most=10) for _ in range(50)))
    applied = [value for ok, value in results if ok]
    refused = [value for ok, value in results if not ok]
    assert sorted(applied) == [float(n) for n in range(1, 11)]
    assert refused == [10.0] * 40
    assert await store.get("hot") == 10


async def test_two_instances_share_the_counters(open_store: OpenStore) -> None:
    first, second = open_store(), open_store()
    results = await asyncio.gather(
        *((first if n % 2 else second).add("shared", 1, ttl_seconds=60, at_most=12) for n in range(30))
    )
    assert sum(ok for ok, _ in results) == 12
    assert await first.get("shared") == await second.get("shared") == 12
    assert await second.add("shared", 0.5, ttl_seconds=60) == (True, 12.5)
    assert await first.get("shared") == 12.5


async def test_keys_are_opaque(store: CounterStore) -> None:
    odd = ["org:user:a:b:request#60#1", "ünïcødé 🙂#1", "a" * 600, "#", " "]
    for n, key in enumerate(odd, start=1):
        assert await store.add(key, n, ttl_seconds=60) == (True, n)
    assert [await store.get(key) for key in odd] == [1, 2, 3, 4, 5]


async def test_invalid_arguments_are_refused(store: CounterStore) -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        await store.add("k", 1, ttl_seconds=0)
    with pytest.raises(ValueError, match="finite"):
        await store.add("k", math.nan, ttl_seconds=60)
    assert await store.get("k") == 0


# --- SQLite only --------------------------------------------------------------------------------


def test_sqlite_connections_in_threads_never_pass_the_limit(tmp_path: Path) -> None:
    """Separate connections (as separate processes would have) contend for one file's write lock."""
    path = tmp_path / "counters.sqlite3"
    anyio.run(SqliteCounterStore(path).aclose)  # create the schema once, before the race
    results: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        async def run() -> list[bool]:
            store = SqliteCounterStore(path)
            try:
                return [(await store.add("k", 1, ttl_seconds=60, at_most=40))[0] for _ in range(25)]
            finally:
                await store.aclose()

        outcome = anyio.run(run)
        with lock:
            results.extend(outcome)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 100
    assert sum(results) == 40

    async def total() -> float:
        store = SqliteCounterStore(path)
        try:
            return await store.get("k")
        finally:
            await store.aclose()

    assert anyio.run(total) == 40


# --- DynamoDB only ------------------------------------------------------------------------------


async def test_dynamo_item_layout(aws_endpoint: str, dynamo_table: str) -> None:
    """``rl#<key>``/``rl`` with a whole-second ``expires_at``: the table's TTL attribute deletes it."""
    clock = FakeClock(T0 + 0.25)
    store = DynamoCounterStore(dynamo_table, region=REGION, endpoint_url=aws_endpoint, clock=clock)
    raw = LazyClient("dynamodb", region=REGION, endpoint_url=aws_endpoint)
    try:
        await store.add("org:global:cents#60#5", 0.1, ttl_seconds=180)
        await store.add("org:global:cents#60#5", 0.2, ttl_seconds=180)
        client = await raw.get()
        response = await client.get_item(
            TableName=dynamo_table, Key={"pk": {"S": "rl#org:global:cents#60#5"}, "sk": {"S": "rl"}}
        )
        item = response["Item"]
        assert item["n"] == {"N": "0.3"}  # decimal arithmetic: exactly 0.3
        assert item["expires_at"] == {"N": str(int(T0) + 181)}  # rounded up: it lives at least its TTL
    finally:
        await store.aclose()
        await raw.aclose()


@pytest.mark.usefixtures("atomic_moto_writes")
async def test_dynamo_concurrent_restarts_of_an_expired_item(aws_endpoint: str, dynamo_table: str) -> None:
    """TTL deletes lazily: an expired item still there must restart once, not be added to or lost."""
    clock = FakeClock()
    stores = [DynamoCounterStore(dynamo_table, region=REGION, endpoint_url=aws_endpoint, clock=clock) for _ in range(3)]
    try:
        await stores[0].add("k", 100, ttl_seconds=60)
        clock.now = T0 + 61
        results = await asyncio.gather(*(stores[n % 3].add("k", 1, ttl_seconds=60, at_most=5) for n in range(20)))
        assert sum(ok for ok, _ in results) == 5
        assert all(value <= 5 for _, value in results)
        assert await stores[1].get("k") == 5
    finally:
        for store in stores:
            await store.aclose()


async def test_dynamo_unreachable_fails_fast(aws_endpoint: str) -> None:
    """Nothing listens on port 9: short timeouts and one retry give up instead of hanging.

    Each call is bounded by its configuration: two attempts of at most 1 s to connect, with botocore's
    standard backoff between them (at most 2 s before the second): about 4 s. The deadline is
    generous on top of that, since a loaded CI machine once took over 5 s for the two calls: the
    test is that the call gives up, not how fast.

    ``aws_endpoint`` is only asked for its fake credentials, so botocore does not go looking for real ones.
    """
    from botocore.exceptions import EndpointConnectionError

    store = DynamoCounterStore("no-table", region=REGION, endpoint_url="http://127.0.0.1:9")
    try:
        with anyio.fail_after(15), pytest.raises(EndpointConnectionError):
            await store.add("k", 1, ttl_seconds=60, at_most=10)
        with anyio.fail_after(15), pytest.raises(EndpointConnectionError):
            await store.get("k")
    finally:
        await store.aclose()
