"""Local adapters for ``heliport serve``: SQLite files under the data directory, and a memory sink.

SQLite calls here are synchronous inside ``async`` methods on purpose: key lookups happen once per
cache TTL and take tens of microseconds, less than a hop to a thread would. The log queue is the
exception: its writes sit on every request, so one writer thread group-commits them.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from heliport.logs.record import LogRecord
from heliport.store.ports import ApiKey, Organisation

__all__ = ["MemoryQueue", "Queued", "SqliteKeyStore", "SqliteQueue"]

_KEYS_SCHEMA = """
CREATE TABLE IF NOT EXISTS organisations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);
-- Not UNIQUE: stores from before names were unique may hold duplicates, and a unique index would
-- fail to build on them. create_org enforces uniqueness for new organisations instead.
CREATE INDEX IF NOT EXISTS organisations_name ON organisations(name);
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX IF NOT EXISTS api_keys_org ON api_keys(org_id);
"""


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    # WAL with synchronous=NORMAL survives a process crash; only an OS crash can lose the last commits.
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def _key(row: tuple[str, str, str, str, str, str, str | None]) -> ApiKey:
    key_hash, key_id, org_id, name, prefix, created_at, revoked_at = row
    return ApiKey(
        id=key_id,
        org_id=org_id,
        name=name,
        key_hash=key_hash,
        prefix=prefix,
        created_at=datetime.fromisoformat(created_at),
        revoked_at=datetime.fromisoformat(revoked_at) if revoked_at else None,
    )


_KEY_COLUMNS = "key_hash, id, org_id, name, prefix, created_at, revoked_at"


def _org(row: tuple[str, str, str]) -> Organisation:
    return Organisation(id=row[0], name=row[1], created_at=datetime.fromisoformat(row[2]))


class SqliteKeyStore:
    """Organisations and key hashes in ``<data_dir>/keys.sqlite3``."""

    def __init__(self, path: Path) -> None:
        self._conn = _connect(path)
        self._conn.executescript(_KEYS_SCHEMA)

    async def put_org(self, org: Organisation) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO organisations (id, name, created_at) VALUES (?, ?, ?)",
            (org.id, org.name, org.created_at.isoformat()),
        )

    async def create_org(self, org: Organisation) -> None:
        # BEGIN IMMEDIATE takes the write lock before the check, so another process creating the same
        # name (or id) waits for this transaction and then sees the row: check and insert are atomic.
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            taken = self._conn.execute(
                "SELECT id FROM organisations WHERE id = ? OR name = ? LIMIT 1", (org.id, org.name)
            ).fetchone()
            if taken is not None:
                if taken[0] == org.id:
                    raise ValueError(f"an organisation with id {org.id!r} already exists")
                raise ValueError(f"an organisation named {org.name!r} already exists (id {taken[0]})")
            self._conn.execute(
                "INSERT INTO organisations (id, name, created_at) VALUES (?, ?, ?)",
                (org.id, org.name, org.created_at.isoformat()),
            )
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    async def get_org(self, org_id: str) -> Organisation | None:
        row = self._conn.execute("SELECT id, name, created_at FROM organisations WHERE id = ?", (org_id,)).fetchone()
        return _org(row) if row else None

    async def find_orgs(self, name: str) -> list[Organisation]:
        rows = self._conn.execute(
            "SELECT id, name, created_at FROM organisations WHERE name = ? ORDER BY created_at", (name,)
        ).fetchall()
        return [_org(r) for r in rows]

    async def list_orgs(self) -> list[Organisation]:
        rows = self._conn.execute("SELECT id, name, created_at FROM organisations ORDER BY created_at").fetchall()
        return [_org(r) for r in rows]

    async def put_key(self, key: ApiKey) -> None:
        self._conn.execute(
            f"INSERT INTO api_keys ({_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                key.key_hash,
                key.id,
                key.org_id,
                key.name,
                key.prefix,
                key.created_at.isoformat(),
                key.revoked_at.isoformat() if key.revoked_at else None,
            ),
        )

    async def get_key(self, key_hash: str) -> ApiKey | None:
        row = self._conn.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_hash = ?", (key_hash,)).fetchone()
        return _key(row) if row else None

    async def list_keys(self, org_id: str) -> list[ApiKey]:
        rows = self._conn.execute(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE org_id = ? ORDER BY created_at", (org_id,)
        ).fetchall()
        return [_key(r) for r in rows]

    async def revoke_key(self, org_id: str, key_id: str) -> bool:
        cur = self._conn.execute(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE org_id = ? AND id = ?",
            (datetime.now(UTC).isoformat(), org_id, key_id),
        )
        return cur.rowcount == 1

    async def aclose(self) -> None:
        self._conn.close()


class MemoryQueue:
    """A queue that keeps records in a list: the test sink, and nothing more."""

    def __init__(self) -> None:
        self.records: list[LogRecord] = []

    async def send(self, record: LogRecord) -> None:
        self.records.append(record)

    async def aclose(self) -> None:
        return None


_QUEUE_SCHEMA = """
CREATE TABLE IF NOT EXISTS log_queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    body BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
"""


class Queued(msgspec.Struct, frozen=True, kw_only=True):
    """One record as the local queue holds it: decoded when it can be, with the bytes either way."""

    seq: int
    request_id: str
    #: Times the consumer has already tried and failed to store it.
    attempts: int
    body: bytes
    #: None when ``body`` cannot be decoded; ``error`` then says why.
    record: LogRecord | None
    error: str | None = None


class SqliteQueue:
    """A durable in-process queue: ``send`` returns once the record is committed to SQLite.

    One writer thread drains whatever has accumulated and commits it in one transaction (group
    commit), so concurrent requests share a commit instead of queueing behind one each. A crash
    loses nothing ``send`` has returned for.
    """

    def __init__(self, path: Path) -> None:
        self._conn = _connect(path)
        self._conn.executescript(_QUEUE_SCHEMA)
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(log_queue)")}
        if "attempts" not in columns:  # a queue file from before attempts were counted
            self._conn.execute("ALTER TABLE log_queue ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")
        # The consumer reads through its own connection; the writer thread owns ``_conn``.
        self._reader = _connect(path)
        self._pending: deque[tuple[bytes, str, asyncio.Future[None]]] = deque()
        self._wake = threading.Condition()
        self._closed = False
        self._encoder = msgspec.json.Encoder()
        self._thread = threading.Thread(target=self._run, name="heliport-log-queue", daemon=True)
        self._thread.start()

    async def send(self, record: LogRecord) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._wake:
            if self._closed:
                raise RuntimeError("queue is closed")
            self._pending.append((self._encoder.encode(record), record.request_id, future))
            self._wake.notify()
        await future

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if not self._pending:
                    return
                batch = list(self._pending)
                self._pending.clear()
            error: BaseException | None = None
            try:
                with self._conn:
                    self._conn.execute("BEGIN")
                    self._conn.executemany(
                        "INSERT INTO log_queue (request_id, body) VALUES (?, ?)",
                        [(request_id, body) for body, request_id, _ in batch],
                    )
            except sqlite3.Error as exc:
                error = exc
            for _, _, future in batch:
                future.get_loop().call_soon_threadsafe(_settle, future, error)

    def receive(self, limit: int = 100) -> list[Queued]:
        """The oldest records still queued. One that cannot be decoded comes back with its error
        instead of failing the others (the consumer keeps it as a dead letter)."""
        rows = self._reader.execute(
            "SELECT seq, request_id, attempts, body FROM log_queue ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        received: list[Queued] = []
        for seq, request_id, attempts, body in rows:
            body = bytes(body)
            try:
                record, error = _queued_decoder.decode(body), None
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                record, error = None, str(exc)
            received.append(
                Queued(seq=seq, request_id=request_id, attempts=attempts, body=body, record=record, error=error)
            )
        return received

    def delete(self, seqs: list[int]) -> None:
        self._reader.executemany("DELETE FROM log_queue WHERE seq = ?", [(s,) for s in seqs])

    def retry_later(self, seqs: list[int]) -> None:
        """Count a failed attempt at each of these records; they stay at the head of the queue."""
        self._reader.executemany("UPDATE log_queue SET attempts = attempts + 1 WHERE seq = ?", [(s,) for s in seqs])

    async def aclose(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        await asyncio.to_thread(self._thread.join)
        self._conn.close()
        self._reader.close()


_queued_decoder = msgspec.json.Decoder(LogRecord)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
