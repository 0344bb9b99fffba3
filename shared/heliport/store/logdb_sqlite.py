"""The SQLite log database for ``heliport serve``: one ``requests`` table in ``<data_dir>``.

Calls are synchronous inside ``async`` methods, as in the other SQLite adapters (``store.sqlite``): a
batch of 100 rows commits in about a millisecond under WAL with synchronous=NORMAL, less than a hop
to a thread and back would cost the event loop. The schema and its storage conventions (UTC ISO
text, exact decimal text, JSON text) are in ``migrations/sqlite/``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from heliport.background import paced
from heliport.logs.row import RequestRow
from heliport.store.logdb import COLUMNS, DeadLetter, RowRejectedError, as_utc, load_migrations, month_start

__all__ = ["SqliteLogDb", "stored_timestamp"]

_COLUMN_LIST = ", ".join(COLUMNS)
_INSERT = f"INSERT OR IGNORE INTO requests ({_COLUMN_LIST}) VALUES ({', '.join('?' * len(COLUMNS))})"
_SELECT_ONE = f"SELECT {_COLUMN_LIST} FROM requests WHERE request_id = ? AND org_id = ?"
#: Columns an upserted part leaves alone: the identity, and what the API writes (feedback, scores).
#: Properties are merged, so one added through the API survives the session's later parts.
KEPT_ON_UPSERT = frozenset(
    {"request_id", "created_at", "org_id", "key_id", "scores", "feedback_rating", "feedback_created_at"}
)
_UPSERT_PART = (
    "INSERT INTO request_parts (org_id, request_id, created_at, part) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (org_id, request_id) DO UPDATE SET part = excluded.part WHERE request_parts.part <= excluded.part "
    "RETURNING request_id"
)
_UPSERT = (
    f"INSERT INTO requests ({_COLUMN_LIST}) VALUES ({', '.join('?' * len(COLUMNS))}) "
    "ON CONFLICT (org_id, request_id) DO UPDATE SET "
    + ", ".join(
        "properties = json_patch(requests.properties, excluded.properties)"
        if c == "properties"
        else "checks = heliport_merge_checks(requests.checks, excluded.checks)"
        if c == "checks"
        else f"{c} = excluded.{c}"
        for c in COLUMNS
        if c not in KEPT_ON_UPSERT
    )
)
_MERGE_CHECKS = "UPDATE requests SET checks = heliport_merge_checks(checks, ?) WHERE org_id = ? AND request_id = ?"
_DEAD_LETTER_COLUMNS = "id, org_id, request_id, failed_at, attempts, error, record"
#: Errors that come from a row's values (an int over 64 bits, a type SQLite cannot bind, a constraint):
#: sending the same row again cannot help, so they are the writer's to set aside (RowRejectedError).
_REJECTIONS = (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.InterfaceError, OverflowError, ValueError, TypeError)
_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version TEXT PRIMARY KEY,
    applied_at TEXT NOT NULL
)
"""

_DATETIMES = tuple(COLUMNS.index(c) for c in ("created_at", "response_created_at", "feedback_created_at"))
_BOOLS = tuple(
    COLUMNS.index(c)
    for c in ("is_stream", "cache_hit", "rate_limited", "omit_request", "omit_response", "feedback_rating")
)
_COST = COLUMNS.index("cost")
_CHECKS = COLUMNS.index("checks")
_DECODERS: dict[int, msgspec.json.Decoder[Any]] = {
    COLUMNS.index("properties"): msgspec.json.Decoder(dict[str, str]),
    COLUMNS.index("errors"): msgspec.json.Decoder(list[str]),
    COLUMNS.index("scores"): msgspec.json.Decoder(dict[str, float]),
}
_encode_json = msgspec.json.Encoder().encode
_decode_checks = msgspec.json.Decoder(dict[str, Any]).decode


def _checks_text(checks: Mapping[str, Any]) -> str | None:
    """``checks`` as stored: JSON text, or NULL when empty (almost every row), which costs no encoding.
    A value JSON cannot hold raises TypeError, which the writer's callers report as a rejected row."""
    return _encode_json(checks).decode() if checks else None


