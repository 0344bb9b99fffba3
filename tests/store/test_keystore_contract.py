"""One contract for every KeyStore adapter: SQLite locally, DynamoDB (on moto's server) in AWS."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import msgspec
import pytest

from heliport.auth import Authenticator, create_key, hash_key
from heliport.errors import AuthenticationError
from heliport.store.aws import create_table
from heliport.store.keys import ApiKey, DynamoKeyStore, KeyStore, Organisation, SqliteKeyStore
from tests.aws import REGION

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", "dynamo"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[KeyStore]:
    adapter: KeyStore
    if request.param == "sqlite":
        adapter = SqliteKeyStore(tmp_path / "keys.sqlite3")
    else:
        # Only the sync fixture can be requested dynamically from inside this async one.
        endpoint: str = request.getfixturevalue("aws_endpoint")
        table = f"heliport-{uuid.uuid4().hex[:12]}"
        await create_table(table, region=REGION, endpoint_url=endpoint)
        adapter = DynamoKeyStore(table, region=REGION, endpoint_url=endpoint)
    try:
        yield adapter
    finally:
        await adapter.aclose()


# Microseconds and a non-UTC offset, so a lossy encoding would show.
T0 = datetime(2024, 5, 17, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))


def org(name: str, minutes: int = 0) -> Organisation:
    return Organisation(id=str(uuid.uuid4()), name=name, created_at=T0 + timedelta(minutes=minutes))


def key(org_id: str, name: str = "k", minutes: int = 0, revoked_at: datetime | None = None) -> ApiKey:
    key_id = str(uuid.uuid4())
    return ApiKey(
        id=key_id,
        org_id=org_id,
        name=name,
        key_hash=hash_key(key_id),
        prefix="sk-heliport-abcdef",
        created_at=datetime(2024, 6, 1, 12, 0, 0, 654321, tzinfo=UTC) + timedelta(minutes=minutes),
        revoked_at=revoked_at,
    )


async def test_put_and_get_org(store: KeyStore) -> None:
    acme = org("Acme")
    await store.put_org(acme)
    assert await store.get_org(acme.id) == acme
    assert await store.get_org("missing") is None


async def test_put_org_replaces(store: KeyStore) -> None:
    acme = org("Acme")
    await store.put_org(acme)
    renamed = Organisation(id=acme.id, name="Acme Ltd", created_at=acme.created_at)
    await store.put_org(renamed)
    assert await store.get_org(acme.id) == renamed
    assert await store.list_orgs() == [renamed]


async def test_list_orgs(store: KeyStore) -> None:
    assert await store.list_orgs() == []
    orgs = [org("b", minutes=2), org("a", minutes=1), org("c", minutes=3)]
    for o in orgs:
        await store.put_org(o)
    assert await store.list_orgs() == sorted(orgs, key=lambda o: o.created_at)


async def test_create_org_then_find_it_by_name(store: KeyStore) -> None:
    acme, globex = org("Acme", minutes=1), org("Globex", minutes=2)
    await store.create_org(acme)
    await store.create_org(globex)
    assert await store.get_org(acme.id) == acme
    assert await store.find_orgs("Acme") == [acme]
    assert await store.find_orgs("Globex") == [globex]
    # Exact names: no case folding, no prefix match.
    assert await store.find_orgs("acme") == []
    assert await store.find_orgs("Acm") == []
    assert await store.list_orgs() == [acme, globex]


async def test_create_org_refuses_a_taken_name_or_id(store: KeyStore) -> None:
    acme = org("Acme")
    await store.create_org(acme)
    with pytest.raises(ValueError, match="named 'Acme' already exists"):
        await store.create_org(org("Acme", minutes=1))
    with pytest.raises(ValueError, match=f"with id {acme.id!r} already exists"):
        await store.create_org(Organisation(id=acme.id, name="Other", created_at=T0))
    # Nothing of either refused create was written: "Other" is still free, acme unchanged.
    assert await store.list_orgs() == [acme]
    assert await store.find_orgs("Other") == []
    other = org("Other", minutes=2)
    await store.create_org(other)
    assert await store.list_orgs() == [acme, other]


async def test_create_org_refuses_a_name_put_org_stored(store: KeyStore) -> None:
    """The bootstrap's put_org checks nothing, but the name it stored still counts as taken."""
    local = org("local")
    await store.put_org(local)
    with pytest.raises(ValueError, match="named 'local' already exists"):
        await store.create_org(org("local", minutes=1))
    assert await store.list_orgs() == [local]


async def test_find_orgs_answers_every_holder_of_a_name_oldest_first(store: KeyStore) -> None:
    """Only put_org can make two organisations share a name (a store from before names were unique)."""
    newer, older = org("twin", minutes=5), org("twin", minutes=1)
    await store.put_org(newer)
    await store.put_org(older)
    assert await store.find_orgs("twin") == [older, newer]


async def test_put_key_then_get_by_hash(store: KeyStore) -> None:
    acme = org("Acme")
    await store.put_org(acme)
    k = key(acme.id)
    await store.put_key(k)
    got = await store.get_key(k.key_hash)
    assert got == k
    assert got is not None and got.active
    assert await store.get_key(hash_key("unknown")) is None


