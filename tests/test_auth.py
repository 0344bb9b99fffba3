from __future__ import annotations

import re
from pathlib import Path

import pytest

from heliport.auth import Authenticator, bootstrap_local_org, create_key, hash_key
from heliport.errors import AuthenticationError
from heliport.store.local import SqliteKeyStore
from heliport.store.ports import ApiKey

pytestmark = pytest.mark.anyio


class CountingStore(SqliteKeyStore):
    """The real SQLite store, counting how often the authenticator reaches it."""

    lookups = 0

    async def get_key(self, key_hash: str) -> ApiKey | None:
        self.lookups += 1
        return await super().get_key(key_hash)


async def test_keys_are_stored_only_as_hashes(tmp_path: Path) -> None:
    store = SqliteKeyStore(tmp_path / "keys.sqlite3")
    org, first = await bootstrap_local_org(store)
    assert first is not None and re.fullmatch(r"sk-heliport-[0-9a-f]{48}", first)
    plain, key = await create_key(store, org.id, "ci")
    assert key.key_hash == hash_key(plain) and plain != key.key_hash
    database = (tmp_path / "keys.sqlite3").read_bytes() + (tmp_path / "keys.sqlite3-wal").read_bytes()
    assert plain.encode() not in database and first.encode() not in database
    # A second bootstrap finds the organisation and makes no new key.
    assert await bootstrap_local_org(store) == (org, None)


async def test_authenticator_caches_hits_and_misses(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "keys.sqlite3")
    org, _ = await bootstrap_local_org(store)
    plain, key = await create_key(store, org.id, "ci")
    auth = Authenticator(store, ttl=60)
    assert (await auth.authenticate(plain)).id == key.id
    assert (await auth.authenticate(plain)).id == key.id
    assert store.lookups == 1
    for _ in range(3):
        with pytest.raises(AuthenticationError):
            await auth.authenticate("sk-heliport-unknown")
    assert store.lookups == 2


async def test_revocation_bites_after_the_ttl(tmp_path: Path) -> None:
    store = SqliteKeyStore(tmp_path / "keys.sqlite3")
    org, _ = await bootstrap_local_org(store)
    plain, key = await create_key(store, org.id, "ci")
    auth = Authenticator(store, ttl=0)
    await auth.authenticate(plain)
    assert await store.revoke_key(org.id, key.id)
    with pytest.raises(AuthenticationError, match="revoked"):
        await auth.authenticate(plain)


async def test_missing_token_is_rejected(tmp_path: Path) -> None:
    auth = Authenticator(SqliteKeyStore(tmp_path / "keys.sqlite3"), ttl=60)
    with pytest.raises(AuthenticationError, match="Missing heliport key"):
        await auth.authenticate(None)
