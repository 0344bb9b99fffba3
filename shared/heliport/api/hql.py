"""``/v1/helicone-sql``: HQL, Helicone's SQL over its ``request_response_rmt`` table, on heliport's log.

Helicone's routes (``features__hql.md``, and its ``HeliconeSqlController``): ``POST execute``
``{sql}`` -> ``{rows, elapsedMilliseconds, size, rowCount}``; ``GET schema`` -> the table and its
columns; ``POST download`` -> a URL of the result as CSV; saved queries (``GET saved-queries``,
``POST saved-query``, ``GET|PUT|DELETE saved-query/{queryId}``, ``POST saved-queries/bulk-delete``).

A statement is compiled by ``heliport.hql.compile`` (sqlglot, imported on the first HQL call): one
SELECT over the documented table only, every reference to it a subquery of the caller's organisation;
on PostgreSQL it also runs under row-level security. It runs in a read-only transaction stopped after
:data:`TIME_LIMIT` seconds, and a result of more than :data:`MAX_ROWS` rows is refused rather than cut
(Helicone's documented limits). Whatever HQL or the database refuses is a 400 naming ``sql`` and why.

The CSV link is signed, not stored: ``GET /v1/helicone-sql/download/csv?org&expires&sql&signature``
runs the statement again for the organisation when it is fetched, until it expires
(:data:`DOWNLOAD_LIFETIME`); an HMAC over the organisation, the statement and the expiry, with the
deployment's ``HELIPORT_BODY_URL_SECRET`` (a random one per process if unset), proves it.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import hmac
import io
import json
import math
import secrets
import sqlite3
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final, Protocol
from urllib.parse import urlencode

from pydantic import BaseModel, Field
from starlette.responses import Response

from heliport.api.database import QueryDb
from heliport.api.dialect import Params, js_iso
from heliport.api.endpoint import Call
from heliport.config import Settings
from heliport.errors import RouteNotFoundError
from heliport.hql.schema import schema_answer

__all__ = [
    "DOWNLOAD_LIFETIME",
    "MAX_ROWS",
    "TIME_LIMIT",
    "ExecuteSqlBody",
    "ExecuteSqlResult",
    "HqlContext",
    "SavedQuery",
    "SavedQueryBody",
    "TableSchema",
]

#: Most rows one statement may answer (Helicone: "300,000 rows maximum per query").
MAX_ROWS: Final = 300_000
#: Seconds a statement may run (Helicone: "30 seconds per query").
TIME_LIMIT: Final = 30.0
#: Seconds a CSV link stays valid.
DOWNLOAD_LIFETIME: Final = 1800
_MAX_NAME: Final = 200
_MAX_SQL: Final = 100_000
#: Signs CSV links when the deployment sets no secret: this process's own (links then live in it).
_PROCESS_SECRET: Final = secrets.token_bytes(32)


class HqlContext(Protocol):
    @property
    def db(self) -> QueryDb: ...

    @property
    def settings(self) -> Settings: ...


class ExecuteSqlBody(BaseModel):
    sql: str = Field(min_length=1, max_length=_MAX_SQL, description="ClickHouse SQL over request_response_rmt")


class ExecuteSqlResult(BaseModel):
    rows: list[dict[str, Any]]
    elapsedMilliseconds: float
    size: int
    rowCount: int


class ColumnSchema(BaseModel):
    name: str
    type: str
    comment: str | None = None


class TableSchema(BaseModel):
    table_name: str
    columns: list[ColumnSchema]


class SavedQueryBody(BaseModel):
    name: str = Field(min_length=1, max_length=_MAX_NAME)
    sql: str = Field(min_length=1, max_length=_MAX_SQL)


class BulkDeleteBody(BaseModel):
    ids: list[str] = Field(max_length=1000)


class SavedQuery(BaseModel):
    id: str
    organization_id: str
    name: str
    sql: str
    created_at: str
    updated_at: str


# --- running statements -----------------------------------------------------------------------------------


async def _run(ctx: HqlContext, org_id: str, sql: str) -> tuple[list[str], list[tuple[Any, ...]], frozenset[str]]:
    from heliport.hql.compile import HqlError, compile_hql  # sqlglot: only HQL calls pay for it

    db = ctx.db
    compiled = compile_hql(sql, db.dialect.name)
    values: list[object] = [org_id] * (1 if db.dialect.name == "postgres" else compiled.org_params)
    try:
        names, rows = await db.read_only(org_id, compiled.sql, values, time_limit=TIME_LIMIT, max_rows=MAX_ROWS + 1)
    except sqlite3.Error as exc:
        if "interrupted" in str(exc):
            raise HqlError(f"the query ran longer than {TIME_LIMIT:.0f} seconds.") from None
        raise HqlError(f"the database refused it ({exc}).") from None
    except Exception as exc:
        if _is_postgres_error(exc):
            if type(exc).__name__ == "QueryCanceledError":
                raise HqlError(f"the query ran longer than {TIME_LIMIT:.0f} seconds.") from None
            raise HqlError(f"the database refused it ({str(exc).splitlines()[0]}).") from None
        raise
    if len(rows) > MAX_ROWS:
        raise HqlError(f"it returns more than {MAX_ROWS:,} rows; add a LIMIT or aggregate.")
    return names, rows, compiled.map_outputs


def _is_postgres_error(exc: Exception) -> bool:
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - the postgres extra not installed: no PostgreSQL errors
        return False
    return isinstance(exc, asyncpg.PostgresError)


def _value(value: Any, is_map: bool) -> Any:
    """One database value as ClickHouse's JSON output writes it."""
    if isinstance(value, datetime):
        utc = value.astimezone(UTC) if value.tzinfo is not None else value
        return f"{utc:%Y-%m-%d %H:%M:%S}.{utc.microsecond // 1000:03d}"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        # A whole number as an integer while it fits ClickHouse's Int64 (and JSON writers' digit limits);
        # beyond, a float, which is what ClickHouse itself answers for such numbers (the fuzzer sent 5,000 digits).
        if value.is_finite() and value == value.to_integral_value() and abs(value) < 2**63:
            return int(value)
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if is_map and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _records(names: list[str], rows: Sequence[tuple[Any, ...]], maps: frozenset[str]) -> list[dict[str, Any]]:
    flags = [name in maps for name in names]
    return [{name: _value(value, flag) for name, value, flag in zip(names, row, flags, strict=True)} for row in rows]


