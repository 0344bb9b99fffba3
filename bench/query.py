"""Query API latency over a large log: a property filter plus a date range, pages of 100, on PostgreSQL.

Fills a throwaway database on the local server with ``--rows`` rows (default 1,000,000) spread over
90 days, 10 organisations and three monthly partitions, in one ``INSERT ... SELECT generate_series``
(the consumer's own insert path is measured by ``bench/consumer.py``), then ANALYZEs. The queries go
through the real query API (Starlette app, key check, filter compiler, row-level security
transaction, HeliconeRequest mapping, signed body URLs) over httpx's in-process ASGI transport, so
only the TCP hop is left out. Each case runs ``--repeat`` times after a warm-up; p50 and p99 in ms.

    .venv/bin/python bench/query.py [--rows 1000000] [--repeat 200] [--dsn postgresql://postgres@127.0.0.1:5432/postgres]

Results: printed, and written to ``bench/results/query-<UTC>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import httpx

from heliport.api.app import QueryApi
from heliport.api.bodies import BodyLinks
from heliport.api.database import PostgresQueries
from heliport.auth import Authenticator, create_key
from heliport.store.blobs import LocalBlobStore
from heliport.store.keys import Organisation, SqliteKeyStore
from heliport.store.logdb import add_months, month_start
from heliport.store.logdb_postgres import PostgresLogDb

ORGS = 10
DAYS = 90

# One row per i: org by i % 10, time spread evenly over the 90 days, env in three values, 1,000
# customers, a user and a session on some rows, a body key on every row (so each answer signs URLs).
FILL = """
INSERT INTO requests (request_id, org_id, key_id, created_at, response_created_at, status, provider, target_url,
    path, method, is_stream, model, request_model, response_model, user_id, properties, session_id, delay_ms,
    time_to_first_token, prompt_tokens, completion_tokens, total_tokens, usage_source, cost, cost_source,
    cache_hit, rate_limited, retry_count, omit_request, omit_response, body_key, request_preview, response_preview)
SELECT gen_random_uuid(), 'org-' || (i % $2), 'key', ts, ts + interval '800 ms',
    CASE WHEN i % 50 = 0 THEN 500 ELSE 200 END, 'OPENAI', 'https://api.openai.com/v1/chat/completions',
    '/v1/chat/completions', 'POST', i % 3 = 0, m, m, m, CASE WHEN i % 4 = 0 THEN 'user-' || (i % 5000) END,
    jsonb_build_object('env', (ARRAY['prod', 'staging', 'dev'])[1 + i % 3], 'customer', 'c' || (i % 1000)),
    CASE WHEN i % 5 = 0 THEN 'sess-' || (i / 20) END, 300 + i % 700, 100 + i % 300, 200 + i % 50, 20 + i % 30,
    220 + i % 80, 'response', (i % 97) * 0.00001, 'genai-prices', i % 10 = 0, false, 0, false, false,
    'organizations/org-' || (i % $2) || '/requests/' || i || '/raw_request_response_body',
    'request text ' || i, 'response text ' || i
FROM (SELECT i, $3::timestamptz - (i::double precision / $1 * $4) * interval '1 day' AS ts,
             (ARRAY['gpt-4o-mini', 'gpt-4o', 'claude-sonnet-4'])[1 + i % 3] AS m
      FROM generate_series(1, $1) AS i) AS g
"""


def cases(now: datetime) -> dict[str, dict[str, Any]]:
    week_ago = (now - timedelta(days=7)).isoformat()

    def since(at: str) -> dict[str, Any]:
        return {"request_response_rmt": {"request_created_at": {"gte": at}}}

    prod = {"request_response_rmt": {"properties": {"env": {"equals": "prod"}}}}
    customer = {"request_response_rmt": {"properties": {"customer": {"equals": "c43"}}}}
    return {
        "property + 7-day range, page of 100": {
            "filter": {"left": since(week_ago), "operator": "and", "right": prod},
            "limit": 100,
        },
        "rare property + 7-day range, page of 100": {
            "filter": {"left": since(week_ago), "operator": "and", "right": customer},
            "limit": 100,
        },
        "property + 7-day range, page 10 (offset 900)": {
            "filter": {"left": since(week_ago), "operator": "and", "right": prod},
            "limit": 100,
            "offset": 900,
        },
        "no filter, newest 100": {"filter": "all", "limit": 100},
    }


async def fill(dsn: str, rows: int, now: datetime) -> float:
    logdb = PostgresLogDb(dsn, max_size=1)
    await logdb.migrate()
    month = month_start(now - timedelta(days=DAYS))
    while month <= now:
        await logdb.ensure_partitions(month)
        month = add_months(month, 1)
    await logdb.aclose()
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        await conn.execute(FILL, rows, ORGS, now, DAYS)
        await conn.execute("ANALYZE requests")
        return time.perf_counter() - started
    finally:
        await conn.close()


async def measure(dsn: str, repeat: int, now: datetime, data_dir: Path) -> dict[str, dict[str, float]]:
    keys = SqliteKeyStore(data_dir / "keys.sqlite3")
    org = Organisation(id="org-3", name="bench", created_at=now)
    await keys.put_org(org)
    plain, _ = await create_key(keys, org.id, "bench")
    api = QueryApi(PostgresQueries(dsn), Authenticator(keys, 60), BodyLinks(LocalBlobStore(data_dir / "blobs")))
    results: dict[str, dict[str, float]] = {}
    transport = httpx.ASGITransport(app=api.asgi())
    headers = {"Authorization": f"Bearer {plain}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench", headers=headers) as client:
        for name, body in cases(now).items():
            for _ in range(10):  # warm-up: pool, plan cache, buffers
                (await client.post("/v1/request/query", json=body)).raise_for_status()
            timings = []
            count = 0
            for _ in range(repeat):
                started = time.perf_counter()
                response = await client.post("/v1/request/query", json=body)
                timings.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
                count = len(response.json()["data"])
            timings.sort()
            results[name] = {
                "rows_returned": count,
                "p50_ms": round(statistics.median(timings), 2),
                "p99_ms": round(timings[min(len(timings) - 1, int(len(timings) * 0.99))], 2),
            }
            got = results[name]
            print(f"{name:48s} rows={count:4d} p50={got['p50_ms']:7.2f} ms p99={got['p99_ms']:7.2f} ms")
    await api.aclose()
    await keys.aclose()
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--out", type=Path, help="where to write the results (default bench/results/query-<UTC>.json)")
    args = parser.parse_args()
    name = f"heliport_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(args.dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')  # our own name: hex digits
    dsn = args.dsn.rsplit("/", 1)[0] + f"/{name}"
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        seconds = await fill(dsn, args.rows, now)
        print(f"filled {args.rows:,} rows in {seconds:.1f} s ({ORGS} organisations, {DAYS} days)")
        with tempfile.TemporaryDirectory() as tmp:
            results = await measure(dsn, args.repeat, now, Path(tmp))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    out = args.out or Path(__file__).parent / "results" / f"query-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps({"rows": args.rows, "orgs": ORGS, "days": DAYS, "repeat": args.repeat,
                               "fill_seconds": round(seconds, 1), "cases": results}, indent=2) + "\n")  # fmt: skip
    print(f"wrote {out}")


if __name__ == "__main__":
    asyncio.run(main())
