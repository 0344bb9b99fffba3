"""PostgreSQL for tests: a throwaway database per test on the machine's server.

The server comes from ``HELIPORT_TEST_PG_DSN`` (CI sets it, so an unreachable server fails the run);
without it the local trust-auth server is tried, and the PostgreSQL cases skip only if none answers.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from urllib.parse import urlsplit, urlunsplit

import pytest

DEFAULT_PG_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _database_dsn(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


@asynccontextmanager
async def throwaway_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards; yields its DSN."""
    asyncpg = pytest.importorskip("asyncpg")
    admin_dsn = os.environ.get("HELIPORT_TEST_PG_DSN")
    try:
        admin = await asyncpg.connect(admin_dsn or DEFAULT_PG_DSN, timeout=5)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        if admin_dsn:
            raise
        pytest.skip(f"no PostgreSQL at {DEFAULT_PG_DSN} ({exc}); set HELIPORT_TEST_PG_DSN")
    name = f"heliport_test_{uuid.uuid4().hex[:12]}"
    try:
        # Database names cannot be bound parameters; this one is ours, made of hex digits.
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield _database_dsn(admin_dsn or DEFAULT_PG_DSN, name)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@contextmanager
def throwaway_database_sync() -> Iterator[str]:
    """``throwaway_database`` for synchronous fixtures: one event loop owns the admin connection from
    the database's creation to its drop (a loop per step would close the connection in between)."""
    loop = asyncio.new_event_loop()
    database = throwaway_database()
    try:
        yield loop.run_until_complete(database.__aenter__())
    finally:
        loop.run_until_complete(database.__aexit__(None, None, None))
        loop.close()