def _merge_checks(stored: str | None, given: str | None) -> str | None:
    """SQL function ``heliport_merge_checks(stored, given)``: ``given``'s checks replace the stored ones of
    the same name, the others stay; the same shallow merge as PostgreSQL's ``jsonb || jsonb``
    (json_patch would merge inside a check's outcome, keeping a stale field such as an old error)."""
    if not given:
        return stored
    if not stored:
        return given
    try:
        merged = _decode_checks(stored)
    except msgspec.DecodeError:  # not an object (never written by heliport): the new checks replace it
        return given
    merged.update(_decode_checks(given))
    return _encode_json(merged).decode()


def stored_timestamp(value: datetime) -> str:
    """Fixed-width UTC text (always microseconds, always +00:00), so comparing text compares instants."""
    return as_utc(value).isoformat(timespec="microseconds")


def _to_db(row: RequestRow) -> list[Any]:
    """One row as the insert's column values. The only place rows become database values."""
    values: list[Any] = list(msgspec.structs.astuple(row))
    for i in _DATETIMES:
        if values[i] is not None:
            values[i] = stored_timestamp(values[i])
    for i in _DECODERS:
        values[i] = _encode_json(values[i]).decode()
    if values[_COST] is not None:
        values[_COST] = str(values[_COST])  # exact: str(Decimal) round-trips, exponent and all
    values[_CHECKS] = _checks_text(values[_CHECKS])
    return values


def _from_db(record: tuple[Any, ...]) -> RequestRow:
    """A stored row back as a RequestRow. The only place database values become rows."""
    values = list(record)
    for i in _DATETIMES:
        if values[i] is not None:
            values[i] = datetime.fromisoformat(values[i])
    for i in _BOOLS:
        if values[i] is not None:
            values[i] = bool(values[i])
    for i, decoder in _DECODERS.items():
        values[i] = decoder.decode(values[i])
    if values[_COST] is not None:
        values[_COST] = Decimal(values[_COST])
    values[_CHECKS] = _decode_checks(values[_CHECKS]) if values[_CHECKS] else {}
    return RequestRow(**dict(zip(COLUMNS, values, strict=True)))


