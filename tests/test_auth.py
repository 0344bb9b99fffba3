from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import uuid
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from heliport.auth import Authenticator, bootstrap_local_org, create_key, hash_key
from heliport.errors import AuthenticationError
from heliport.store.keys import ApiKey, DynamoKeyStore, SqliteKeyStore
from tests.aws import REGION
from tests.harness import Gateway
from tests.mock_provider import MockProvider

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


@pytest.mark.parametrize("token", ["", "   ", "\t"])
async def test_a_blank_token_is_a_missing_key(tmp_path: Path, token: str) -> None:
    auth = Authenticator(SqliteKeyStore(tmp_path / "keys.sqlite3"), ttl=60)
    with pytest.raises(AuthenticationError, match="Missing heliport key"):
        await auth.authenticate(token)


# Every entry point answers an unusable Helicone-Auth the way Helicone does: 401, the same JSON error.
# ("Bearer" with trailing blanks cannot be sent by httpx; tests/test_headers_fuzz.py sends it over a raw socket.)
UNUSABLE = ["Bearer", "bearer", "Basic eHl6", "sk-heliport-not-bearer", "Token abc"]


@pytest.mark.parametrize("value", UNUSABLE)
@pytest.mark.parametrize("path", ["/v1/gateway/oai/v1/chat/completions", "/v1/chat/completions"])
async def test_an_unusable_helicone_auth_is_a_401_on_http_routes(
    gateway: Gateway, mock_provider: MockProvider, path: str, value: str
) -> None:
    marker = uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        response = await client.post(
            path,
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": marker}]},
            headers={"Helicone-Auth": value, "Authorization": "Bearer sk-provider-secret"},
        )
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "invalid_api_key" and error["type"] == "invalid_api_key"
    assert not [r for r in mock_provider.requests if marker.encode() in r.body]  # the upstream was never called


@pytest.mark.parametrize("value", UNUSABLE)
async def test_an_unusable_helicone_auth_is_a_401_before_the_realtime_upgrade(gateway: Gateway, value: str) -> None:
    ws = gateway.url.replace("http://", "ws://")
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{ws}/v1/gateway/oai/realtime?model=x", additional_headers={"Helicone-Auth": value}):
            pass
    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body)["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize("header", ["Authorization", "Helicone-Auth"])
@pytest.mark.parametrize("value", UNUSABLE)
async def test_an_unusable_key_is_a_401_on_the_query_api(gateway: Gateway, header: str, value: str) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        response = await client.post("/v1/request/query", json={"filter": "all"}, headers={header: value})
    # The query API keeps Helicone's own `{"data": null, "error": "<message>"}` shape.
    assert response.status_code == 401
    assert response.json()["data"] is None and "heliport key" in response.json()["error"]


class CountingDynamoStore(DynamoKeyStore):
    """The DynamoDB store on moto's server, counting how often the authenticator reaches it."""

    lookups = 0

    async def get_key(self, key_hash: str) -> ApiKey | None:
        self.lookups += 1
        return await super().get_key(key_hash)


async def test_concurrent_first_requests_with_one_key_read_the_store_once(aws_endpoint: str, dynamo_table: str) -> None:
    """Many requests in one environment at once (Lambda Managed Instances) and a cold cache: one read."""
    store = CountingDynamoStore(dynamo_table, region=REGION, endpoint_url=aws_endpoint)
    try:
        org, _ = await bootstrap_local_org(store)
        plain, key = await create_key(store, org.id, "ci")
        auth = Authenticator(store, ttl=60)
        found = await asyncio.gather(*(auth.authenticate(plain) for _ in range(32)))
        assert {k.id for k in found} == {key.id}
        assert store.lookups == 1
        unknown = await asyncio.gather(
            *(auth.authenticate("sk-heliport-unknown") for _ in range(8)), return_exceptions=True
        )
        assert all(isinstance(result, AuthenticationError) for result in unknown)
        assert store.lookups == 2
    finally:
        await store.aclose()


async def test_a_waiter_that_goes_away_does_not_cancel_the_read_for_the_others(
    aws_endpoint: str, dynamo_table: str
) -> None:
    store = CountingDynamoStore(dynamo_table, region=REGION, endpoint_url=aws_endpoint)
    try:
        org, _ = await bootstrap_local_org(store)
        plain, key = await create_key(store, org.id, "ci")
        auth = Authenticator(store, ttl=60)
        leaver = asyncio.get_running_loop().create_task(auth.authenticate(plain))
        stayer = asyncio.get_running_loop().create_task(auth.authenticate(plain))
        await asyncio.sleep(0)  # both are waiting for the one read now
        leaver.cancel()
        assert (await stayer).id == key.id
        assert leaver.cancelled()
        assert (await auth.authenticate(plain)).id == key.id
        assert store.lookups == 1
    finally:
        await store.aclose()


async def test_a_failed_read_fails_its_waiters_and_is_not_cached(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "keys.sqlite3")
    org, _ = await bootstrap_local_org(store)
    plain, _ = await create_key(store, org.id, "ci")
    auth = Authenticator(store, ttl=60)
    store._conn.close()  # the store fails every read from now on
    for _ in range(2):  # each request reads again: the failure was not cached as "no such key"
        with pytest.raises(sqlite3.ProgrammingError):
            await auth.authenticate(plain)
    assert store.lookups == 2
