"""Records that cannot be stored as they are never block the records behind them (issue 18).

Against real stores: PostgreSQL or SQLite for rows, the local SQLite queue, a blob directory.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from heliport.logs.consumer import REUSED_ID_PROPERTY, LocalConsumer, LogWriter, build_row, renamed
from heliport.logs.record import LogRecord
from heliport.logs.usage import Usage
from heliport.store.blobs import LocalBlobStore
from heliport.store.logdb import LogDb
from heliport.store.logdb_postgres import PostgresLogDb
from heliport.store.logdb_sqlite import SqliteLogDb
from heliport.store.queue import SqliteQueue
from tests.logs.records import ORG, chat_record

pytestmark = pytest.mark.anyio

OTHER_ORG = str(uuid.uuid4())
DEEP = "[" * 100_000 + "]" * 100_000
#: More than any integer column holds in either database (int4 in PostgreSQL, 64 bits in SQLite).
HUGE = 2**70


@pytest.fixture(params=["sqlite", "postgres"])
async def writer(request: pytest.FixtureRequest, tmp_path: Path, pg_dsn: str) -> AsyncIterator[LogWriter]:
    logdb: LogDb = SqliteLogDb(tmp_path / "logs.sqlite3") if request.param == "sqlite" else PostgresLogDb(pg_dsn)
    await logdb.migrate()
    yield LogWriter(logdb, LocalBlobStore(tmp_path / "blobs"))
    await logdb.aclose()


async def test_a_deeply_nested_body_is_stored_and_so_are_the_records_behind_it(writer: LogWriter) -> None:
    deep_request, deep_response = chat_record(request_body=DEEP), chat_record(response_body=DEEP)
    after = chat_record(org_id=OTHER_ORG)
    outcome = await writer.write([deep_request, deep_response, after])
    assert outcome.written == 3 and outcome.failed == {}
    row = await writer.logdb.get_request(ORG, deep_request.request_id)
    assert row is not None and row.request_preview is not None and row.request_preview.startswith("[[[")
    row = await writer.logdb.get_request(ORG, deep_response.request_id)
    assert row is not None and row.body_key is not None
    assert await writer.logdb.get_request(OTHER_ORG, after.request_id) is not None


def test_a_row_built_without_reading_the_bodies_keeps_them_unread() -> None:
    record = chat_record()
    row, blob = build_row(record, read_bodies=False)
    full, full_blob = build_row(record)
    assert (row.prompt_tokens, row.request_preview, row.usage_source) == (None, None, "absent")
    assert full.prompt_tokens == 1200 and blob == full_blob  # the bodies are kept all the same


async def test_a_row_refused_for_its_values_is_stored_bare_with_the_reason(writer: LogWriter) -> None:
    refused = chat_record(usage=Usage(prompt_tokens=HUGE, completion_tokens=1, total_tokens=HUGE, source="manual"))
    others = [chat_record() for _ in range(3)]
    outcome = await writer.write([others[0], refused, *others[1:]])
    assert outcome.written == 4 and outcome.failed == {}
    row = await writer.logdb.get_request(ORG, refused.request_id)
    assert row is not None and row.prompt_tokens is None and row.cost is None
    assert row.status == 200 and row.user_id == "user-7" and row.body_key is not None
    assert "stored as a bare row" in row.errors[-1]
    for record in others:  # the rest of the batch keeps every column
        stored = await writer.logdb.get_request(ORG, record.request_id)
        assert stored is not None and stored.prompt_tokens == 1200 and stored.errors == []


async def test_the_same_request_id_in_two_organisations_gives_two_rows(writer: LogWriter) -> None:
    shared_id = str(uuid.uuid4())
    a = chat_record(request_id=shared_id, properties={"tenant": "a"})
    b = chat_record(request_id=shared_id, org_id=OTHER_ORG, properties={"tenant": "b"})
    assert (await writer.write([a])).written == 1
    assert (await writer.write([b])).written == 1
    row_a = await writer.logdb.get_request(ORG, shared_id)
    row_b = await writer.logdb.get_request(OTHER_ORG, shared_id)
    assert row_a is not None and row_a.properties == {"tenant": "a"}
    assert row_b is not None and row_b.properties == {"tenant": "b"} and row_b.errors == []
    assert (await writer.write([a, b])).written == 0  # redeliveries of both are still ignored


async def test_a_request_id_reused_inside_one_organisation_is_stored_under_a_fresh_id(writer: LogWriter) -> None:
    given = str(uuid.uuid4())
    first = chat_record(request_id=given)
    again = chat_record(request_id=given, started_at=first.started_at + timedelta(seconds=5))
    assert (await writer.write([first])).written == 1
    assert (await writer.write([again])).written == 1
    assert (await writer.write([again])).written == 0  # its redelivery gets the same fresh id: ignored

    kept = await writer.logdb.get_request(ORG, given)
    assert kept is not None and kept.created_at == first.started_at
    fresh = renamed(again).request_id
    assert fresh != given and renamed(again).request_id == fresh  # the same record, the same fresh id
    row = await writer.logdb.get_request(ORG, fresh)
    assert row is not None and row.properties[REUSED_ID_PROPERTY] == given
    assert given in row.errors[-1] and row.body_key != kept.body_key


async def test_a_request_id_repeated_inside_one_batch_is_renamed_too(writer: LogWriter) -> None:
    given = str(uuid.uuid4())
    started = datetime.now(UTC)
    first, second = (
        chat_record(request_id=given, started_at=started),
        chat_record(request_id=given, started_at=started + timedelta(milliseconds=1)),
    )
    assert (await writer.write([first, second, first])).written == 2


async def test_local_queue_sets_aside_a_record_refused_n_times_and_moves_on(tmp_path: Path, pg_dsn: str) -> None:
    logdb = PostgresLogDb(pg_dsn)  # refuses a request id that is not a uuid, even in a bare row
    await logdb.migrate()
    queue = SqliteQueue(tmp_path / "queue.sqlite3")
    consumer = LocalConsumer(queue, LogWriter(logdb, LocalBlobStore(tmp_path / "blobs")), batch=10, max_attempts=3)
    refused = chat_record(request_id="not-a-uuid")
    behind = [chat_record(org_id=OTHER_ORG) for _ in range(3)]
    for record in (refused, *behind):
        await queue.send(record)
    with sqlite3.connect(tmp_path / "queue.sqlite3") as raw:  # a record the queue holds but nobody can decode
        raw.execute("INSERT INTO log_queue (request_id, body) VALUES ('broken', ?)", (b'{"broken": ',))

    assert await consumer.drain_once() == 5
    for record in behind:  # stored on the first pass, whatever is in front of them
        assert await logdb.get_request(OTHER_ORG, record.request_id) is not None
    assert [q.request_id for q in queue.receive()] == ["not-a-uuid"]
    assert await consumer.drain_once() == 1 and await consumer.drain_once() == 1
    assert queue.receive() == [] and await consumer.drain_once() == 0

    letters = await logdb.list_dead_letters()
    assert [(d.request_id, d.attempts) for d in letters] == [(None, 1), ("not-a-uuid", 3)]
    assert msgspec.json.decode(letters[1].record, type=LogRecord) == refused
    assert await logdb.count_dead_letters(ORG) == 1 and await logdb.count_dead_letters(OTHER_ORG) == 0
    await queue.aclose()
    await logdb.aclose()