async def execute(ctx: HqlContext, call: Call) -> dict[str, Any]:
    body = call.parsed(ExecuteSqlBody)
    started = time.perf_counter()
    names, rows, maps = await _run(ctx, call.org_id, body.sql)
    records = _records(names, rows, maps)
    elapsed = (time.perf_counter() - started) * 1000
    size = len(json.dumps(records, separators=(",", ":"), default=str).encode())
    return {"rows": records, "elapsedMilliseconds": round(elapsed, 3), "size": size, "rowCount": len(records)}


async def schema(ctx: HqlContext, call: Call) -> list[dict[str, object]]:
    return schema_answer()


# --- CSV download -----------------------------------------------------------------------------------------


def _secret(ctx: HqlContext) -> bytes:
    return ctx.settings.body_url_secret or _PROCESS_SECRET


def _signature(secret: bytes, org_id: str, sql: str, expires: int) -> str:
    message = f"hql-csv\n{org_id}\n{expires}\n".encode() + sql.encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


async def download(ctx: HqlContext, call: Call) -> str:
    """The statement is run once now, so a refused one is a 400 here rather than a broken link."""
    body = call.parsed(ExecuteSqlBody)
    await _run(ctx, call.org_id, body.sql)
    expires = int(time.time()) + DOWNLOAD_LIFETIME
    encoded = base64.urlsafe_b64encode(body.sql.encode()).decode().rstrip("=")
    query = urlencode(
        {
            "org": call.org_id,
            "expires": expires,
            "sql": encoded,
            "signature": _signature(_secret(ctx), call.org_id, body.sql, expires),
        }
    )
    return f"{str(call.request.base_url).rstrip('/')}/v1/helicone-sql/download/csv?{query}"


async def download_csv(ctx: HqlContext, call: Call) -> Response:
    query = call.request.query_params
    org_id = query.get("org", "")
    invalid = RouteNotFoundError("This download URL is invalid or has expired.")
    try:
        expires = int(query.get("expires", ""))
        encoded = query.get("sql", "")
        sql = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid from None
    expected = _signature(_secret(ctx), org_id, sql, expires)
    if (
        not org_id
        or expires < time.time()
        or not hmac.compare_digest(expected.encode(), query.get("signature", "").encode("utf-8", "replace"))
    ):
        raise invalid
    names, rows, maps = await _run(ctx, org_id, sql)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(names)
    for record in _records(names, rows, maps):
        writer.writerow(
            json.dumps(v) if isinstance(v, (dict, list)) else ("" if v is None else v) for v in record.values()
        )
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="hql.csv"'},
    )


