"""A request's checks from the log record to the query API: record (with facts) -> SQS batch ->
LogWriter -> stored row -> ``heliport_checks`` in the API's answer, over real HTTP.

Runs on SQLite (``heliport serve``) and PostgreSQL (a throwaway database), with the consumer's own
entry point (``handle_sqs_batch``, as the Lambda consumer runs it) and the query API served on loopback.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from heliport.auth import create_key
from heliport.config import Settings
from heliport.logs.consumer import LogWriter, handle_sqs_batch
from heliport.logs.record import LogRecord
from heliport.store.blobs import LocalBlobStore
from heliport.store.keys import Organisation, SqliteKeyStore
from heliport.store.logdb import LogDb
from heliport.store.logdb_postgres import PostgresLogDb
from heliport.store.logdb_sqlite import SqliteLogDb
from tests.harness import serve_local
from tests.logs.records import chat_record
from tests.postgres import throwaway_database_sync

#: Helicone's answer to a prompt the moderation check flagged (the model is never called).
FLAGGED_BODY = {
    "success": False,
    "error": {
        "code": "PROMPT_FLAGGED_FOR_MODERATION",
        "message": "The given prompt was flagged by the OpenAI Moderation endpoint.",
        "details": "See your Helicone request page for more info: http://localhost/dashboard/#/requests/x",
    },
}
MODERATION = {
    "flagged": True,
    "categories": ["violence"],
    "scores": {"violence": 0.97, "harassment": 0.02},
    "model": "omni-moderation-latest",
    "path": "messages[0]",
    "latency_ms": 41.2,
}
TOKEN_LIMIT = {
    "strategy": "fallback",
    "model": "gpt-4o",
    "context_length": 128_000,
    "tokens_before": 150_000,
    "tokens_after": 150_000,
    "chosen_model": "gpt-4o-mini",
}
POSTHOG_KEY = "phc_never_stored_0123456789abcdef"


@dataclass
class Logged:
    client: httpx.Client
    settings: Settings
    org_id: str
    blocked: LogRecord
    passed: LogRecord
    plain: LogRecord
    #: Only the PostHog test merges into this one (the fixture is shared by the module's tests).
    exported: LogRecord
    kind: str


def _open(settings: Settings) -> LogDb:
    if settings.database_url:
        return PostgresLogDb(settings.database_url, max_size=1)
    return SqliteLogDb(settings.data_dir / "logs.sqlite3")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def logged(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Logged]:
    data_dir: Path = tmp_path_factory.mktemp(f"checks-{request.param}")
    if request.param == "sqlite":
        yield from _logged(data_dir, None, request.param)
    else:
        with throwaway_database_sync() as dsn:
            yield from _logged(data_dir, dsn, request.param)


def _logged(data_dir: Path, dsn: str | None, kind: str) -> Iterator[Logged]:
    settings = Settings(data_dir=data_dir, database_url=dsn)
    store = SqliteKeyStore(data_dir / "keys.sqlite3")
    org = Organisation(id=f"org-checks-{uuid.uuid4().hex[:8]}", name="checks", created_at=datetime.now(UTC))
    blocked = chat_record(
        org_id=org.id,
        status=400,
        response_body=json.dumps(FLAGGED_BODY),
        facts={"moderation": MODERATION},
        posthog_key=POSTHOG_KEY,
    )
    passed = chat_record(
        org_id=org.id, facts={"moderation": {**MODERATION, "flagged": False}, "token_limit": TOKEN_LIMIT}
    )
    plain = chat_record(org_id=org.id)
    exported = chat_record(org_id=org.id, facts={"moderation": MODERATION}, posthog_key=POSTHOG_KEY)

    async def setup() -> str:
        await store.put_org(org)
        key, _ = await create_key(store, org.id, "checks")
        db = _open(settings)
        await db.migrate()
        if dsn:
            await db.ensure_partitions(datetime.now(UTC))
        # As the queue delivers them: JSON message bodies, decoded by the consumer's entry point.
        event = {
            "Records": [
                {"messageId": f"m-{i}", "body": msgspec.json.encode(record).decode(), "attributes": {}}
                for i, record in enumerate((blocked, passed, plain, exported))
            ]
        }
        result = await handle_sqs_batch(event, LogWriter(db, LocalBlobStore(data_dir / "blobs")))
        assert result == {"batchItemFailures": []}
        await db.aclose()
        return key

    key = asyncio.run(setup())
    server = serve_local(settings, store)
    client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    try:
        yield Logged(client, settings, org.id, blocked, passed, plain, exported, kind)
    finally:
        client.close()
        server.stop()


def _data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["error"] is None
    return body["data"]


def test_the_row_keeps_the_facts_as_checks(logged: Logged) -> None:
    async def rows() -> dict[str, Any]:
        db = _open(logged.settings)
        try:
            return {
                r.request_id: await db.get_request(logged.org_id, r.request_id)
                for r in (logged.blocked, logged.passed, logged.plain)
            }
        finally:
            await db.aclose()

    stored = asyncio.run(rows())
    assert stored[logged.blocked.request_id].checks == {"moderation": MODERATION}
    assert stored[logged.blocked.request_id].status == 400  # a blocked request is a row with its 400
    assert stored[logged.passed.request_id].checks == {
        "moderation": {**MODERATION, "flagged": False},
        "token_limit": TOKEN_LIMIT,
    }
    assert stored[logged.plain.request_id].checks == {}
    # The PostHog key travels on the record for the consumer's export only: the row never holds it.
    assert all(POSTHOG_KEY.encode() not in msgspec.json.encode(row) for row in stored.values())


def test_the_api_returns_each_requests_checks(logged: Logged) -> None:
    one = _data(logged.client.get(f"/v1/request/{logged.blocked.request_id}", params={"includeBody": "true"}))
    assert one["heliport_checks"] == {"moderation": MODERATION}
    assert one["response_status"] == 400
    assert one["response_body"]["error"]["code"] == "PROMPT_FLAGGED_FOR_MODERATION"

    listed = {r["request_id"]: r for r in _data(logged.client.post("/v1/request/query", json={"filter": "all"}))}
    assert listed[logged.passed.request_id]["heliport_checks"] == {
        "moderation": {**MODERATION, "flagged": False},
        "token_limit": TOKEN_LIMIT,
    }
    assert listed[logged.plain.request_id]["heliport_checks"] == {}
    by_ids = _data(logged.client.post("/v1/request/query-ids", json={"requestIds": [logged.blocked.request_id]}))
    assert [r["heliport_checks"] for r in by_ids] == [{"moderation": MODERATION}]


def test_a_posthog_outcome_merged_later_shows_up_and_the_key_never_does(logged: Logged) -> None:
    async def deliver() -> None:  # as the consumer does once the export to PostHog has run
        db = _open(logged.settings)
        try:
            assert await db.merge_checks(
                logged.org_id,
                logged.exported.request_id,
                {"posthog": {"delivered": True, "status": 200, "attempts": 1}},
            )
        finally:
            await db.aclose()

    asyncio.run(deliver())
    response = logged.client.get(f"/v1/request/{logged.exported.request_id}", params={"includeBody": "true"})
    assert _data(response)["heliport_checks"] == {
        "moderation": MODERATION,
        "posthog": {"delivered": True, "status": 200, "attempts": 1},
    }
    listed = logged.client.post("/v1/request/query", json={"filter": "all"})
    assert POSTHOG_KEY not in response.text and POSTHOG_KEY not in listed.text
