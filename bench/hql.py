"""HQL (``POST /v1/helicone-sql/execute``) over the 1,000,000-row log: every documented statement, p50 and p99.

The statements are the HQL feature page's: its REST example first (the ``curl`` body of "Execute a
Query"), then every other statement the seed pages show, as ``tests/hql/examples.py`` reads them.

* PostgreSQL: ``bench/query.py``'s data set (its ``fill``: ``--rows`` rows, default 1,000,000, over
  90 days and 10 organisations, so the measured organisation holds a tenth of them) in a throwaway
  database on the local server.
* SQLite, as ``heliport serve`` runs it: that generator writes PostgreSQL only, so the SQLite file
  is a sample of the same rows (every ``--sqlite-every``-th by request id, default 10, so about
  100,000 rows and 10,000 for the measured organisation), read back and written with the real log
  adapters (``logdb_postgres.row_from_db`` -> ``SqliteLogDb.insert_requests``).

The calls go through the real query API (Starlette app, key check, HQL compiler, read-only
transaction under row-level security on PostgreSQL) over httpx's in-process ASGI transport, as
``bench/timeseries.py`` does. Each statement runs ``--repeat`` times after a warm-up. The slowest
statement on PostgreSQL is then explained (``EXPLAIN (ANALYZE, BUFFERS)`` of its compiled form, run
as the API runs it: the API role, the organisation set).

    .venv/bin/python bench/hql.py [--rows 1000000] [--repeat 30] [--sqlite-every 10] [--dsn postgresql://...]

Results: printed, and written to ``bench/results/hql-<UTC>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import httpx

from bench.query import DAYS, ORGS, fill
from heliport.api.app import QueryApi
from heliport.api.bodies import BodyLinks
from heliport.api.database import API_ROLE, PostgresQueries, QueryDb, SqliteQueries
from heliport.auth import Authenticator, create_key
from heliport.hql.compile import compile_hql
from heliport.store.blobs import LocalBlobStore
from heliport.store.keys import Organisation, SqliteKeyStore
from heliport.store.logdb import COLUMNS
from heliport.store.logdb_postgres import row_from_db
from heliport.store.logdb_sqlite import SqliteLogDb
from tests.hql.examples import documented_statements

ROUTE = "/v1/helicone-sql/execute"
ORG = "org-3"
#: The feature page's REST example ("Execute a Query"), measured first.
DOCUMENTED = (
    "SELECT request_model, COUNT(*) as count FROM request_response_rmt WHERE request_created_at > now() - "
    "INTERVAL 7 DAY GROUP BY request_model ORDER BY count DESC LIMIT 10"
)
WARMUP = 3
COPY_BATCH = 5_000


def statements() -> list[str]:
    """The documented example, then every other statement of the seed pages, each once."""
    return list(dict.fromkeys([DOCUMENTED, *documented_statements()]))


def percentiles(timings: Sequence[float]) -> dict[str, float]:
    ordered = sorted(timings)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
    }


@asynccontextmanager
async def api_client(db: QueryDb, now: datetime, data_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The real query API over ``db``, in process, with a key of the measured organisation."""
    keys = SqliteKeyStore(data_dir / "keys.sqlite3")
    await keys.put_org(Organisation(id=ORG, name="bench", created_at=now))
    plain, _ = await create_key(keys, ORG, "bench")
    api = QueryApi(db, Authenticator(keys, 60), BodyLinks(LocalBlobStore(data_dir / "blobs")))
    transport = httpx.ASGITransport(app=api.asgi())
    headers = {"Authorization": f"Bearer {plain}"}
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", headers=headers) as client:
            yield client
    finally:
        await api.aclose()
        await keys.aclose()