async def test_datetimes_round_trip(store: KeyStore) -> None:
    acme = org("Acme")
    await store.put_org(acme)
    revoked = datetime(2024, 7, 1, 0, 0, 0, 1, tzinfo=timezone(timedelta(hours=-5, minutes=-30)))
    k = key(acme.id, revoked_at=revoked)
    await store.put_key(k)
    got_org = await store.get_org(acme.id)
    got_key = await store.get_key(k.key_hash)
    assert got_org is not None and got_key is not None
    assert got_org.created_at == acme.created_at
    assert got_org.created_at.utcoffset() == acme.created_at.utcoffset()
    assert got_key.created_at == k.created_at
    assert got_key.revoked_at == revoked
    assert got_key.revoked_at is not None and got_key.revoked_at.utcoffset() == revoked.utcoffset()
    assert await store.list_keys(acme.id) == [k]


async def test_list_keys_is_per_org(store: KeyStore) -> None:
    acme, globex = org("Acme"), org("Globex")
    await store.put_org(acme)
    await store.put_org(globex)
    acme_keys = [key(acme.id, "one", minutes=1), key(acme.id, "two", minutes=2)]
    globex_key = key(globex.id, "theirs")
    for k in [acme_keys[1], globex_key, acme_keys[0]]:
        await store.put_key(k)
    assert await store.list_keys(acme.id) == acme_keys
    assert await store.list_keys(globex.id) == [globex_key]
    assert await store.list_keys("nobody") == []


async def test_revoke(store: KeyStore) -> None:
    acme = org("Acme")
    await store.put_org(acme)
    k = key(acme.id)
    await store.put_key(k)
    before = datetime.now(UTC)
    assert await store.revoke_key(acme.id, k.id) is True
    got = await store.get_key(k.key_hash)
    assert got is not None and not got.active
    assert got.revoked_at is not None and got.revoked_at >= before - timedelta(seconds=1)
    # The listing agrees with the lookup.
    assert await store.list_keys(acme.id) == [got]


async def test_revoke_twice_keeps_first_time(store: KeyStore) -> None:
    acme = org("Acme")
    await store.put_org(acme)
    k = key(acme.id)
    await store.put_key(k)
    assert await store.revoke_key(acme.id, k.id)
    first = await store.get_key(k.key_hash)
    assert first is not None and first.revoked_at is not None
    assert await store.revoke_key(acme.id, k.id)
    second = await store.get_key(k.key_hash)
    assert second is not None and second.revoked_at == first.revoked_at
    assert await store.list_keys(acme.id) == [first]


async def test_revoke_other_orgs_key_is_refused(store: KeyStore) -> None:
    acme, globex = org("Acme"), org("Globex")
    await store.put_org(acme)
    await store.put_org(globex)
    theirs = key(globex.id)
    await store.put_key(theirs)
    assert await store.revoke_key(acme.id, theirs.id) is False
    assert await store.revoke_key(acme.id, "no-such-key") is False
    got = await store.get_key(theirs.key_hash)
    assert got is not None and got.active
    assert await store.list_keys(globex.id) == [theirs]


async def test_created_key_authenticates_until_revoked(store: KeyStore) -> None:
    acme = org("Acme")
    await store.put_org(acme)
    plain, record = await create_key(store, acme.id, "ci")
    auth = Authenticator(store, ttl=0)
    assert await auth.authenticate(plain) == record
    with pytest.raises(AuthenticationError):
        await auth.authenticate(plain + "x")
    assert await store.revoke_key(acme.id, record.id)
    with pytest.raises(AuthenticationError, match="revoked"):
        await auth.authenticate(plain)


# --- DynamoDB only ------------------------------------------------------------------------------


async def test_dynamo_put_key_refuses_duplicates(aws_endpoint: str, dynamo_table: str) -> None:
    store = DynamoKeyStore(dynamo_table, region=REGION, endpoint_url=aws_endpoint)
    try:
        k = key("org-1")
        await store.put_key(k)
        same_hash = msgspec.structs.replace(key("org-1"), key_hash=k.key_hash)
        with pytest.raises(ValueError, match="already exists"):
            await store.put_key(same_hash)
        same_id = msgspec.structs.replace(key("org-1"), id=k.id)
        with pytest.raises(ValueError, match="already exists"):
            await store.put_key(same_id)
        # Neither half of a refused transaction was written.
        assert await store.list_keys("org-1") == [k]
        assert await store.get_key(same_id.key_hash) is None
    finally:
        await store.aclose()


async def test_dynamo_name_claim_refuses_a_concurrent_create(
    aws_endpoint: str, dynamo_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two creates of one name can both pass the listing check; the name's claim item stops the second."""
    store = DynamoKeyStore(dynamo_table, region=REGION, endpoint_url=aws_endpoint)
    try:
        first = org("Acme")
        await store.create_org(first)

        async def nobody(name: str) -> list[Organisation]:  # what a create racing the first one saw
            return []

        monkeypatch.setattr(store, "find_orgs", nobody)
        second = org("Acme", minutes=1)
        with pytest.raises(ValueError, match="named 'Acme' already exists"):
            await store.create_org(second)
        # The transaction wrote neither of the second's organisation items.
        assert await store.get_org(second.id) is None
        assert await store.list_orgs() == [first]
    finally:
        await store.aclose()


async def test_dynamo_create_table_is_idempotent(aws_endpoint: str, dynamo_table: str) -> None:
    assert await create_table(dynamo_table, region=REGION, endpoint_url=aws_endpoint) is False


async def test_dynamo_lists_across_pages(aws_endpoint: str, dynamo_table: str) -> None:
    """Enough keys that a 1 MB Query page cannot hold them all, so pagination is exercised."""
    store = DynamoKeyStore(dynamo_table, region=REGION, endpoint_url=aws_endpoint)
    try:
        keys = [key("big", "n" * 30_000, minutes=i) for i in range(40)]
        for k in keys:
            await store.put_key(k)
        assert await store.list_keys("big") == keys
    finally:
        await store.aclose()
