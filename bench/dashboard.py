"""Dashboard calls over a 10,000-row organisation (SQLite, as ``heliport serve`` runs it).

Stores 10,000 rows of one organisation (a day of traffic, 50 users, 300 sessions) with the real
SQLite log adapter, then times the calls the dashboard's pages make, through the real query API
over httpx's in-process ASGI transport: 3 warm-up calls, then 30 timed. Usage:

    .venv/bin/python bench/dashboard.py
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from heliport.api.app import QueryApi
from heliport.api.bodies import BodyLinks
from heliport.api.database import SqliteQueries
from heliport.auth import Authenticator, create_key
from heliport.logs.row import RequestRow
from heliport.store.blobs import LocalBlobStore
from heliport.store.keys import Organisation, SqliteKeyStore
from heliport.store.logdb_sqlite import SqliteLogDb

ROWS = 10_000


def _row(i: int, now: datetime) -> RequestRow:
    return RequestRow(
        request_id=str(uuid.uuid4()),
        org_id="org",
        key_id="key",
        created_at=now - timedelta(seconds=8 * i),
        status=200 if i % 20 else 500,
        provider="OPENAI",
        target_url="https://api.openai.com/v1/chat/completions",
        path="/v1/chat/completions",
        model=("gpt-4o-mini", "gpt-4o")[i % 2],
        user_id=f"u{i % 50}",
        session_id=f"s{i % 300}",
        properties={"env": ("prod", "dev")[i % 2]},
        prompt_tokens=20,
        completion_tokens=10,
        total_tokens=30,
        delay_ms=100.0 + i % 500,
        time_to_first_token=50.0,
        cost=Decimal("0.0001"),
    )


async def main() -> None:
    data = Path(tempfile.mkdtemp())
    now = datetime.now(UTC)
    keys = SqliteKeyStore(data / "keys.sqlite3")
    await keys.put_org(Organisation(id="org", name="bench", created_at=now))
    plain, _ = await create_key(keys, "org", "bench")
    db = SqliteLogDb(data / "logs.sqlite3")
    await db.migrate()
    await db.insert_requests([_row(i, now) for i in range(ROWS)])
    await db.aclose()
    api = QueryApi(SqliteQueries(data / "logs.sqlite3"), Authenticator(keys, 60), BodyLinks(LocalBlobStore(data)))
    window = {"startTimeUnixMs": (now - timedelta(days=1)).timestamp() * 1000, "endTimeUnixMs": now.timestamp() * 1000}
    prod = {"request_response_rmt": {"properties": {"env": {"equals": "prod"}}}}
    calls: dict[str, tuple[str, dict[str, Any]]] = {
        "overview (24 h, by env)": ("/v1/dashboard/overview", {"timeFilter": window, "property": "env"}),
        "requests, page of 50": ("/v1/request/query", {"filter": "all", "limit": 50}),
        "requests by property, page of 50": ("/v1/request/query", {"filter": prod, "limit": 50}),
        "sessions, page of 50 (of 300)": (
            "/v1/session/query",
            {"search": "", "timeFilter": window, "timezoneDifference": 0, "filter": "all", "limit": 50},
        ),
        "users, page of 50": ("/v1/user/metrics/query", {"filter": "all", "offset": 0, "limit": 50}),
    }
    transport = httpx.ASGITransport(app=api.asgi())
    headers = {"Authorization": f"Bearer {plain}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench", headers=headers) as client:
        for name, (path, body) in calls.items():
            for _ in range(3):
                (await client.post(path, json=body)).raise_for_status()
            timings = []
            for _ in range(30):
                started = time.perf_counter()
                response = await client.post(path, json=body)
                timings.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
            timings.sort()
            print(f"{name:36s} p50 {statistics.median(timings):6.1f} ms  max {timings[-1]:6.1f} ms")
    await api.aclose()
    await keys.aclose()


if __name__ == "__main__":
    asyncio.run(main())