async def measure(client: httpx.AsyncClient, repeat: int, label: str) -> list[dict[str, Any]]:
    """Each statement ``WARMUP`` times untimed, then ``repeat`` times timed (the whole HTTP call)."""
    results = []
    for number, sql in enumerate(statements(), 1):
        for _ in range(WARMUP):  # pool, plan cache, buffers, sqlglot's first parse
            (await client.post(ROUTE, json={"sql": sql})).raise_for_status()
        timings, server = [], []
        data: dict[str, Any] = {}
        for _ in range(repeat):
            started = time.perf_counter()
            response = await client.post(ROUTE, json={"sql": sql})
            timings.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            data = response.json()["data"]
            server.append(float(data["elapsedMilliseconds"]))
        got = {"n": number, "sql": sql, "rows": data["rowCount"], "bytes": data["size"], **percentiles(timings)}
        got["elapsed_p50_ms"] = round(statistics.median(server), 2)  # compile + database + mapping, no HTTP
        results.append(got)
        print(
            f"{label:10s} #{number} rows={got['rows']:5d} p50={got['p50_ms']:8.2f} ms p99={got['p99_ms']:8.2f} ms"
            f"  (server elapsed p50 {got['elapsed_p50_ms']:.2f} ms)  {sql[:70]}",
            flush=True,
        )
    return results


async def explain(dsn: str, sql: str) -> str:
    """``EXPLAIN (ANALYZE, BUFFERS)`` of ``sql``'s compiled form, as the API runs it (role, org, UTC)."""
    compiled = compile_hql(sql, "postgres")
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction(readonly=True):
            await conn.execute(f"SET LOCAL ROLE {API_ROLE}")
            await conn.execute("SELECT set_config('heliport.org_id', $1, true)", ORG)
            await conn.execute("SELECT set_config('TimeZone', 'UTC', true)")
            plan = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {compiled.sql}", ORG)
        return "\n".join(record[0] for record in plan)
    finally:
        await conn.close()


async def copy_to_sqlite(dsn: str, path: Path, every: int) -> int:
    """Every ``every``-th stored row (by a hash of its id), read and written by the real log adapters."""
    conn = await asyncpg.connect(dsn)
    logdb = SqliteLogDb(path)
    copied = 0
    try:
        await logdb.migrate()
        query = f"SELECT {', '.join(COLUMNS)} FROM requests WHERE abs(hashtext(request_id::text)) % $1 = 0"
        async with conn.transaction():
            cursor = await conn.cursor(query, every)
            while batch := await cursor.fetch(COPY_BATCH):
                copied += await logdb.insert_requests([row_from_db(record) for record in batch])
        return copied
    finally:
        await logdb.aclose()
        await conn.close()


@asynccontextmanager
async def throwaway(dsn: str) -> AsyncIterator[str]:
    """A new database on ``dsn``'s server, dropped afterwards; its DSN."""
    name = f"heliport_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')  # our own name: hex digits
    try:
        yield dsn.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    out: dict[str, Any] = {
        "rows": args.rows,
        "orgs": ORGS,
        "days": DAYS,
        "repeat": args.repeat,
        "warmup": WARMUP,
        "loadavg_at_start": os.getloadavg(),
        "nproc": os.cpu_count(),
    }
    async with throwaway(args.dsn) as dsn:
        seconds = await fill(dsn, args.rows, now)
        out["fill_seconds"] = round(seconds, 1)
        print(f"filled {args.rows:,} rows in {seconds:.1f} s ({ORGS} organisations, {DAYS} days)", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            async with api_client(PostgresQueries(dsn), now, Path(tmp)) as client:
                out["postgres"] = await measure(client, args.repeat, "postgres")
        slowest = max(out["postgres"], key=lambda case: case["p50_ms"])
        out["postgres_slowest_explain"] = {
            "n": slowest["n"],
            "sql": slowest["sql"],
            "plan": await explain(dsn, slowest["sql"]),
        }
        print(f"\nEXPLAIN (ANALYZE, BUFFERS) of #{slowest['n']}:\n{out['postgres_slowest_explain']['plan']}\n")
        if args.sqlite_every > 0:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "logs.sqlite3"
                copied = await copy_to_sqlite(dsn, path, args.sqlite_every)
                out["sqlite_rows"] = copied
                print(f"copied {copied:,} rows to SQLite (every {args.sqlite_every}th)", flush=True)
                async with api_client(SqliteQueries(path), now, Path(tmp)) as client:
                    out["sqlite"] = await measure(client, args.repeat, "sqlite")
    out["loadavg_at_end"] = os.getloadavg()
    return out


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--sqlite-every", type=int, default=10, help="SQLite gets every n-th row (0: no SQLite run)")
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--out", type=Path, help="where to write the results (default bench/results/hql-<UTC>.json)")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    out = args.out or Path(__file__).parent / "results" / f"hql-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
