"""How the query API reads and updates the log database: every statement inside one organisation.

The API never reaches the table through the consumer's ``LogDb``: it reads with its own connections
(an asyncpg pool, or a second SQLite connection on the same WAL file, which readers share with the
writer), and every call names the organisation it runs for.

Two walls keep one organisation's rows from another's:

1. Every statement the API builds has ``org_id = <param>`` in its own text (the builders in
   ``api/requests.py`` and ``api/aggregates.py`` always write it; filters can only narrow it).
2. On PostgreSQL each call runs in a transaction that drops to the ``heliport_api`` role and sets
   ``heliport.org_id``; row-level security (``migrations/postgres/0004_row_level_security.sql``)
   then hides every other organisation's row from that role, even from a statement that forgot the
   first wall. The role may select, and update only the columns feedback, scores and properties
   live in. SQLite has no roles: there the first wall is the only one.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from heliport.api.dialect import POSTGRES, SQLITE, Dialect
from heliport.config import Settings
from heliport.logs.row import RequestRow
from heliport.store import logdb_postgres, logdb_sqlite
from heliport.store.aurora import DatabaseCredentials, FixedDsn
from heliport.store.logdb import COLUMNS

if TYPE_CHECKING:
    import asyncpg

__all__ = ["API_ROLE", "ROW_COLUMNS", "PostgresQueries", "QueryDb", "SqliteQueries"]

#: The role the API's statements run as on PostgreSQL (made by migration 0004).
API_ROLE = "heliport_api"
#: Select these, in this order, to get rows back as :class:`RequestRow` from :meth:`QueryDb.rows`.
ROW_COLUMNS = ", ".join(COLUMNS)


class QueryDb(Protocol):
    dialect: Dialect

    async def fetch(self, org_id: str, sql: str, values: Sequence[object]) -> list[dict[str, Any]]:
        """Run a read for ``org_id``; rows as dicts keyed by column name."""
        ...

    async def rows(self, org_id: str, sql: str, values: Sequence[object]) -> list[RequestRow]:
        """Run a read selecting :data:`ROW_COLUMNS`; the rows as :class:`RequestRow`."""
        ...

    async def execute(self, org_id: str, sql: str, values: Sequence[object]) -> int:
        """Run a write for ``org_id``; how many rows it changed."""
        ...

    async def read_only(
        self, org_id: str, sql: str, values: Sequence[object], *, time_limit: float, max_rows: int
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run a caller-written read (HQL) for ``org_id`` in a read-only transaction, stopped after
        ``time_limit`` seconds; the column names and at most ``max_rows`` rows. Times read in UTC."""
        ...

    async def aclose(self) -> None: ...


class PostgresQueries:
    """Reads and updates under row-level security, through a pool opened on first use.

    Connections are made as the log writer's are (``logdb_postgres.open_pool``): a refused login
    re-reads rotated credentials once, and a connection not open within ``connect_timeout`` raises
    :class:`~heliport.store.logdb_postgres.DatabaseUnavailableError` (503 with ``Retry-After``), so a
    call that wakes a paused Aurora answers before API Gateway's 29 s rather than with its opaque 504.
    """

    dialect = POSTGRES

    def __init__(
        self,
        credentials: str | DatabaseCredentials,
        *,
        max_size: int = 5,
        connect_timeout: float = Settings.database_connect_timeout,
    ) -> None:
        self.credentials = FixedDsn(credentials) if isinstance(credentials, str) else credentials
        self._max_size = max_size
        self._connect_timeout = connect_timeout
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def _connections(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    self._pool = await logdb_postgres.open_pool(
                        self.credentials, min_size=1, max_size=self._max_size, connect_timeout=self._connect_timeout
                    )
        return self._pool

    async def _run(self, org_id: str, method: str, sql: str, values: Sequence[object]) -> Any:
        pool = await self._connections()
        async with pool.acquire() as conn, conn.transaction():
            # SET LOCAL ends with the transaction, so a pooled connection never keeps the role.
            await conn.execute(f"SET LOCAL ROLE {API_ROLE}")
            await conn.execute("SELECT set_config('heliport.org_id', $1, true)", org_id)
            return await getattr(conn, method)(sql, *values)

    async def fetch(self, org_id: str, sql: str, values: Sequence[object]) -> list[dict[str, Any]]:
        return [dict(record) for record in await self._run(org_id, "fetch", sql, values)]

    async def rows(self, org_id: str, sql: str, values: Sequence[object]) -> list[RequestRow]:
        return [logdb_postgres.row_from_db(record) for record in await self._run(org_id, "fetch", sql, values)]

    async def execute(self, org_id: str, sql: str, values: Sequence[object]) -> int:
        status: str = await self._run(org_id, "execute", sql, values)
        return int(status.rsplit(" ", 1)[1])  # "UPDATE <n>"

    async def read_only(
        self, org_id: str, sql: str, values: Sequence[object], *, time_limit: float, max_rows: int
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        pool = await self._connections()
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            await conn.execute(f"SET LOCAL ROLE {API_ROLE}")
            await conn.execute("SELECT set_config('heliport.org_id', $1, true)", org_id)
            # The limit and the time zone end with the transaction (is_local), like the role.
            await conn.execute("SELECT set_config('statement_timeout', $1, true)", f"{int(time_limit * 1000)}ms")
            await conn.execute("SELECT set_config('TimeZone', 'UTC', true)")
            statement = await conn.prepare(sql)
            names = [attribute.name for attribute in statement.get_attributes()]
            cursor = await statement.cursor(*values)
            return names, [tuple(record) for record in await cursor.fetch(max_rows)]

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


class SqliteQueries:
    """Reads and updates on the ``heliport serve`` database file."""

    dialect = SQLITE

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._migrated = False
        self._hql_ready = False

    async def _ready(self) -> sqlite3.Connection:
        # The API may answer before serve's consumer has written (and so created) the table.
        if not self._migrated:
            writer = logdb_sqlite.SqliteLogDb(self._path)
            try:
                await writer.migrate()
            finally:
                await writer.aclose()
            self._migrated = True
        return self._conn

    async def fetch(self, org_id: str, sql: str, values: Sequence[object]) -> list[dict[str, Any]]:
        cursor = (await self._ready()).execute(sql, list(values))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    async def rows(self, org_id: str, sql: str, values: Sequence[object]) -> list[RequestRow]:
        conn = await self._ready()
        return [logdb_sqlite.row_from_db(row) for row in conn.execute(sql, list(values)).fetchall()]

    async def execute(self, org_id: str, sql: str, values: Sequence[object]) -> int:
        return (await self._ready()).execute(sql, list(values)).rowcount

    async def read_only(
        self, org_id: str, sql: str, values: Sequence[object], *, time_limit: float, max_rows: int
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        conn = await self._ready()
        if not self._hql_ready:
            from heliport.hql.sqlite_functions import install  # the helpers HQL's SQLite form calls

            install(conn)
            self._hql_ready = True
        deadline = time.monotonic() + time_limit
        # A progress handler that answers non-zero interrupts the statement (sqlite3.OperationalError).
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        conn.execute("BEGIN")
        conn.execute("PRAGMA query_only = ON")
        try:
            cursor = conn.execute(sql, list(values))
            names = [d[0] for d in cursor.description]
            return names, [tuple(row) for row in cursor.fetchmany(max_rows)]
        finally:
            conn.set_progress_handler(None, 0)  # first, so a passed deadline cannot stop the cleanup
            conn.execute("PRAGMA query_only = OFF")
            conn.execute("ROLLBACK")

    async def aclose(self) -> None:
        self._conn.close()
