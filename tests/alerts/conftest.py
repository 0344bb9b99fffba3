"""Fixtures of the alert tests: the log database on both dialects, with rows stored by the real log
writer, and a Slack stand-in (a local HTTP receiver, the only thing outside heliport)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from heliport.api.database import PostgresQueries, QueryDb, SqliteQueries
from heliport.logs.row import RequestRow
from heliport.store.logdb import LogDb
from heliport.store.logdb_postgres import PostgresLogDb
from heliport.store.logdb_sqlite import SqliteLogDb
from tests.postgres import throwaway_database
from tests.webhooks.receiver import Receiver


@dataclass
class Database:
    """The query API's reader (what the evaluator uses) and the log writer that seeds its rows."""

    queries: QueryDb
    writer: LogDb

    async def seed(self, rows: Sequence[RequestRow]) -> None:
        assert await self.writer.insert_requests(rows) == len(rows)


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        writer = SqliteLogDb(tmp_path / "logs.sqlite3")
        await writer.migrate()
        queries = SqliteQueries(tmp_path / "logs.sqlite3")
        try:
            yield Database(queries, writer)
        finally:
            await queries.aclose()
            await writer.aclose()
        return
    async with throwaway_database() as dsn:
        pg_writer = PostgresLogDb(dsn, max_size=2)
        await pg_writer.migrate()
        pg_queries = PostgresQueries(dsn)
        try:
            yield Database(pg_queries, pg_writer)
        finally:
            await pg_queries.aclose()
            await pg_writer.aclose()


@pytest.fixture
def slack() -> Iterator[Receiver]:
    """A Slack incoming-webhook stand-in on 127.0.0.1 (a trusted origin in the tests' settings)."""
    with Receiver() as standin:
        yield standin
