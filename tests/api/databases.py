"""Real databases holding a test's rows, for the query API's SQL tests: SQLite and PostgreSQL alike.

``Db.fetch`` runs a statement with its bound values and gives dicts, as the API's own reader does;
the rows are stored first by the real log database adapters, so the tests read what the consumer
writes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heliport.api.dialect import POSTGRES, SQLITE, Dialect
from heliport.logs.row import RequestRow
from heliport.store.logdb_postgres import PostgresLogDb
from heliport.store.logdb_sqlite import SqliteLogDb
from tests.postgres import throwaway_database


@dataclass
class Db:
    dialect: Dialect
    sqlite: sqlite3.Connection | None = None
    pg: Any = None  # asyncpg.Connection

    async def fetch(self, sql: str, values: list[object]) -> list[dict[str, Any]]:
        if self.sqlite is not None:
            cursor = self.sqlite.execute(sql, values)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        return [dict(record) for record in await self.pg.fetch(sql, *values)]

    async def count(self) -> int:
        rows = await self.fetch("SELECT count(*) AS n FROM requests", [])
        return int(rows[0]["n"])


@asynccontextmanager
async def sqlite_with(path: Path, rows: Sequence[RequestRow]) -> AsyncIterator[Db]:
    store = SqliteLogDb(path)
    await store.migrate()
    assert await store.insert_requests(rows) == len(rows)
    await store.aclose()
    conn = sqlite3.connect(path)
    try:
        yield Db(SQLITE, sqlite=conn)
    finally:
        conn.close()


@asynccontextmanager
async def postgres_with(rows: Sequence[RequestRow]) -> AsyncIterator[Db]:
    import asyncpg

    async with throwaway_database() as dsn:
        store = PostgresLogDb(dsn, max_size=1)
        await store.migrate()
        assert await store.insert_requests(rows) == len(rows)
        await store.aclose()
        conn = await asyncpg.connect(dsn)
        try:
            yield Db(POSTGRES, pg=conn)
        finally:
            await conn.close()
