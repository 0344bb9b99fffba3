"""Small bodies on the row, large ones in the blob store (issue 24 §4), against real stores.

Rows go to PostgreSQL or SQLite; bodies to S3 (moto's server) or a directory. The writer decides by the
size of the bodies' gzip JSON; every reader goes through ``stored_bodies``, so it must not matter to
them where the bodies are, nor whether the row was stored before migration 0014 existed.
"""

from __future__ import annotations

import gzip
import json
import secrets
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import heliport.store.logdb_postgres as logdb_postgres
import heliport.store.logdb_sqlite as logdb_sqlite
from heliport.config import ConfigError, Settings
from heliport.logs.consumer import LogWriter, body_key
from heliport.logs.record import LogRecord
from heliport.logs.stored_bodies import INLINE_BODY_BYTES, decode_bodies, stored_bodies
from heliport.logs.usage import Usage
from heliport.store.blobs import BlobStore, LocalBlobStore
from heliport.store.logdb import COLUMNS, LogDb, load_migrations
from heliport.store.logdb_postgres import PostgresLogDb
from heliport.store.logdb_sqlite import SqliteLogDb
from tests.logs.records import ORG, chat_record, chat_row

pytestmark = pytest.mark.anyio


def large_record(**overrides: Any) -> LogRecord:
    """A chat record whose bodies cannot compress below the threshold: 12 KB of random hex."""
    text = secrets.token_hex(6 * 1024)
    response = {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}], "model": "gpt-4o-mini"}
    return chat_record(response_body=json.dumps(response), **overrides)


def stored(row_blob: bytes | None) -> dict[str, Any]:
    bodies = decode_bodies(row_blob)
    assert bodies is not None
    return bodies


async def test_small_bodies_ride_on_the_row_and_large_ones_go_to_the_blob_store(
    stores: tuple[LogDb, BlobStore],
) -> None:
    logdb, blobs = stores
    small, large = chat_record(), large_record()
    assert (await LogWriter(logdb, blobs).write([small, large])).written == 2

    row = await logdb.get_request(ORG, small.request_id)
    assert row is not None and row.body_inline is not None and len(row.body_inline) <= INLINE_BODY_BYTES
    assert row.body_key == body_key(ORG, small.request_id)  # still says the row has bodies
    assert await blobs.get(row.body_key) is None  # ...but no PUT was made for them
    assert stored(await stored_bodies(row, blobs)) == {"request": small.request_body, "response": small.response_body}

    row = await logdb.get_request(ORG, large.request_id)
    assert row is not None and row.body_inline is None and row.body_key is not None
    in_blobs = await blobs.get(row.body_key)
    assert in_blobs is not None and len(in_blobs) > INLINE_BODY_BYTES
    assert stored(await stored_bodies(row, blobs)) == {"request": large.request_body, "response": large.response_body}


async def test_threshold_zero_puts_every_body_in_the_blob_store(stores: tuple[LogDb, BlobStore]) -> None:
    logdb, blobs = stores
    small = chat_record()
    await LogWriter(logdb, blobs, inline_bytes=0).write([small])
    row = await logdb.get_request(ORG, small.request_id)
    assert row is not None and row.body_inline is None and row.body_key is not None
    assert stored(await blobs.get(row.body_key))["response"] == small.response_body


async def test_omitted_bodies_are_nowhere(stores: tuple[LogDb, BlobStore]) -> None:
    logdb, blobs = stores
    record = chat_record(omit_request=True, omit_response=True, request_body=None, response_body=None)
    await LogWriter(logdb, blobs).write([record])
    row = await logdb.get_request(ORG, record.request_id)
    assert row is not None and row.body_inline is None and row.body_key is None
    assert await stored_bodies(row, blobs) is None


async def test_a_later_part_replaces_the_bodies_wherever_they_are(stores: tuple[LogDb, BlobStore]) -> None:
    """A session logged in parts: each winning part's bodies replace the last, on the row or not."""
    logdb, blobs = stores
    writer = LogWriter(logdb, blobs)
    request_id, started = str(uuid.uuid4()), datetime.now(UTC)
    first = chat_record(request_id=request_id, started_at=started, part=1)
    await writer.write([first])
    row = await logdb.get_request(ORG, request_id)
    assert row is not None and row.body_inline is not None

    second = large_record(request_id=request_id, started_at=started, part=2)
    await writer.write([second])
    row = await logdb.get_request(ORG, request_id)
    assert row is not None and row.body_inline is None  # the upsert cleared the row's copy
    assert stored(await stored_bodies(row, blobs))["response"] == second.response_body

    third = chat_record(request_id=request_id, started_at=started, part=3, response_body='{"done": true}')
    await writer.write([third, first])  # an old part redelivered beside it changes nothing
    row = await logdb.get_request(ORG, request_id)
    assert row is not None and row.body_inline is not None
    assert stored(await stored_bodies(row, blobs))["response"] == '{"done": true}'


