"""The PostgreSQL log database: ``requests`` partitioned by UTC month, written with asyncpg.

asyncpg is imported when the pool is first needed, not at module load, so the proxy (which never
writes rows) can import the store package without paying for it. The schema, its partition
functions and the reasons behind them are in ``migrations/postgres/``.

A batch is one statement: ``INSERT ... SELECT * FROM unnest($1::uuid[], $2::text[], ...) ON CONFLICT
DO NOTHING``, one array per column. It was measured against ``executemany`` (pipelined, but cannot
say how many rows were new), one multi-row ``VALUES`` statement (a different prepared statement per
batch size, 4,000+ parameters at 100 rows) and ``COPY`` into a temporary table plus ``INSERT ...
SELECT`` (a temporary table and four round trips). At 10 rows unnest and VALUES led (COPY was half as
fast); at 100 rows unnest and COPY were level and VALUES fell to half. unnest is the one statement
that is fast at both sizes, and its command tag gives the number of new rows for free.

Connections come from :func:`open_pool`, shared with the query API's reader: each new connection
asks a :class:`~heliport.store.aurora.DatabaseCredentials` for its DSN, so a password RDS rotated is
picked up by re-reading the secret once when the login is refused; and a connection that cannot be
opened in time (Aurora Serverless resuming from 0 ACU, a server still starting) is reported as
:class:`DatabaseUnavailableError`, which the query API answers with 503 and ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from heliport.errors import HeliportError
from heliport.logs.row import RequestRow
from heliport.store.aurora import DatabaseCredentials, FixedDsn
from heliport.store.logdb import (
    COLUMNS,
    DeadLetter,
    RowRejectedError,
    add_months,
    as_utc,
    load_migrations,
    month_start,
)

if TYPE_CHECKING:
    import asyncpg

__all__ = ["RETRY_AFTER_SECONDS", "WRITER_CONNECT_TIMEOUT", "DatabaseUnavailableError", "PostgresLogDb", "open_pool"]

logger = logging.getLogger("heliport.store")

#: What a caller told "the database is starting" should wait before trying again: Aurora Serverless v2
#: takes 15-30 s to resume from 0 ACU, and the attempt that timed out has already started the resume.
RETRY_AFTER_SECONDS = 15
#: How long the log writer waits for a new connection: long enough for Aurora to resume from 0 ACU,
#: short of the consumer function's 60 s timeout (the query API waits less; see Settings).
WRITER_CONNECT_TIMEOUT = 30.0


class DatabaseUnavailableError(HeliportError):
    """No connection could be opened in time, or the server refused it while starting up.

    Transient by nature (a paused Aurora resuming, a failover, a restart): the query API answers 503
    with ``Retry-After``, and the consumer gives its batch back to SQS.
    """

    status = 503
    code = "database_unavailable"

    def __init__(self, detail: str, *, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(
            f"The log database is not accepting connections ({detail}): the database is starting "
            f"(resuming from pause) or unreachable; retry in {retry_after} s."
        )
        self.retry_after = retry_after


#: The PostgreSQL type of each column; the insert casts each array parameter to ``<type>[]``.
PG_TYPES: dict[str, str] = {
    "request_id": "uuid",
    "org_id": "text",
    "key_id": "text",
    "created_at": "timestamptz",
    "response_created_at": "timestamptz",
    "status": "int4",
    "provider": "text",
    "target_url": "text",
    "path": "text",
    "method": "text",
    "is_stream": "bool",
    "model": "text",
    "request_model": "text",
    "response_model": "text",
    "model_override": "text",
    "user_id": "text",
    "properties": "jsonb",
    "session_id": "text",
    "session_path": "text",
    "session_name": "text",
    "prompt_id": "text",
    "delay_ms": "float8",
    "time_to_first_token": "float8",
    "prompt_tokens": "int4",
    "completion_tokens": "int4",
    "total_tokens": "int4",
    "prompt_cache_read_tokens": "int4",
    "prompt_cache_write_tokens": "int4",
    "prompt_cache_write_5m_tokens": "int4",
    "prompt_cache_write_1h_tokens": "int4",
    "reasoning_tokens": "int4",
    "prompt_audio_tokens": "int4",
    "completion_audio_tokens": "int4",
    "usage_source": "text",
    "cost": "numeric",
    "cost_source": "text",
    "cache_hit": "bool",
    "cache_reference_id": "text",
    "rate_limited": "bool",
    "retry_count": "int4",
    "fallback_index": "int4",
    "gateway_provider": "text",
    "gateway_model": "text",
    "errors": "jsonb",
    "omit_request": "bool",
    "omit_response": "bool",
    "body_key": "text",
    "request_preview": "text",
    "response_preview": "text",
    "scores": "jsonb",
    "feedback_rating": "bool",
    "feedback_created_at": "timestamptz",
    "cache_latency_saved_ms": "float8",
    "gateway_attempts": "int4",
    "checks": "jsonb",
    "body_inline": "bytea",
}

_COLUMN_LIST = ", ".join(COLUMNS)
_INSERT = (
    f"INSERT INTO requests ({_COLUMN_LIST}) "
    f"SELECT * FROM unnest({', '.join(f'${i}::{PG_TYPES[c]}[]' for i, c in enumerate(COLUMNS, 1))}) "
    "ON CONFLICT DO NOTHING"
)
_SELECT_ONE = f"SELECT {_COLUMN_LIST} FROM requests WHERE org_id = $1 AND request_id = $2 ORDER BY created_at LIMIT 1"
#: Columns an upserted part leaves alone: the identity, and what the API writes (feedback, scores).
#: Properties are merged, so one added through the API survives the session's later parts.
KEPT_ON_UPSERT = frozenset(
    {"request_id", "created_at", "org_id", "key_id", "scores", "feedback_rating", "feedback_created_at"}
)
#: Requests logged in parts (realtime sessions): claim the part first (the row lock serialises writers of
#: one session), then upsert the rows of the parts that won. See migrations/postgres/0005_realtime.sql.
_UPSERT_PARTS = (
    "INSERT INTO request_parts (org_id, request_id, created_at, part) "
    "SELECT * FROM unnest($1::text[], $2::uuid[], $3::timestamptz[], $4::int4[]) "
    "ON CONFLICT (org_id, request_id) DO UPDATE SET part = excluded.part WHERE request_parts.part <= excluded.part "
    "RETURNING org_id, request_id"
)
#: A later part's checks replace those of the same name and keep the others (a PostHog delivery
#: merged in after an earlier part was stored survives); a part without checks changes nothing.
_MERGED_CHECKS = (
    "checks = CASE WHEN excluded.checks IS NULL THEN requests.checks "
    "ELSE coalesce(requests.checks, '{}'::jsonb) || excluded.checks END"
)
_UPSERT = (
    f"INSERT INTO requests ({_COLUMN_LIST}) "
    f"SELECT * FROM unnest({', '.join(f'${i}::{PG_TYPES[c]}[]' for i, c in enumerate(COLUMNS, 1))}) "
    "ON CONFLICT (created_at, org_id, request_id) DO UPDATE SET "
    + ", ".join(
        "properties = requests.properties || excluded.properties"
        if c == "properties"
        else _MERGED_CHECKS
        if c == "checks"
        else f"{c} = excluded.{c}"
        for c in COLUMNS
        if c not in KEPT_ON_UPSERT
    )
)
#: merge_checks: ``||`` on two objects is a shallow merge, so a check's new outcome replaces its old one
#: whole. Found through the (org_id, request_id) index; every month's partition is probed, as in get.
_MERGE_CHECKS = (
    "UPDATE requests SET checks = coalesce(checks, '{}'::jsonb) || $3::jsonb WHERE org_id = $1 AND request_id = $2"
)

_STORED_TIMES = (
    "SELECT r.org_id, r.request_id, r.created_at FROM requests r "
    "JOIN unnest($1::text[], $2::uuid[]) AS k(org_id, request_id) "
    "ON r.org_id = k.org_id AND r.request_id = k.request_id"
)
_DEAD_LETTER_COLUMNS = "id, org_id, request_id, failed_at, attempts, error, record"

#: Serialises migrate() across processes (pg_advisory_xact_lock); any fixed 64-bit number would do.
_MIGRATION_LOCK = 0x68656C69706F7274  # "heliport"
_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""

# Positions of the columns that need converting; the rest pass through as they are.
_DATETIMES = tuple(COLUMNS.index(c) for c in ("created_at", "response_created_at", "feedback_created_at"))
_JSONB = tuple(COLUMNS.index(c) for c in ("properties", "errors", "scores"))
_CHECKS = COLUMNS.index("checks")
_TEXTS = tuple(i for i, c in enumerate(COLUMNS) if PG_TYPES[c] == "text")
_REQUEST_ID = COLUMNS.index("request_id")
_DECODERS: dict[int, msgspec.json.Decoder[Any]] = {
    COLUMNS.index("properties"): msgspec.json.Decoder(dict[str, str]),
    COLUMNS.index("errors"): msgspec.json.Decoder(list[str]),
    COLUMNS.index("scores"): msgspec.json.Decoder(dict[str, float]),
}
_encode_json = msgspec.json.Encoder().encode
_decode_checks = msgspec.json.Decoder(dict[str, Any]).decode


def _no_nul(text: str) -> str:
    """PostgreSQL text and jsonb cannot hold U+0000; previews of binary-ish bodies can. Mark it with U+FFFD
    rather than fail the whole batch (and redeliver it forever)."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _jsonb(value: dict[str, str] | dict[str, float] | list[str]) -> str:
    encoded = _encode_json(value)
    if b"\\u0000" in encoded:  # rare: clean the strings themselves, not the escaped JSON
        if isinstance(value, list):
            encoded = _encode_json([_no_nul(v) for v in value])
        else:
            encoded = _encode_json({_no_nul(k): _no_nul(v) if isinstance(v, str) else v for k, v in value.items()})
    return encoded.decode()