# --- saved queries ----------------------------------------------------------------------------------------

_SAVED_COLUMNS: Final = "id, org_id, name, sql, created_at, updated_at"


def _saved(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "organization_id": row["org_id"],
        "name": row["name"],
        "sql": row["sql"],
        "created_at": js_iso(row["created_at"]),
        "updated_at": js_iso(row["updated_at"]),
    }


async def _one(ctx: HqlContext, org_id: str, query_id: str) -> dict[str, Any]:
    p = Params(ctx.db.dialect)
    rows = await ctx.db.fetch(
        org_id,
        f"SELECT {_SAVED_COLUMNS} FROM hql_saved_queries WHERE org_id = {p.add(org_id)} AND id = {p.add(query_id)}",
        p.values,
    )
    if not rows:
        raise RouteNotFoundError(f"No saved query {query_id} in this organisation.")
    return rows[0]


async def list_saved(ctx: HqlContext, call: Call) -> list[dict[str, Any]]:
    p = Params(ctx.db.dialect)
    rows = await ctx.db.fetch(
        call.org_id,
        f"SELECT {_SAVED_COLUMNS} FROM hql_saved_queries WHERE org_id = {p.add(call.org_id)} ORDER BY created_at, id",
        p.values,
    )
    return [_saved(row) for row in rows]


async def create_saved(ctx: HqlContext, call: Call) -> list[dict[str, Any]]:
    """Helicone answers the created query inside an array."""
    body = call.parsed(SavedQueryBody)
    p = Params(ctx.db.dialect)
    now = ctx.db.dialect.timestamp(datetime.now(UTC))
    query_id = str(uuid.uuid4())
    await ctx.db.execute(
        call.org_id,
        f"INSERT INTO hql_saved_queries ({_SAVED_COLUMNS}) VALUES "
        f"({p.add(query_id)}, {p.add(call.org_id)}, {p.add(body.name)}, {p.add(body.sql)}, {p.add(now)}, {p.add(now)})",
        p.values,
    )
    return [_saved(await _one(ctx, call.org_id, query_id))]


async def get_saved(ctx: HqlContext, call: Call) -> dict[str, Any]:
    return _saved(await _one(ctx, call.org_id, call.path("queryId")))


async def update_saved(ctx: HqlContext, call: Call) -> dict[str, Any]:
    body = call.parsed(SavedQueryBody)
    query_id = call.path("queryId")
    p = Params(ctx.db.dialect)
    now = ctx.db.dialect.timestamp(datetime.now(UTC))
    changed = await ctx.db.execute(
        call.org_id,
        f"UPDATE hql_saved_queries SET name = {p.add(body.name)}, sql = {p.add(body.sql)}, "
        f"updated_at = {p.add(now)} WHERE org_id = {p.add(call.org_id)} AND id = {p.add(query_id)}",
        p.values,
    )
    if changed == 0:
        raise RouteNotFoundError(f"No saved query {query_id} in this organisation.")
    return _saved(await _one(ctx, call.org_id, query_id))


async def delete_saved(ctx: HqlContext, call: Call) -> None:
    query_id = call.path("queryId")
    p = Params(ctx.db.dialect)
    changed = await ctx.db.execute(
        call.org_id,
        f"DELETE FROM hql_saved_queries WHERE org_id = {p.add(call.org_id)} AND id = {p.add(query_id)}",
        p.values,
    )
    if changed == 0:
        raise RouteNotFoundError(f"No saved query {query_id} in this organisation.")


async def bulk_delete_saved(ctx: HqlContext, call: Call) -> None:
    body = call.parsed(BulkDeleteBody)
    if not body.ids:
        return
    p = Params(ctx.db.dialect)
    org = p.add(call.org_id)  # bound first: SQLite's ? are positional, in the order of the text
    marks = ", ".join(p.add(i) for i in body.ids)
    await ctx.db.execute(
        call.org_id, f"DELETE FROM hql_saved_queries WHERE org_id = {org} AND id IN ({marks})", p.values
    )