async def test_a_bare_row_keeps_its_inline_bodies(stores: tuple[LogDb, BlobStore]) -> None:
    """A row the database refuses is stored bare; its bodies, on the row, must stay reachable."""
    logdb, blobs = stores
    huge = 2**70  # beyond any integer column, on either database
    record = chat_record(usage=Usage(prompt_tokens=huge, completion_tokens=1, total_tokens=huge, source="manual"))
    assert (await LogWriter(logdb, blobs).write([record])).failed == {}
    row = await logdb.get_request(ORG, record.request_id)
    assert row is not None and "stored as a bare row" in row.errors[-1]
    assert row.body_inline is not None
    assert stored(await stored_bodies(row, blobs))["request"] == record.request_body


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
async def test_rows_stored_before_migration_0014_still_read_from_the_blob_store(
    dialect: str, tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An existing database: rows from before 0014 have their bodies in the blob store only."""
    blobs = LocalBlobStore(tmp_path / "blobs")
    module: Any = logdb_sqlite if dialect == "sqlite" else logdb_postgres
    older = [m for m in load_migrations(dialect) if m.name < "0014"]  # type: ignore[arg-type]  # the parameter
    # The release before this one: its migrations only (what ``migrate`` of that release applied).
    monkeypatch.setattr(module, "load_migrations", lambda _dialect: older)
    logdb: LogDb = SqliteLogDb(tmp_path / "logs.sqlite3") if dialect == "sqlite" else PostgresLogDb(pg_dsn)
    assert "0014_inline_bodies" not in await logdb.migrate()
    request_id = str(uuid.uuid4())
    key = body_key(ORG, request_id)
    # The previous release's insert: every column but 0014's, converted by the adapter as it was.
    old = chat_row(ORG, request_id=request_id, body_key=key)
    columns = ", ".join(COLUMNS[:-1])
    values = module._to_db(old)[:-1]
    assert COLUMNS[-1] == "body_inline"
    if dialect == "sqlite":
        with sqlite3.connect(tmp_path / "logs.sqlite3") as conn:
            conn.execute(f"INSERT INTO requests ({columns}) VALUES ({', '.join('?' * len(values))})", values)
    else:
        conn = await asyncpg.connect(pg_dsn)
        types = [logdb_postgres.PG_TYPES[c] for c in COLUMNS[:-1]]
        placeholders = ", ".join(f"${i}::{t}" for i, t in enumerate(types, 1))
        await conn.execute(f"INSERT INTO requests ({columns}) VALUES ({placeholders})", *values)
        await conn.close()
    bodies = {"request": '{"old": 1}', "response": '{"old": 2}'}
    await blobs.put(key, gzip.compress(json.dumps(bodies).encode()), content_encoding="gzip")
    await logdb.aclose()

    monkeypatch.undo()  # this release
    logdb = SqliteLogDb(tmp_path / "logs.sqlite3") if dialect == "sqlite" else PostgresLogDb(pg_dsn)
    assert await logdb.migrate() == ["0014_inline_bodies"]
    row = await logdb.get_request(ORG, request_id)
    assert row is not None and row.body_inline is None
    assert stored(await stored_bodies(row, blobs)) == bodies
    new = chat_record()
    await LogWriter(logdb, blobs).write([new])  # and new rows beside it go on the row
    row = await logdb.get_request(ORG, new.request_id)
    assert row is not None and row.body_inline is not None
    await logdb.aclose()


def test_the_threshold_is_a_setting() -> None:
    assert Settings().inline_body_bytes == INLINE_BODY_BYTES
    assert Settings.from_env({}).inline_body_bytes == INLINE_BODY_BYTES
    assert Settings.from_env({"HELIPORT_INLINE_BODY_BYTES": "0"}).inline_body_bytes == 0
    assert Settings.from_env({"HELIPORT_INLINE_BODY_BYTES": "16384"}).inline_body_bytes == 16384
    for bad in ("-1", "lots", str(2 * 1024 * 1024)):
        with pytest.raises(ConfigError, match="HELIPORT_INLINE_BODY_BYTES"):
            Settings.from_env({"HELIPORT_INLINE_BODY_BYTES": bad})