def _statements(script: str) -> list[str]:
    """Split a migration into statements, so they can run inside our own transaction (executescript
    would commit first)."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    leftover = [ln for ln in pending.splitlines() if ln.strip() and not ln.strip().startswith("--")]
    if leftover:
        raise ValueError(f"migration ends with an incomplete statement: {leftover[0][:80]!r}")
    return statements


class SqliteLogDb:
    """Request rows in one SQLite file (WAL), for a single machine."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # WAL with synchronous=NORMAL survives a process crash; only an OS crash can lose the last commits.
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        # Per connection, not in the schema: only this writer's upserts and merges call it.
        self._conn.create_function("heliport_merge_checks", 2, _merge_checks, deterministic=True)

    async def migrate(self) -> list[str]:
        conn = self._conn
        applied: list[str] = []
        for migration in load_migrations("sqlite"):
            # BEGIN IMMEDIATE takes the write lock before reading, so two processes cannot both see a
            # migration as pending; the second waits (busy_timeout) and then skips it.
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(_MIGRATIONS_TABLE)
                done = conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (migration.name,)).fetchone()
                if not done:
                    for statement in _statements(migration.sql):
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                        (migration.name, stored_timestamp(datetime.now(UTC))),
                    )
                    applied.append(migration.name)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return applied

    async def insert_requests(self, rows: Sequence[RequestRow]) -> int:
        if not rows:
            return 0
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            # paced: in serve's pipeline process the proxy gets the core back between rows (heliport.background)
            cursor = conn.executemany(_INSERT, paced(_to_db(row) for row in rows))
        except _REJECTIONS as exc:
            conn.execute("ROLLBACK")
            raise RowRejectedError(f"{type(exc).__name__}: {exc}") from exc
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return cursor.rowcount  # summed over the batch; an ignored duplicate counts 0

    async def upsert_parts(self, parts: Sequence[tuple[RequestRow, int]]) -> list[tuple[str, str]]:
        """Rows of requests logged in parts: each written unless a higher part is stored (LogWriter)."""
        if not parts:
            return []
        conn = self._conn
        written: list[tuple[str, str]] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for row, part in parts:
                key = (row.org_id, row.request_id)
                won = conn.execute(_UPSERT_PART, (*key, stored_timestamp(row.created_at), part)).fetchone()
                if won is not None:
                    conn.execute(_UPSERT, _to_db(row))
                    written.append(key)
        except _REJECTIONS as exc:
            conn.execute("ROLLBACK")
            raise RowRejectedError(f"{type(exc).__name__}: {exc}") from exc
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return written

    async def stored_times(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], set[datetime]]:
        found: dict[tuple[str, str], set[datetime]] = {}
        for key in set(keys):
            record = self._conn.execute(
                "SELECT created_at FROM requests WHERE org_id = ? AND request_id = ?", key
            ).fetchone()
            if record is not None:
                found[key] = {datetime.fromisoformat(record[0])}
        return found

    async def merge_checks(self, org_id: str, request_id: str, checks: Mapping[str, object]) -> bool:
        # One statement, so concurrent merges into one row serialise on SQLite's write lock.
        try:
            given = _checks_text(checks)
        except (TypeError, ValueError) as exc:
            raise RowRejectedError(f"checks cannot be stored as JSON: {exc}") from exc
        cursor = self._conn.execute(_MERGE_CHECKS, (given, org_id, request_id))
        return cursor.rowcount > 0

    async def add_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT INTO log_dead_letters (org_id, request_id, failed_at, attempts, error, record) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (d.org_id, d.request_id, stored_timestamp(d.failed_at), d.attempts, d.error, d.record)
                    for d in letters
                ],
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    async def list_dead_letters(self, *, org_id: str | None = None, limit: int = 100) -> list[DeadLetter]:
        records = self._conn.execute(
            f"SELECT {_DEAD_LETTER_COLUMNS} FROM log_dead_letters "
            "WHERE ?1 IS NULL OR org_id = ?1 ORDER BY failed_at, id LIMIT ?2",
            (org_id, limit),
        ).fetchall()
        return [
            DeadLetter(
                id=r[0],
                org_id=r[1],
                request_id=r[2],
                failed_at=datetime.fromisoformat(r[3]),
                attempts=r[4],
                error=r[5],
                record=bytes(r[6]),
            )
            for r in records
        ]

    async def count_dead_letters(self, org_id: str) -> int:
        record = self._conn.execute("SELECT count(*) FROM log_dead_letters WHERE org_id = ?", (org_id,)).fetchone()
        return int(record[0])

    async def delete_dead_letters(self, ids: Sequence[int] | None) -> int:
        if ids is None:
            return self._conn.execute("DELETE FROM log_dead_letters").rowcount
        return self._conn.executemany("DELETE FROM log_dead_letters WHERE id = ?", [(i,) for i in ids]).rowcount

    async def get_request(self, org_id: str, request_id: str) -> RequestRow | None:
        record = self._conn.execute(_SELECT_ONE, (request_id, org_id)).fetchone()
        return _from_db(record) if record is not None else None

    async def ensure_partitions(self, now: datetime) -> None:
        """No partitions in SQLite: one table, and drop_before deletes rows."""
        return None

    async def drop_before(self, cutoff: datetime) -> list[str]:
        # Same rule as PostgreSQL's partition drop: whole UTC months before the cutoff's month.
        bound = stored_timestamp(month_start(cutoff))
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            months = conn.execute(
                "SELECT DISTINCT substr(created_at, 1, 7) FROM requests WHERE created_at < ?", (bound,)
            ).fetchall()
            conn.execute("DELETE FROM requests WHERE created_at < ?", (bound,))
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'request_parts'").fetchone():
                conn.execute("DELETE FROM request_parts WHERE created_at < ?", (bound,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return sorted(f"requests_{month.replace('-', '_')}" for (month,) in months)

    async def aclose(self) -> None:
        self._conn.close()


#: A stored row back as a RequestRow, for other readers of the table (the query API).
row_from_db = _from_db
