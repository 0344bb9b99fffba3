"""``/v1/webhooks`` through a live heliport: bad input named, organisations kept apart, documented.

The SQLite API runs behind the real server (``tests.harness.start_gateway`` with the local pipeline);
the PostgreSQL store is checked on its own against a throwaway database, where row-level security must
hide one organisation's webhooks from a statement run for another, even one that names no organisation.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from heliport.api.database import PostgresQueries
from heliport.auth import create_key
from heliport.store.keys import Organisation
from heliport.store.logdb_postgres import PostgresLogDb
from heliport.webhooks import DeadLetter, PropertyFilter, Webhook, WebhookConfig
from heliport.webhooks.store import QueryWebhookStore
from tests.harness import Gateway, start_gateway
from tests.mock_provider import MockProvider
from tests.postgres import throwaway_database
from tests.webhooks.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as standin:
        yield standin


@pytest.fixture
def served(
    tmp_path: Path, mock_provider: MockProvider, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Gateway]:
    monkeypatch.setenv("HELIPORT_TRUSTED_ORIGINS", receiver.url)
    gw = start_gateway(
        tmp_path, mock_provider.url, pipeline=True, trusted_origins=frozenset({mock_provider.url, receiver.url})
    )
    yield gw
    gw.stop()


def _client(gw: Gateway, key: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=gw.url, headers={"Authorization": f"Bearer {key or gw.key}"}, timeout=10)


def _second_org(gw: Gateway) -> str:
    async def make() -> str:
        org = Organisation(id=f"org-b-{uuid.uuid4().hex[:6]}", name="b", created_at=datetime.now(UTC))
        await gw.store.put_org(org)
        plain, _ = await create_key(gw.store, org.id, "b")
        return plain

    return asyncio.run(make())


def _error(answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["data"] is None and isinstance(body["error"], str)
    message: str = body["error"]
    return message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "destination"),
        ({"destination": 42}, "destination"),
        ({"destination": ""}, "destination"),
        ({"destination": "http://example.com/hook"}, "destination"),  # not https
        ({"destination": "https://10.0.0.8/hook"}, "destination"),  # not a public address
        ({"destination": "https://169.254.169.254/latest"}, "destination"),  # the metadata service
        ({"destination": "https://user:pw@example.com/hook"}, "destination"),
        ({"destination": "https://example.com:8443/hook"}, "destination"),
        ({"destination": "not a url"}, "destination"),
        ({"destination": "https://example.com", "config": {"sampleRate": 101}}, "config.sampleRate"),
        ({"destination": "https://example.com", "config": {"sampleRate": -1}}, "config.sampleRate"),
        ({"destination": "https://example.com", "config": {"sampleRate": "50"}}, "config.sampleRate"),
        ({"destination": "https://example.com", "config": {"propertyFilters": {"a": "b"}}}, "config.propertyFilters"),
        ({"destination": "https://h.example", "config": {"propertyFilters": [{"key": "a"}]}},
         "config.propertyFilters.0.value"),
        ({"destination": "https://example.com", "config": "x"}, "config"),
        ({"destination": "https://example.com", "includeData": "yes"}, "includeData"),
    ],
)  # fmt: skip
def test_bad_input_is_a_400_naming_the_field(served: Gateway, body: dict[str, Any], field: str) -> None:
    with _client(served) as api:
        message = _error(api.post("/v1/webhooks", json=body), 400)
        assert field in message
        assert api.get("/v1/webhooks").json()["data"] == []  # nothing was made


def test_a_public_https_destination_is_accepted_with_defaults(served: Gateway) -> None:
    with _client(served) as api:
        made = api.post("/v1/webhooks", json={"destination": "https://hooks.example.com/in?token=t"}).json()["data"]
        listed = api.get("/v1/webhooks").json()["data"]
    assert listed == [made]
    assert made["config"] == '{"sampleRate":100.0,"propertyFilters":[]}'
    assert made["includeData"] is False and len(made["hmac_key"]) == 64 and made["version"]
    assert made["created_at"].endswith("Z")


def test_another_organisation_sees_nothing_and_changes_nothing(served: Gateway, receiver: Receiver) -> None:
    with _client(served) as a:
        made = a.post("/v1/webhooks", json={"destination": f"{receiver.url}/a"}).json()["data"]
    other = _second_org(served)
    with _client(served, other) as b:
        assert b.get("/v1/webhooks").json() == {"data": [], "error": None}
        _error(b.delete(f"/v1/webhooks/{made['id']}"), 404)
        _error(b.get(f"/v1/webhooks/{made['id']}/dead-letters"), 404)
        mine = b.post("/v1/webhooks", json={"destination": f"{receiver.url}/b"}).json()["data"]
    # B's requests never reach A's webhook, and A's never reach B's.
    served.openai(other).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    receiver.wait_for("/b", 1)
    served.openai().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    receiver.wait_for("/a", 1)
    assert len(receiver.received("/a")) == 1 and len(receiver.received("/b")) == 1
    with _client(served) as a:
        assert [w["id"] for w in a.get("/v1/webhooks").json()["data"]] == [made["id"]]
        _error(a.delete(f"/v1/webhooks/{mine['id']}"), 404)


def test_keys_and_ids_are_checked(served: Gateway) -> None:
    _error(httpx.get(f"{served.url}/v1/webhooks", timeout=10), 401)
    with _client(served, "sk-heliport-not-a-key") as api:
        _error(api.get("/v1/webhooks"), 401)
    with _client(served) as api:
        _error(api.delete(f"/v1/webhooks/{uuid.uuid4()}"), 404)
        _error(api.put("/v1/webhooks", json={}), 405)
    link = f"{served.url}/v1/webhooks/{uuid.uuid4()}/bodies/{uuid.uuid4()}?org=x&expires=99999999999&signature=ab"
    _error(httpx.get(link, timeout=10), 404)


def test_every_route_is_in_the_openapi_document(served: Gateway) -> None:
    paths = httpx.get(f"{served.url}/openapi.json", timeout=10).json()["paths"]
    assert set(paths["/v1/webhooks"]) >= {"get", "post"}
    assert "delete" in paths["/v1/webhooks/{webhookId}"]
    assert "get" in paths["/v1/webhooks/{webhookId}/dead-letters"]
    assert "get" in paths["/v1/webhooks/{webhookId}/bodies/{requestId}"]
    assert "post" in paths["/v1/webhooks/{webhookId}/test"]


def test_row_level_security_confines_the_store_on_postgresql() -> None:
    async def run() -> None:
        async with throwaway_database() as dsn:
            logdb = PostgresLogDb(dsn, max_size=1)
            await logdb.migrate()
            await logdb.aclose()
            db = PostgresQueries(dsn, max_size=2)
            store = QueryWebhookStore(db)
            try:
                hook = Webhook(
                    id=str(uuid.uuid4()),
                    org_id="org-a",
                    created_at=datetime.now(UTC),
                    destination="https://hooks.example.com/a",
                    version="v",
                    config=WebhookConfig(sample_rate=50.0, property_filters=(PropertyFilter("team", "x"),)),
                    include_data=True,
                    hmac_key="k" * 64,
                    base_url="https://api.example.com",
                )
                await store.create(hook)
                now = datetime.now(UTC)
                await store.record_outcome("org-a", hook.id, delivered=True, status=200, error=None, at=now)
                await store.record_outcome("org-a", hook.id, delivered=False, status=500, error="boom", at=now)
                letter = DeadLetter(
                    id=str(uuid.uuid4()), org_id="org-a", webhook_id=hook.id, request_id=str(uuid.uuid4()),
                    failed_at=now, attempts=5, status=500, error="boom", payload=b'{"request_id":"x"}',
                )  # fmt: skip
                await store.add_dead_letter(letter)
                [got] = await store.list("org-a")
                assert got.config == hook.config and got.include_data and got.log.delivered == 1
                assert got.log.failed == 1 and got.log.last_status == 500 and got.log.last_error == "boom"
                assert list(await store.list_dead_letters("org-a", hook.id)) == [letter]
                # Another organisation: nothing visible or changeable, even by statements naming no org.
                assert await store.list("org-b") == [] and await store.get("org-b", hook.id) is None
                assert await db.fetch("org-b", "SELECT id FROM webhooks", []) == []
                assert await db.fetch("org-b", "SELECT id FROM webhook_dead_letters", []) == []
                assert await db.execute("org-b", "DELETE FROM webhooks", []) == 0
                assert await store.delete("org-b", hook.id) is False
                # The API role may not change a webhook's destination or key.
                with pytest.raises(Exception, match="permission denied"):
                    await db.execute("org-a", "UPDATE webhooks SET destination = 'https://evil.example'", [])
                assert await store.delete("org-a", hook.id) is True
                assert await store.list_dead_letters("org-a", hook.id) == []
            finally:
                await db.aclose()

    asyncio.run(run())