def _without_nul(value: Any) -> Any:
    """``value`` (decoded JSON) with U+0000 replaced in every string, keys included, at any depth."""
    if isinstance(value, str):
        return _no_nul(value)
    if isinstance(value, dict):
        return {_no_nul(str(k)): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(v) for v in value]
    return value


def _checks_jsonb(checks: Mapping[str, Any]) -> str | None:
    """``checks`` as the jsonb parameter: NULL when empty (almost every row: no JSON to encode or parse),
    else the object, with U+0000 (which jsonb cannot hold) replaced at any depth. A value JSON cannot
    hold (an arbitrary object) is the row's fault: :class:`RowRejectedError`, so the writer stores it bare."""
    if not checks:
        return None
    try:
        encoded = _encode_json(checks)
    except (TypeError, ValueError) as exc:
        raise RowRejectedError(f"checks cannot be stored as JSON: {exc}") from exc
    if b"\\u0000" in encoded:
        encoded = _encode_json(_without_nul(checks))
    return encoded.decode()


def _to_db(row: RequestRow) -> list[Any]:
    """One row as the insert's column values. The only place rows become database values."""
    values: list[Any] = list(msgspec.structs.astuple(row))
    for i in _DATETIMES:
        if values[i] is not None:
            values[i] = as_utc(values[i])
    for i in _JSONB:
        values[i] = _jsonb(values[i])
    for i in _TEXTS:
        if values[i] is not None:
            values[i] = _no_nul(values[i])
    values[_CHECKS] = _checks_jsonb(values[_CHECKS])
    return values


