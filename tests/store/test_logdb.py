"""One contract for every LogDb adapter: PostgreSQL (a throwaway database per test) and SQLite.

PostgreSQL comes from ``HELIPORT_TEST_PG_DSN`` (default: the local trust-auth server). When that
variable is unset and no server answers, the PostgreSQL cases skip; when it is set, they fail.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from heliport.logs.row import RequestRow
from heliport.store.logdb import COLUMNS, DeadLetter, LogDb, add_months, load_migrations, month_start, partition_name
from heliport.store.logdb_postgres import PG_TYPES, PostgresLogDb
from heliport.store.logdb_sqlite import SqliteLogDb
from tests.postgres import throwaway_database

pytestmark = pytest.mark.anyio

ORG = str(uuid.uuid4())
OTHER_ORG = str(uuid.uuid4())


@dataclass
class Backend:
    kind: str
    db: LogDb
    #: The PostgreSQL DSN or the SQLite path, for looking under the adapter.
    location: str

    async def query(self, sql_pg: str, sql_sqlite: str, *args: Any) -> list[tuple[Any, ...]]:
        if self.kind == "sqlite":
            with sqlite3.connect(self.location) as conn:
                return conn.execute(sql_sqlite, args).fetchall()
        import asyncpg

        conn = await asyncpg.connect(self.location)
        try:
            return [tuple(r) for r in await conn.fetch(sql_pg, *args)]
        finally:
            await conn.close()

    async def count(self) -> int:
        rows = await self.query("SELECT count(*) FROM requests", "SELECT count(*) FROM requests")
        return int(rows[0][0])


@pytest.fixture(params=["sqlite", "postgres"])
async def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """An adapter over an empty database, not migrated."""
    if request.param == "sqlite":
        path = tmp_path / "logs.sqlite3"
        db = SqliteLogDb(path)
        try:
            yield Backend("sqlite", db, str(path))
        finally:
            await db.aclose()
        return
    async with throwaway_database() as dsn:
        pg = PostgresLogDb(dsn, max_size=2)
        try:
            yield Backend("postgres", pg, dsn)
        finally:
            await pg.aclose()


@pytest.fixture
async def backend(fresh: Backend) -> Backend:
    """A migrated adapter with this month's and next month's partitions."""
    await fresh.db.migrate()
    await fresh.db.ensure_partitions(datetime.now(UTC))
    return fresh


@pytest.fixture
async def pg(pg_dsn: str) -> AsyncIterator[PostgresLogDb]:
    db = PostgresLogDb(pg_dsn, max_size=2)
    await db.migrate()
    try:
        yield db
    finally:
        await db.aclose()


def make_row(**overrides: Any) -> RequestRow:
    """A row with only the required fields, plus overrides."""
    fields: dict[str, Any] = {
        "request_id": str(uuid.uuid4()),
        "org_id": ORG,
        "key_id": str(uuid.uuid4()),
        "created_at": datetime.now(UTC),
        "status": 200,
        "provider": "OPENAI",
        "target_url": "https://api.openai.com/v1/chat/completions",
        "path": "/v1/chat/completions",
    }
    fields.update(overrides)
    return RequestRow(**fields)


def full_row() -> RequestRow:
    """Every field set to a non-default value that a lossy conversion would change."""
    india = timezone(timedelta(hours=5, minutes=30))
    created = datetime(2026, 5, 14, 9, 30, 15, 123456, tzinfo=UTC)
    return make_row(
        created_at=created.astimezone(india),  # given in +05:30, stored and returned as UTC
        response_created_at=created + timedelta(seconds=1, microseconds=7),
        status=429,
        provider="ANTHROPIC",
        target_url="https://api.anthropic.com/v1/messages",
        path="/v1/messages",
        method="PUT",
        is_stream=True,
        model="claude-sonnet-4",
        request_model="claude-sonnet-4-0",
        response_model="claude-sonnet-4-20250514",
        model_override="my-model",
        user_id="alice@example.com",
        properties={"café": "naïve ☕", "emoji": "🚀 ok", "quote": 'say "hi"\n\\n', "empty": ""},
        session_id="sess-1",
        session_path="/plan/step-1",
        session_name="Trip planner",
        prompt_id="prompt-7",
        delay_ms=1234.5678901234,
        time_to_first_token=0.1 + 0.2,
        prompt_tokens=2_000_000_000,
        completion_tokens=2,
        total_tokens=3,
        prompt_cache_read_tokens=4,
        prompt_cache_write_tokens=5,
        prompt_cache_write_5m_tokens=6,
        prompt_cache_write_1h_tokens=7,
        reasoning_tokens=8,
        prompt_audio_tokens=9,
        completion_audio_tokens=10,
        usage_source="stream",
        cost=Decimal("0.00000001875"),  # 11 decimal places: numeric(20,10) would round it
        cost_source="genai-prices@0.0.30",
        cache_hit=True,
        cache_reference_id=str(uuid.uuid4()),
        rate_limited=True,
        retry_count=3,
        fallback_index=0,
        gateway_provider="anthropic",
        gateway_model="claude-sonnet-4",
        errors=["cache: bucket full", "stream: ended early ü"],
        omit_request=True,
        omit_response=True,
        body_key="organizations/o/requests/r/request_response_body",
        request_preview="Привет, 世界",
        response_preview="x" * 2000,
        scores={"quality": 0.1, "whole": 3.0, "negative": -2.5e-7},
        feedback_rating=False,
        feedback_created_at=created + timedelta(days=1),
    )


# --- the contract -------------------------------------------------------------------------------


async def test_migrate_is_idempotent_and_reports_names_once(fresh: Backend) -> None:
    expected = [m.name for m in load_migrations("postgres" if fresh.kind == "postgres" else "sqlite")]
    assert "0001_requests" in expected
    assert await fresh.db.migrate() == expected
    assert await fresh.db.migrate() == []
    recorded = await fresh.query(
        "SELECT version FROM schema_migrations ORDER BY version",
        "SELECT version FROM schema_migrations ORDER BY version",
    )
    assert [v for (v,) in recorded] == expected


async def test_both_schemas_have_exactly_the_row_columns_in_order(backend: Backend) -> None:
    if backend.kind == "postgres":
        found = await backend.query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'requests' "
            "ORDER BY ordinal_position",
            "",
        )
        assert set(PG_TYPES) == set(COLUMNS)
    else:
        found = [(r[1],) for r in await backend.query("", "PRAGMA table_info(requests)")]
    assert tuple(name for (name,) in found) == COLUMNS


async def test_round_trip_keeps_every_field_exactly(backend: Backend) -> None:
    row = full_row()
    assert await backend.db.insert_requests([row]) == 1
    got = await backend.db.get_request(ORG, row.request_id)
    assert got == row
    assert got is not None and got.cost is not None and row.cost is not None
    assert got.cost.as_tuple() == row.cost.as_tuple()  # same digits and exponent, not just equal value
    for stamp in (got.created_at, got.response_created_at, got.feedback_created_at):
        assert stamp is not None and stamp.utcoffset() == timedelta(0)
    assert got.created_at == datetime(2026, 5, 14, 9, 30, 15, 123456, tzinfo=UTC)
    assert msgspec.structs.asdict(got) == msgspec.structs.asdict(row)


async def test_round_trip_of_a_row_with_only_defaults(backend: Backend) -> None:
    row = make_row()
    await backend.db.insert_requests([row])
    assert await backend.db.get_request(ORG, row.request_id) == row


async def test_duplicate_insert_keeps_one_row_and_counts_zero(backend: Backend) -> None:
    row = make_row()
    assert await backend.db.insert_requests([row]) == 1
    assert await backend.db.insert_requests([row]) == 0
    assert await backend.count() == 1


async def test_batch_of_100_with_10_redelivered_counts_90(backend: Backend) -> None:
    now = datetime.now(UTC)
    rows = [make_row(created_at=now - timedelta(seconds=i)) for i in range(100)]
    assert await backend.db.insert_requests(rows[:10]) == 10
    assert await backend.db.insert_requests(rows) == 90
    assert await backend.count() == 100


async def test_duplicates_within_one_batch_count_once(backend: Backend) -> None:
    a, b = make_row(), make_row()
    assert await backend.db.insert_requests([a, b, a]) == 2
    assert await backend.db.insert_requests([]) == 0
    assert await backend.count() == 2


async def test_get_is_scoped_to_the_organisation(backend: Backend) -> None:
    row = make_row()
    await backend.db.insert_requests([row, make_row(org_id=OTHER_ORG)])
    assert await backend.db.get_request(OTHER_ORG, row.request_id) is None
    assert await backend.db.get_request(ORG, str(uuid.uuid4())) is None
    assert await backend.db.get_request(ORG, "not-a-uuid") is None
    assert await backend.db.get_request(ORG, row.request_id) == row


async def test_drop_before_removes_whole_months_before_the_cutoff(backend: Backend) -> None:
    await backend.db.ensure_partitions(datetime(2024, 1, 10, tzinfo=UTC))  # January and February 2024
    january = make_row(created_at=datetime(2024, 1, 31, 23, 59, 59, 999999, tzinfo=UTC))
    february = make_row(created_at=datetime(2024, 2, 1, tzinfo=UTC))
    recent = make_row()
    assert await backend.db.insert_requests([january, february, recent]) == 3

    assert await backend.db.drop_before(datetime(2024, 2, 15, tzinfo=UTC)) == ["requests_2024_01"]
    assert await backend.db.get_request(ORG, january.request_id) is None
    assert await backend.db.get_request(ORG, february.request_id) == february
    assert await backend.db.get_request(ORG, recent.request_id) == recent
    assert await backend.db.drop_before(datetime(2024, 2, 15, tzinfo=UTC)) == []


# --- PostgreSQL only: partitions, concurrency, laziness ---------------------------------------------


async def _partition_of(dsn: str, request_id: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        name: str = await conn.fetchval(
            "SELECT tableoid::regclass::text FROM requests WHERE request_id = $1", uuid.UUID(request_id)
        )
        return name
    finally:
        await conn.close()


async def _partitions(dsn: str) -> set[str]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'requests'::regclass"
        )
        return {r["relname"] for r in rows}
    finally:
        await conn.close()


async def test_rows_of_two_months_land_in_two_partitions(pg: PostgresLogDb, pg_dsn: str) -> None:
    now = datetime.now(UTC)
    await pg.ensure_partitions(now)
    await pg.ensure_partitions(now)  # idempotent
    next_month = add_months(month_start(now), 1) + timedelta(days=3)
    this_row, next_row = make_row(created_at=now), make_row(created_at=next_month)
    assert await pg.insert_requests([this_row, next_row]) == 2
    assert await _partition_of(pg_dsn, this_row.request_id) == partition_name(now)
    assert await _partition_of(pg_dsn, next_row.request_id) == partition_name(next_month)
    assert {partition_name(now), partition_name(next_month), "requests_default"} == await _partitions(pg_dsn)


async def test_month_bounds_are_utc_whatever_the_session_time_zone(pg_dsn: str) -> None:
    # asyncpg passes unknown DSN parameters as server settings: this session runs at UTC+05:30.
    db = PostgresLogDb(f"{pg_dsn}?timezone=Asia/Kolkata")
    try:
        await db.migrate()
        await db.ensure_partitions(datetime(2026, 5, 31, 23, 30, tzinfo=UTC))
        may = make_row(created_at=datetime(2026, 5, 31, 23, 59, 59, 999999, tzinfo=UTC))
        june = make_row(created_at=datetime(2026, 6, 1, tzinfo=UTC))
        await db.insert_requests([may, june])
        assert await _partition_of(pg_dsn, may.request_id) == "requests_2026_05"
        assert await _partition_of(pg_dsn, june.request_id) == "requests_2026_06"
    finally:
        await db.aclose()


async def test_a_row_without_a_partition_lands_in_default_and_moves_when_its_month_is_made(
    pg: PostgresLogDb, pg_dsn: str
) -> None:
    far = datetime.now(UTC) + timedelta(days=5 * 365)
    row = make_row(created_at=far)
    assert await pg.insert_requests([row]) == 1
    assert await _partition_of(pg_dsn, row.request_id) == "requests_default"
    assert await pg.get_request(ORG, row.request_id) == row
    assert await pg.insert_requests([row]) == 0  # still idempotent in the default partition

    await pg.ensure_partitions(far)
    assert await _partition_of(pg_dsn, row.request_id) == partition_name(far)
    assert await pg.get_request(ORG, row.request_id) == row
    assert await pg.insert_requests([row]) == 0


async def test_drop_before_drops_old_month_partitions(pg: PostgresLogDb, pg_dsn: str) -> None:
    now = datetime.now(UTC)
    await pg.ensure_partitions(now)
    await pg.ensure_partitions(datetime(2024, 1, 10, tzinfo=UTC))
    await pg.insert_requests([make_row(created_at=datetime(2024, 1, 10, tzinfo=UTC))])
    assert {"requests_2024_01", "requests_2024_02"} <= await _partitions(pg_dsn)

    dropped = await pg.drop_before(datetime(2024, 3, 1, tzinfo=UTC))
    assert dropped == ["requests_2024_01", "requests_2024_02"]  # empty or not, whole months go
    assert await _partitions(pg_dsn) == {partition_name(now), partition_name(add_months(now, 1)), "requests_default"}


async def test_concurrent_migrate_from_several_pools_applies_each_migration_once(pg_dsn: str) -> None:
    dbs = [PostgresLogDb(pg_dsn, max_size=1) for _ in range(4)]
    try:
        results = await asyncio.gather(*(db.migrate() for db in dbs))
    finally:
        for db in dbs:
            await db.aclose()
    applied = sorted(name for result in results for name in result)
    assert applied == [m.name for m in load_migrations("postgres")]


async def test_nul_characters_are_replaced_instead_of_failing_the_batch(pg: PostgresLogDb) -> None:
    await pg.ensure_partitions(datetime.now(UTC))
    row = make_row(response_preview="bin\x00ary", properties={"k\x00": "v\x00"}, errors=["\x00"], scores={"s\x00": 1.0})
    assert await pg.insert_requests([row]) == 1
    got = await pg.get_request(ORG, row.request_id)
    assert got is not None
    assert got.response_preview == "bin\ufffdary"
    assert got.properties == {"k\ufffd": "v\ufffd"}
    assert got.errors == ["\ufffd"]
    assert got.scores == {"s\ufffd": 1.0}


async def test_closed_adapter_refuses_work(pg_dsn: str) -> None:
    db = PostgresLogDb(pg_dsn)
    await db.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await db.migrate()


def test_importing_the_postgres_adapter_does_not_import_asyncpg() -> None:
    code = "import sys, heliport.store.logdb_postgres; sys.exit('asyncpg' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


async def test_dead_letters_are_kept_listed_by_organisation_counted_and_deleted(backend: Backend) -> None:
    at = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    letters = [
        DeadLetter(org_id=ORG, request_id="r-1", failed_at=at, attempts=3, error="too big\x00", record=b'{"a": 1}'),
        DeadLetter(
            org_id=None, request_id=None, failed_at=at + timedelta(seconds=1), attempts=1, error="x", record=b"\xff"
        ),
        DeadLetter(
            org_id=OTHER_ORG, request_id="r-2", failed_at=at + timedelta(seconds=2), attempts=3, error="y", record=b"{}"
        ),
    ]
    await backend.db.add_dead_letters(letters)
    stored = await backend.db.list_dead_letters()
    assert [(d.request_id, d.record, d.attempts, d.failed_at) for d in stored] == [
        (d.request_id, d.record, d.attempts, d.failed_at) for d in letters
    ]
    assert stored[0].error in ("too big\x00", "too big\ufffd") and all(d.id is not None for d in stored)
    assert [d.request_id for d in await backend.db.list_dead_letters(org_id=ORG)] == ["r-1"]
    assert await backend.db.count_dead_letters(ORG) == 1 and await backend.db.count_dead_letters(str(uuid.uuid4())) == 0
    assert await backend.db.delete_dead_letters([stored[0].id or 0]) == 1
    assert await backend.db.delete_dead_letters(None) == 2
    assert await backend.db.list_dead_letters() == []


# --- checks (issue 20): what a request's checks found, by check name ----------------------------------

#: Outcomes as the checks record them: nested objects, lists, booleans, floats, null, non-ASCII text.
CHECKS: dict[str, Any] = {
    "moderation": {
        "flagged": True,
        "categories": ["violence", "harassment/threatening"],
        "scores": {"violence": 0.9731, "harassment/threatening": 0.5, "sexual": 1.2e-7},
        "model": "omni-moderation-latest",
        "path": "messages[1]",
        "latency_ms": 12.5,
    },
    "llm_security": {
        "threat": False,
        "messages": [{"path": "messages[1]", "verdict": "benign", "score": 0.01, "classifier": "prompt-guard"}],
        "error": None,
    },
    "token_limit": {"strategy": "middle-out", "tokens_before": 130_000, "tokens_after": 127_000, "note": "ünïcode ☕"},
}


async def _stored_checks(backend: Backend, request_id: str) -> Any:
    rows = await backend.query(
        "SELECT checks FROM requests WHERE request_id = $1",
        "SELECT checks FROM requests WHERE request_id = ?",
        uuid.UUID(request_id) if backend.kind == "postgres" else request_id,
    )
    return rows[0][0]


async def test_checks_round_trip_exactly_and_none_are_stored_as_null(backend: Backend) -> None:
    with_checks, without = make_row(checks=CHECKS), make_row()
    assert await backend.db.insert_requests([with_checks, without]) == 2
    got = await backend.db.get_request(ORG, with_checks.request_id)
    assert got is not None and got.checks == CHECKS and got == with_checks
    plain = await backend.db.get_request(ORG, without.request_id)
    assert plain is not None and plain.checks == {}
    # No check ran: nothing is encoded, parsed or stored (NULL), and it reads back as {}.
    assert await _stored_checks(backend, without.request_id) is None


async def test_merge_checks_adds_and_replaces_whole_checks_by_name(backend: Backend) -> None:
    row = make_row(checks={"moderation": CHECKS["moderation"]})
    bare = make_row()
    await backend.db.insert_requests([row, bare])

    assert await backend.db.merge_checks(
        ORG, row.request_id, {"posthog": {"delivered": False, "error": "503", "attempts": 3}}
    )
    assert await backend.db.merge_checks(ORG, row.request_id, {"posthog": {"delivered": True, "attempts": 1}})
    got = await backend.db.get_request(ORG, row.request_id)
    assert got is not None
    # Key by key: moderation is kept; the second posthog outcome replaced the first whole (no stale error).
    assert got.checks == {"moderation": CHECKS["moderation"], "posthog": {"delivered": True, "attempts": 1}}

    # Into a row stored without checks (NULL).
    assert await backend.db.merge_checks(ORG, bare.request_id, {"posthog": {"delivered": True}})
    got = await backend.db.get_request(ORG, bare.request_id)
    assert got is not None and got.checks == {"posthog": {"delivered": True}}
    # Everything else on the rows is as it was.
    assert got == msgspec.structs.replace(bare, checks={"posthog": {"delivered": True}})


async def test_merge_checks_is_confined_to_the_organisation(backend: Backend) -> None:
    mine = make_row(checks={"token_limit": {"strategy": "truncate"}})
    # Request ids are unique per organisation only: another organisation's row with the same id.
    theirs = make_row(org_id=OTHER_ORG, request_id=mine.request_id, checks={"token_limit": {"strategy": "fallback"}})
    await backend.db.insert_requests([mine, theirs])

    assert await backend.db.merge_checks(OTHER_ORG, mine.request_id, {"posthog": {"delivered": True}})
    assert await backend.db.get_request(ORG, mine.request_id) == mine  # untouched
    got = await backend.db.get_request(OTHER_ORG, mine.request_id)
    assert got is not None and got.checks == {"token_limit": {"strategy": "fallback"}, "posthog": {"delivered": True}}

    # No such row in this organisation: nothing is written anywhere, and the caller is told.
    stranger = str(uuid.uuid4())
    assert not await backend.db.merge_checks(stranger, mine.request_id, {"posthog": {"delivered": True}})
    assert not await backend.db.merge_checks(ORG, str(uuid.uuid4()), {"posthog": {"delivered": True}})
    assert not await backend.db.merge_checks(ORG, "not-a-uuid", {"posthog": {"delivered": True}})
    assert await backend.db.get_request(ORG, mine.request_id) == mine


async def test_a_check_json_cannot_hold_is_a_rejected_row_not_an_outage(backend: Backend) -> None:
    from heliport.store.logdb import RowRejectedError

    row = make_row(checks={"moderation": {"when": object()}})
    with pytest.raises(RowRejectedError):
        await backend.db.insert_requests([row])
    assert await backend.count() == 0
    stored = make_row()
    await backend.db.insert_requests([stored])
    with pytest.raises(RowRejectedError):
        await backend.db.merge_checks(ORG, stored.request_id, {"posthog": {"error": object()}})


async def test_checks_with_nul_characters_are_stored(backend: Backend) -> None:
    # jsonb cannot hold U+0000 at any depth: PostgreSQL stores U+FFFD in its place, SQLite keeps it.
    row = make_row(checks={"moderation": {"path": "a\x00", "nested": [{"k\x00": "v\x00"}]}})
    assert await backend.db.insert_requests([row]) == 1
    assert await backend.db.merge_checks(ORG, row.request_id, {"posthog": {"error": "b\x00"}})
    got = await backend.db.get_request(ORG, row.request_id)
    assert got is not None
    mark = "\ufffd" if backend.kind == "postgres" else "\x00"
    assert got.checks == {
        "moderation": {"path": f"a{mark}", "nested": [{f"k{mark}": f"v{mark}"}]},
        "posthog": {"error": f"b{mark}"},
    }


async def test_a_later_part_merges_its_checks_and_keeps_merged_ones(backend: Backend) -> None:
    # Requests logged in parts (realtime sessions) upsert their row; a PostHog outcome merged in after
    # part 1 must survive part 2, and part 2's own checks replace part 1's of the same name.
    db: Any = backend.db  # upsert_parts is the writer's, not part of the LogDb protocol
    first = make_row(checks={"moderation": {"flagged": False}, "token_limit": {"strategy": "truncate"}})
    assert await db.upsert_parts([(first, 1)]) == [(ORG, first.request_id)]
    assert await backend.db.merge_checks(ORG, first.request_id, {"posthog": {"delivered": True}})
    second = msgspec.structs.replace(first, status=201, checks={})
    assert await db.upsert_parts([(second, 2)]) == [(ORG, first.request_id)]
    got = await backend.db.get_request(ORG, first.request_id)
    assert got is not None and got.status == 201
    assert got.checks == {
        "moderation": {"flagged": False},
        "token_limit": {"strategy": "truncate"},
        "posthog": {"delivered": True},
    }
    third = msgspec.structs.replace(first, checks={"moderation": {"flagged": True}})
    assert await db.upsert_parts([(third, 3)]) == [(ORG, first.request_id)]
    got = await backend.db.get_request(ORG, first.request_id)
    assert got is not None
    assert got.checks == {
        "moderation": {"flagged": True},
        "token_limit": {"strategy": "truncate"},
        "posthog": {"delivered": True},
    }


async def test_the_api_role_may_read_checks_but_not_write_them(pg: PostgresLogDb, pg_dsn: str) -> None:
    # The query API runs as heliport_api (migration 0004): it reads every column, but checks are the
    # log writer's to write.
    import asyncpg

    await pg.ensure_partitions(datetime.now(UTC))
    row = make_row(checks={"moderation": {"flagged": True}})
    await pg.insert_requests([row])
    conn = await asyncpg.connect(pg_dsn)

    async def as_api(sql: str, *args: object) -> Any:
        async with conn.transaction():
            await conn.execute("SET LOCAL ROLE heliport_api")
            await conn.execute("SELECT set_config('heliport.org_id', $1, true)", ORG)
            return await conn.fetchval(sql, *args)

    try:
        stored = await as_api("SELECT checks FROM requests WHERE request_id = $1", uuid.UUID(row.request_id))
        assert msgspec.json.decode(stored) == {"moderation": {"flagged": True}}
        update = "UPDATE requests SET checks = '{}'::jsonb WHERE org_id = $1"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await as_api(update, ORG)
    finally:
        await conn.close()
