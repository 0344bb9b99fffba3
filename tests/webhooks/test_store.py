"""One contract for every WebhookStore adapter: the SQL store (SQLite and PostgreSQL, through the query
API's per-organisation reader) and the DynamoDB store (on moto's server, through aiobotocore's real
HTTP stack), so ``heliport serve`` and the AWS deployment keep webhooks, delivery logs and dead letters
the same way."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from heliport.api.database import PostgresQueries, SqliteQueries
from heliport.config import Settings
from heliport.store.aws import create_table
from heliport.store.logdb_postgres import PostgresLogDb
from heliport.webhooks import DeadLetter, PropertyFilter, Webhook, WebhookConfig, WebhookStore
from heliport.webhooks.dynamo_store import DEAD_LETTER_DAYS, DynamoWebhookStore
from heliport.webhooks.factory import open_webhook_store
from heliport.webhooks.store import QueryWebhookStore
from tests.aws import REGION
from tests.postgres import throwaway_database

pytestmark = pytest.mark.anyio

ORG_A = "org-a"
ORG_B = "org-b"


@pytest.fixture(params=["sqlite", "postgres", "dynamo"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[WebhookStore]:
    adapter: WebhookStore
    if request.param == "sqlite":
        adapter = QueryWebhookStore(SqliteQueries(tmp_path / "logs.sqlite3"))
    elif request.param == "postgres":
        async with throwaway_database() as dsn:
            logdb = PostgresLogDb(dsn, max_size=1)
            await logdb.migrate()
            await logdb.aclose()
            adapter = QueryWebhookStore(PostgresQueries(dsn, max_size=2))
            try:
                yield adapter
            finally:
                await adapter.aclose()
        return
    else:
        endpoint: str = request.getfixturevalue("aws_endpoint")
        table = f"heliport-{uuid.uuid4().hex[:12]}"
        await create_table(table, region=REGION, endpoint_url=endpoint)
        adapter = DynamoWebhookStore(table, region=REGION, endpoint_url=endpoint)
    try:
        yield adapter
    finally:
        await adapter.aclose()


def hook(org_id: str = ORG_A, *, at: datetime | None = None, **overrides: Any) -> Webhook:
    fields: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "org_id": org_id,
        # Whole milliseconds: what every adapter keeps of an instant.
        "created_at": (at or datetime.now(UTC)).replace(microsecond=123000),
        "destination": "https://hooks.example.com/in?token=abc",
        "version": "2025-01-01",
        "config": WebhookConfig(sample_rate=42.5, property_filters=(PropertyFilter("team", "x ✓"),)),
        "include_data": True,
        "hmac_key": "k" * 64,
        "base_url": "https://api.example.com",
    }
    return Webhook(**(fields | overrides))


def letter(webhook: Webhook, at: datetime, **overrides: Any) -> DeadLetter:
    fields: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "org_id": webhook.org_id,
        "webhook_id": webhook.id,
        "request_id": str(uuid.uuid4()),
        "failed_at": at.replace(microsecond=(at.microsecond // 1000) * 1000),
        "attempts": 5,
        "status": 503,
        "error": "the receiver answered 503 (after 5 attempts)",
        "payload": b'{"request_id":"x","request_body":"h\xc3\xa9"}',
    }
    return DeadLetter(**(fields | overrides))


async def test_create_get_and_list_oldest_first(store: WebhookStore) -> None:
    now = datetime.now(UTC)
    later, first = hook(at=now), hook(at=now - timedelta(minutes=5), include_data=False, config=WebhookConfig())
    await store.create(later)
    await store.create(first)
    assert [w.id for w in await store.list(ORG_A)] == [first.id, later.id]
    got = await store.get(ORG_A, later.id)
    assert got == later  # the config, flags, key and an empty delivery log all round-trip
    assert got is not None and got.log.delivered == 0 and got.log.last_attempt_at is None
    assert await store.get(ORG_A, str(uuid.uuid4())) is None


async def test_outcomes_count_and_keep_the_latest(store: WebhookStore) -> None:
    webhook = hook()
    await store.create(webhook)
    at = datetime.now(UTC).replace(microsecond=0)
    await asyncio.gather(
        *(store.record_outcome(ORG_A, webhook.id, delivered=True, status=200, error=None, at=at) for _ in range(5))
    )
    await store.record_outcome(ORG_A, webhook.id, delivered=False, status=None, error="no answer", at=at)
    got = await store.get(ORG_A, webhook.id)
    assert got is not None
    assert (got.log.delivered, got.log.failed) == (5, 1)
    assert (got.log.last_status, got.log.last_error, got.log.last_attempt_at) == (None, "no answer", at)
    await store.record_outcome(ORG_A, webhook.id, delivered=True, status=204, error=None, at=at)
    got = await store.get(ORG_A, webhook.id)
    assert got is not None and (got.log.last_status, got.log.last_error) == (204, None)


async def test_an_outcome_for_a_deleted_webhook_is_ignored(store: WebhookStore) -> None:
    webhook = hook()
    await store.create(webhook)
    assert await store.delete(ORG_A, webhook.id)
    await store.record_outcome(ORG_A, webhook.id, delivered=True, status=200, error=None, at=datetime.now(UTC))
    assert await store.get(ORG_A, webhook.id) is None
    assert await store.list(ORG_A) == []


async def test_dead_letters_newest_first_limited_and_deleted_with_their_webhook(store: WebhookStore) -> None:
    webhook, other = hook(), hook()
    await store.create(webhook)
    await store.create(other)
    now = datetime.now(UTC)
    letters = [letter(webhook, now - timedelta(minutes=i), status=None if i == 1 else 500) for i in range(4)]
    for item in reversed(letters):
        await store.add_dead_letter(item)
    kept = letter(other, now)
    await store.add_dead_letter(kept)
    assert list(await store.list_dead_letters(ORG_A, webhook.id)) == letters
    assert list(await store.list_dead_letters(ORG_A, webhook.id, limit=2)) == letters[:2]
    assert await store.delete(ORG_A, webhook.id)
    assert list(await store.list_dead_letters(ORG_A, webhook.id)) == []
    assert list(await store.list_dead_letters(ORG_A, other.id)) == [kept]
    assert await store.delete(ORG_A, webhook.id) is False


async def test_another_organisation_sees_and_changes_nothing(store: WebhookStore) -> None:
    webhook = hook()
    await store.create(webhook)
    await store.add_dead_letter(letter(webhook, datetime.now(UTC)))
    assert await store.list(ORG_B) == []
    assert await store.get(ORG_B, webhook.id) is None
    assert list(await store.list_dead_letters(ORG_B, webhook.id)) == []
    await store.record_outcome(ORG_B, webhook.id, delivered=True, status=200, error=None, at=datetime.now(UTC))
    assert await store.delete(ORG_B, webhook.id) is False
    got = await store.get(ORG_A, webhook.id)
    assert got is not None and got.log.delivered == 0
    assert len(await store.list_dead_letters(ORG_A, webhook.id)) == 1


async def test_dynamo_dead_letters_expire_and_stay_in_their_partition(aws_endpoint: str) -> None:
    table = f"heliport-{uuid.uuid4().hex[:12]}"
    await create_table(table, region=REGION, endpoint_url=aws_endpoint)
    store = DynamoWebhookStore(table, region=REGION, endpoint_url=aws_endpoint)
    import aioboto3

    try:
        webhook = hook()
        await store.create(webhook)
        at = datetime.now(UTC)
        await store.add_dead_letter(letter(webhook, at))
        async with aioboto3.Session().client("dynamodb", region_name=REGION, endpoint_url=aws_endpoint) as client:
            items = (await client.scan(TableName=table))["Items"]
        assert {item["pk"]["S"] for item in items} == {f"webhook#{ORG_A}"}
        [dead] = [item for item in items if item["sk"]["S"].startswith("d#")]
        expected = (at + timedelta(days=DEAD_LETTER_DAYS)).timestamp()
        assert abs(int(dead["expires_at"]["N"]) - expected) <= 1
    finally:
        await store.aclose()


def test_the_factory_picks_dynamodb_when_a_table_is_named(tmp_path: Path) -> None:
    assert isinstance(open_webhook_store(Settings(data_dir=tmp_path, table_name="t")), DynamoWebhookStore)
    local = open_webhook_store(Settings(data_dir=tmp_path))
    assert isinstance(local, QueryWebhookStore) and isinstance(local.db, SqliteQueries)
    given = SqliteQueries(tmp_path / "logs.sqlite3")
    shared = open_webhook_store(Settings(data_dir=tmp_path), given)
    assert isinstance(shared, QueryWebhookStore) and shared.db is given
    asyncio.run(local.aclose())
    asyncio.run(shared.aclose())