@contextlib.contextmanager
def _rejections() -> Iterator[None]:
    """Report the errors that come from a row's values as :class:`RowRejectedError` (SQLSTATE classes
    22 data exception, 23 integrity violation, 54 program limit such as an index entry too long, and
    asyncpg's own refusal of an argument); everything else (connections, timeouts) stays transient."""
    import asyncpg

    try:
        yield
    except (
        asyncpg.DataError,
        asyncpg.IntegrityConstraintViolationError,
        asyncpg.ProgramLimitExceededError,
        ValueError,  # asyncpg's client-side "invalid input for query argument" (an int over int4, ...)
        OverflowError,
    ) as exc:
        raise RowRejectedError(f"{type(exc).__name__}: {exc}") from exc


def _from_db(record: asyncpg.Record) -> RequestRow:
    """A stored row back as a RequestRow. The only place database values become rows."""
    values = list(record.values())
    values[_REQUEST_ID] = str(values[_REQUEST_ID])
    for i, decoder in _DECODERS.items():
        values[i] = decoder.decode(values[i])
    values[_CHECKS] = _decode_checks(values[_CHECKS]) if values[_CHECKS] is not None else {}
    return RequestRow(**dict(zip(COLUMNS, values, strict=True)))


async def open_pool(
    credentials: DatabaseCredentials,
    *,
    min_size: int,
    max_size: int,
    connect_timeout: float,
    reset: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
) -> asyncpg.Pool:
    """An asyncpg pool whose every new connection is made by :func:`_connect` (credentials, bounds)."""
    import asyncpg  # deferred: see the module docstring

    async def connect(_dsn: object, **options: Any) -> asyncpg.Connection:
        # The pool hands over its own connection options (loop, connection_class, record_class).
        return await _connect(credentials, connect_timeout, options)

    return await asyncpg.create_pool(None, min_size=min_size, max_size=max_size, connect=connect, reset=reset)


