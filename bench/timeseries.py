"""The overview's time series (``POST /v1/dashboard/timeseries``) over the 1,000,000-row log, on PostgreSQL.

The data set is ``bench/query.py``'s (its ``fill``: ``--rows`` rows, default 1,000,000, over 90 days and
10 organisations, so the measured organisation holds a tenth of them), in a throwaway database on the
local server. The calls go through the real query API (Starlette app, key check, filter compiler,
row-level security transaction) over httpx's in-process ASGI transport, with the ranges the dashboard
offers: the last 24 hours (15-minute buckets), 7 days (hourly), 30 days (6-hourly) and all time (the
organisation's 90 days, 12-hourly), plus the last 7 days narrowed by a property filter. Each case runs
``--repeat`` times after a warm-up; p50 and p99 in ms.

    .venv/bin/python bench/timeseries.py [--rows 1000000] [--repeat 50] [--dsn postgresql://postgres@127.0.0.1:5432/postgres]

Results: printed, and written to ``bench/results/timeseries-<UTC>.json``.
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import httpx

from bench.query import DAYS, ORGS, fill
from heliport.api.app import QueryApi
from heliport.api.bodies import BodyLinks
from heliport.api.database import PostgresQueries
from heliport.auth import Authenticator, create_key
from heliport.store.blobs import LocalBlobStore
from heliport.store.keys import Organisation, SqliteKeyStore

HOUR_MS = 3_600_000


def cases(now: datetime) -> dict[str, dict[str, Any]]:
    end = now.timestamp() * 1000 + 60_000  # as the dashboard asks: up to a minute from now

    def last(hours: int) -> dict[str, Any]:
        return {"timeFilter": {"startTimeUnixMs": end - hours * HOUR_MS, "endTimeUnixMs": end}, "timeZoneDifference": 0}

    prod = {"request_response_rmt": {"properties": {"env": {"equals": "prod"}}}}
    return {
        "last 24 hours (15-minute buckets)": last(24),
        "last 7 days (hourly)": last(7 * 24),
        "last 30 days (6-hourly)": last(30 * 24),
        "all time: 90 days (12-hourly)": {"timeZoneDifference": 0},
        "last 7 days, env = prod (hourly)": {**last(7 * 24), "filter": prod},
    }


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
            for _ in range(5):  # warm-up: pool, plan cache, buffers
                (await client.post("/v1/dashboard/timeseries", json=body)).raise_for_status()
            timings = []
            data: dict[str, Any] = {}
            for _ in range(repeat):
                started = time.perf_counter()
                response = await client.post("/v1/dashboard/timeseries", json=body)
                timings.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
                data = response.json()["data"]
            timings.sort()
            requests = sum(b["requests"] for b in data["buckets"])
            results[name] = {
                "buckets": len(data["buckets"]),
                "requests": requests,
                "p50_ms": round(statistics.median(timings), 2),
                "p99_ms": round(timings[min(len(timings) - 1, int(len(timings) * 0.99))], 2),
            }
            got = results[name]
            print(
                f"{name:36s} {data['increment']:>4s} x {len(data['buckets']):3d} buckets, {requests:7,d} rows"
                f"  p50={got['p50_ms']:8.2f} ms p99={got['p99_ms']:8.2f} ms"
            )
    await api.aclose()
    await keys.aclose()
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--out", type=Path, help="where to write the results (default bench/results/timeseries-<UTC>.json)"
    )
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
    out = args.out or Path(__file__).parent / "results" / f"timeseries-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps({"rows": args.rows, "orgs": ORGS, "days": DAYS, "repeat": args.repeat,
                               "fill_seconds": round(seconds, 1), "cases": results}, indent=2) + "\n")  # fmt: skip
    print(f"wrote {out}")


if __name__ == "__main__":
    asyncio.run(main())
