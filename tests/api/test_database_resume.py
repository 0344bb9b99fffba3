"""The query API over real HTTP while its database cannot take a connection yet.

Aurora Serverless v2 paused at 0 ACU takes 15-30 s to resume on the first connection, and API
Gateway gives up at 29 s: the API waits ``database_connect_timeout`` and answers 503 with
Retry-After in its usual ``{data: null, error}`` shape, never a 500 or a hang. The database is the
stand-in of ``tests/api/paused.py`` in front of the real PostgreSQL, so the same server answers 200
once it has "resumed".
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from heliport.auth import create_key
from heliport.config import Settings
from heliport.store.keys import Organisation, SqliteKeyStore
from heliport.store.logdb_postgres import PostgresLogDb
from tests.api.paused import Mode, PausedDatabase
from tests.faults import closed_port
from tests.harness import serve_local
from tests.logs.records import chat_row

QUERY = "/v1/request/query"


@contextmanager
def _serving(tmp_path: Path, pg_dsn: str, database_url: str) -> Iterator[tuple[httpx.Client, str]]:
    """A key of a new organisation with one stored row, and a client of heliport reading ``database_url``."""
    store = SqliteKeyStore(tmp_path / "keys.sqlite3")

    async def setup() -> tuple[str, str]:
        org = Organisation(id=f"org-{uuid.uuid4().hex[:8]}", name="resume", created_at=datetime.now(UTC))
        await store.put_org(org)
        key, _ = await create_key(store, org.id, "resume")
        db = PostgresLogDb(pg_dsn, max_size=1)
        await db.migrate()
        row = chat_row(org.id)
        await db.insert_requests([row])
        await db.aclose()
        return key, row.request_id

    key, request_id = asyncio.run(setup())
    settings = Settings(data_dir=tmp_path, database_url=database_url, database_connect_timeout=1.0)
    server = serve_local(settings, store)
    client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    try:
        yield client, request_id
    finally:
        client.close()
        server.stop()


def _assert_unavailable(response: httpx.Response) -> str:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "15"
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["data"] is None
    assert "the database is starting (resuming from pause) or unreachable; retry in 15 s" in body["error"]
    return str(body["error"])


@pytest.mark.parametrize("mode", ["paused", "starting"])
def test_a_database_still_resuming_is_a_503_with_retry_after_then_answers(
    mode: Mode, tmp_path: Path, pg_dsn_sync: str
) -> None:
    with (
        PausedDatabase(pg_dsn_sync, mode) as database,
        _serving(tmp_path, pg_dsn_sync, database.dsn) as (client, request_id),
    ):
        started = time.monotonic()
        error = _assert_unavailable(client.post(QUERY, json={"filter": "all"}))
        assert time.monotonic() - started < 10  # the 1 s bound, not asyncpg's 60 s or a Lambda timeout
        detail = "no connection within 1 s" if mode == "paused" else "the server is starting up"
        assert detail in error
        assert database.accepted == 1

        database.resume()  # Aurora is up: the next call connects and answers
        answer = client.post(QUERY, json={"filter": "all"})
        assert answer.status_code == 200, answer.text
        assert [r["request_id"] for r in answer.json()["data"]] == [request_id]


def test_a_refused_connection_is_a_503_not_a_500(tmp_path: Path, pg_dsn_sync: str) -> None:
    unreachable = f"postgresql://postgres@127.0.0.1:{closed_port()}/heliport"
    with _serving(tmp_path, pg_dsn_sync, unreachable) as (client, _):
        error = _assert_unavailable(client.post(QUERY, json={"filter": "all"}))
        assert "connection failed: ConnectionRefusedError" in error
        assert "127.0.0.1" not in error  # addresses stay in the server's log