async def _connect(
    credentials: DatabaseCredentials, connect_timeout: float, options: dict[str, Any]
) -> asyncpg.Connection:
    """One connection. A refused login (28000, or 28P01 for a wrong password) re-reads the credentials
    once and tries again: RDS rotates the managed secret, and a DSN remembered since the cold start
    goes stale. A second refusal is the operator's to see, so it propagates unchanged."""
    import asyncpg

    dsn = await credentials.dsn()
    try:
        return await _attempt(dsn, connect_timeout, options)
    except asyncpg.InvalidAuthorizationSpecificationError as exc:  # InvalidPasswordError is one
        if not credentials.renewable:
            raise
        logger.warning("the database refused the login (%s); reading its credentials again (rotated?)", exc)
        fresh = await credentials.refresh(dsn)
        return await _attempt(fresh, connect_timeout, options)


async def _attempt(dsn: str, connect_timeout: float, options: dict[str, Any]) -> asyncpg.Connection:
    import asyncpg

    try:
        # asyncpg's own timeout bounds the whole opening: TCP, TLS, startup and authentication.
        return await asyncpg.connect(dsn, timeout=connect_timeout, **options)
    except TimeoutError as exc:  # before OSError: TimeoutError is one
        logger.warning("no database connection within %g s", connect_timeout)
        raise DatabaseUnavailableError(f"no connection within {connect_timeout:g} s") from exc
    except asyncpg.CannotConnectNowError as exc:  # 57P03 "the database system is starting up"
        logger.warning("the database cannot accept connections yet: %s", exc)
        raise DatabaseUnavailableError("the server is starting up") from exc
    except OSError as exc:  # refused, reset, unreachable: addresses stay in the log, not in the answer
        logger.warning("could not connect to the database: %r", exc)
        raise DatabaseUnavailableError(f"connection failed: {type(exc).__name__}") from exc


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Skip asyncpg's reset query on release (a round trip per batch, ~15% at 10 rows): these connections
    never change session state (advisory locks are transaction-scoped, no SET, LISTEN or cursors), and
    asyncpg still rolls back any open transaction itself."""
    return None


class PostgresLogDb:
    """Request rows in PostgreSQL through an asyncpg pool that is opened on first use.

    ``credentials`` is a DSN, or a :class:`~heliport.store.aurora.DatabaseCredentials` that may be
    read again when the database refuses the login (a rotated Aurora secret).
    """

    def __init__(
        self,
        credentials: str | DatabaseCredentials,
        *,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = WRITER_CONNECT_TIMEOUT,
    ) -> None:
        self.credentials = FixedDsn(credentials) if isinstance(credentials, str) else credentials
        self._min_size = min_size
        self._max_size = max_size
        self._connect_timeout = connect_timeout
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self._closed = False

    async def _connections(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._closed:
                raise RuntimeError("log database is closed")
            if self._pool is None:
                self._pool = await open_pool(
                    self.credentials,
                    min_size=self._min_size,
                    max_size=self._max_size,
                    connect_timeout=self._connect_timeout,
                    reset=_keep_session,
                )
            return self._pool

    async def migrate(self) -> list[str]:
        pool = await self._connections()
        applied: list[str] = []
        async with pool.acquire() as conn:
            # Each step takes the same transaction-scoped advisory lock, so concurrent callers queue;
            # the loser of a race then sees the version recorded and skips it.
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
                await conn.execute(_MIGRATIONS_TABLE)
            for migration in load_migrations("postgres"):
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
                    done = await conn.fetchval("SELECT 1 FROM schema_migrations WHERE version = $1", migration.name)
                    if done:
                        continue
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())", migration.name
                    )
                applied.append(migration.name)
        return applied

    async def insert_requests(self, rows: Sequence[RequestRow]) -> int:
        if not rows:
            return 0
        columns = zip(*(_to_db(row) for row in rows), strict=True)
        pool = await self._connections()
        with _rejections():
            status: str = await pool.execute(_INSERT, *(list(column) for column in columns))
        return int(status.rsplit(" ", 1)[1])  # "INSERT 0 <new rows>"

    async def upsert_parts(self, parts: Sequence[tuple[RequestRow, int]]) -> list[tuple[str, str]]:
        """Rows of requests logged in parts: each written unless a higher part is stored (LogWriter)."""
        if not parts:
            return []
        pool = await self._connections()
        with _rejections():
            async with pool.acquire() as conn, conn.transaction():
                won = await conn.fetch(
                    _UPSERT_PARTS,
                    [row.org_id for row, _ in parts],
                    [row.request_id for row, _ in parts],
                    [as_utc(row.created_at) for row, _ in parts],
                    [part for _, part in parts],
                )
                keys = {(r["org_id"], str(r["request_id"])) for r in won}
                rows = [row for row, _ in parts if (row.org_id, str(uuid.UUID(row.request_id))) in keys]
                if rows:
                    columns = zip(*(_to_db(row) for row in rows), strict=True)
                    await conn.execute(_UPSERT, *(list(column) for column in columns))
        return [(row.org_id, row.request_id) for row in rows]

    async def stored_times(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], set[datetime]]:
        wanted: dict[tuple[str, uuid.UUID], str] = {}
        for org_id, request_id in keys:
            try:
                wanted[(org_id, uuid.UUID(request_id))] = request_id
            except ValueError:
                continue  # not a uuid: it cannot be stored, so it is not there
        if not wanted:
            return {}
        pool = await self._connections()
        found: dict[tuple[str, str], set[datetime]] = {}
        records = await pool.fetch(_STORED_TIMES, [o for o, _ in wanted], [r for _, r in wanted])
        for record in records:
            given = wanted[(record["org_id"], record["request_id"])]
            found.setdefault((record["org_id"], given), set()).add(record["created_at"])
        return found

    async def merge_checks(self, org_id: str, request_id: str, checks: Mapping[str, object]) -> bool:
        try:
            key = uuid.UUID(request_id)
        except ValueError:
            return False  # cannot be stored, so it is not there
        given = _checks_jsonb(checks) or "{}"
        pool = await self._connections()
        with _rejections():
            status: str = await pool.execute(_MERGE_CHECKS, org_id, key, given)
        return int(status.rsplit(" ", 1)[1]) > 0  # "UPDATE <n>"

    async def add_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        pool = await self._connections()
        await pool.executemany(
            "INSERT INTO log_dead_letters (org_id, request_id, failed_at, attempts, error, record) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            [
                (
                    _no_nul(d.org_id) if d.org_id else d.org_id,
                    _no_nul(d.request_id) if d.request_id else d.request_id,
                    as_utc(d.failed_at),
                    d.attempts,
                    _no_nul(d.error),
                    d.record,
                )
                for d in letters
            ],
        )

    async def list_dead_letters(self, *, org_id: str | None = None, limit: int = 100) -> list[DeadLetter]:
        pool = await self._connections()
        records = await pool.fetch(
            f"SELECT {_DEAD_LETTER_COLUMNS} FROM log_dead_letters "
            "WHERE $1::text IS NULL OR org_id = $1 ORDER BY failed_at, id LIMIT $2",
            org_id,
            limit,
        )
        return [DeadLetter(**dict(r)) for r in records]

    async def count_dead_letters(self, org_id: str) -> int:
        pool = await self._connections()
        return int(await pool.fetchval("SELECT count(*) FROM log_dead_letters WHERE org_id = $1", org_id))

    async def delete_dead_letters(self, ids: Sequence[int] | None) -> int:
        pool = await self._connections()
        if ids is None:
            status: str = await pool.execute("DELETE FROM log_dead_letters")
        else:
            status = await pool.execute("DELETE FROM log_dead_letters WHERE id = ANY($1::bigint[])", list(ids))
        return int(status.rsplit(" ", 1)[1])

    async def get_request(self, org_id: str, request_id: str) -> RequestRow | None:
        try:
            key = uuid.UUID(request_id)
        except ValueError:
            return None  # cannot be stored, so it is not there
        pool = await self._connections()
        record = await pool.fetchrow(_SELECT_ONE, org_id, key)
        return _from_db(record) if record is not None else None

    async def ensure_partitions(self, now: datetime) -> None:
        this_month = month_start(now)
        pool = await self._connections()
        async with pool.acquire() as conn:
            for month in (this_month, add_months(this_month, 1)):
                await conn.fetchval("SELECT heliport_ensure_request_partition($1)", month)

    async def drop_before(self, cutoff: datetime) -> list[str]:
        pool = await self._connections()
        records = await pool.fetch("SELECT heliport_drop_request_partitions_before($1) AS name", as_utc(cutoff))
        if await pool.fetchval("SELECT to_regclass('request_parts') IS NOT NULL"):
            await pool.execute("DELETE FROM request_parts WHERE created_at < $1", month_start(cutoff))
        return sorted({r["name"] for r in records})

    async def aclose(self) -> None:
        async with self._opening:
            self._closed = True
            if self._pool is not None:
                await self._pool.close()
                self._pool = None


#: A stored row back as a RequestRow, for other readers of the table (the query API).
row_from_db = _from_db
