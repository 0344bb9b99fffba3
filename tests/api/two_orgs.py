"""Two organisations' rows behind a live query API, on SQLite or PostgreSQL, reached over real HTTP.

The rows are stored by the real log database adapters; each organisation has its own heliport key,
and the clients send it as Helicone's clients do. Used by the issue-23 API tests (evals, session
feedback, rows as Helicone returns them).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from heliport.auth import create_key
from heliport.config import Settings
from heliport.logs.row import RequestRow
from heliport.store.keys import Organisation, SqliteKeyStore
from heliport.store.logdb_postgres import PostgresLogDb
from heliport.store.logdb_sqlite import SqliteLogDb
from tests.api.test_http import T0
from tests.harness import serve_local
from tests.postgres import throwaway_database_sync

#: Given the two organisation ids, the rows to store.
RowMaker = Callable[[str, str], list[RequestRow]]


@dataclass
class TwoOrgs:
    a: httpx.Client
    b: httpx.Client
    org_a: str
    org_b: str
    rows: list[RequestRow]
    #: "sqlite" or "postgres".
    kind: str


def serve(kind: str, data_dir: Path, make_rows: RowMaker) -> Iterator[TwoOrgs]:
    """A live API over ``make_rows``' rows on ``kind``, until the generator is closed."""
    if kind == "sqlite":
        yield from _serve(kind, data_dir, None, make_rows)
    else:
        with throwaway_database_sync() as dsn:
            yield from _serve(kind, data_dir, dsn, make_rows)


def _serve(kind: str, data_dir: Path, dsn: str | None, make_rows: RowMaker) -> Iterator[TwoOrgs]:
    store = SqliteKeyStore(data_dir / "keys.sqlite3")

    async def setup() -> tuple[list[str], list[str], list[RequestRow]]:
        keys: list[str] = []
        orgs: list[str] = []
        for name in ("a", "b"):
            org = Organisation(id=f"org-{name}-{uuid.uuid4().hex[:6]}", name=name, created_at=T0)
            await store.put_org(org)
            plain, _ = await create_key(store, org.id, name)
            keys.append(plain)
            orgs.append(org.id)
        rows = make_rows(orgs[0], orgs[1])
        db = PostgresLogDb(dsn, max_size=1) if dsn else SqliteLogDb(data_dir / "logs.sqlite3")
        await db.migrate()
        assert await db.insert_requests(rows) == len(rows)
        await db.aclose()
        return keys, orgs, rows

    keys, orgs, rows = asyncio.run(setup())
    server = serve_local(Settings(data_dir=data_dir, database_url=dsn), store)
    a = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {keys[0]}"}, timeout=20)
    b = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {keys[1]}"}, timeout=20)
    try:
        yield TwoOrgs(a, b, orgs[0], orgs[1], rows, kind)
    finally:
        a.close()
        b.close()
        server.stop()


def ok(response: httpx.Response) -> Any:
    """``data`` of a successful answer."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["error"] is None
    return body["data"]


def failed(response: httpx.Response, status: int) -> str:
    """``error`` of a failed answer, which must have ``status``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["data"] is None and isinstance(body["error"], str)
    return str(body["error"])
