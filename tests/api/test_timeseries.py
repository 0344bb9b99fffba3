"""``/v1/dashboard/timeseries`` (the overview's charts) over real HTTP, on SQLite and PostgreSQL.

Two organisations' rows interleave in one table. Every bucket is checked against a hand count of
organisation A's rows, the buckets' sums against ``/v1/dashboard/overview``'s totals for the same
body, and the increments, the time-zone alignment and the edges of a bucket (its first and last
millisecond) against the rule the module states.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from heliport.api.overview import MAX_BUCKETS, increment_for
from heliport.auth import create_key
from heliport.config import Settings
from heliport.logs.row import RequestRow
from heliport.store.keys import Organisation, SqliteKeyStore
from heliport.store.logdb_postgres import PostgresLogDb
from heliport.store.logdb_sqlite import SqliteLogDb
from tests.harness import serve_local
from tests.postgres import throwaway_database_sync

T0 = datetime(2026, 5, 4, 0, 0, tzinfo=UTC)  # a Monday, midnight UTC
MS = int(T0.timestamp() * 1000)
MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
DAY_WINDOW = {"startTimeUnixMs": MS, "endTimeUnixMs": MS + DAY}


def row(org: str, ms: int, **fields: Any) -> RequestRow:
    """A request ``ms`` milliseconds after T0."""
    values: dict[str, Any] = {
        "request_id": str(uuid.uuid4()),
        "org_id": org,
        "key_id": "k",
        "created_at": T0 + timedelta(milliseconds=ms),
        "status": 200,
        "provider": "OPENAI",
        "target_url": "https://api.openai.com/v1/chat/completions",
        "path": "/v1/chat/completions",
        "model": "gpt-4o-mini",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "delay_ms": 100.0,
        "cost": Decimal("0.25"),
    }
    values.update(fields)
    return RequestRow(**values)


def _rows(a: str, b: str) -> tuple[list[RequestRow], list[RequestRow]]:
    rows_a = [
        # bucket 0 of the day window (15-minute buckets): five latencies, two TTFTs, one error
        row(a, 0, delay_ms=5.0, time_to_first_token=10.0, cost=Decimal("1.5")),
        row(a, MINUTE, delay_ms=100.0, time_to_first_token=20.0, user_id="bob"),
        row(a, 2 * MINUTE, delay_ms=200.0, status=500, cost=None, prompt_tokens=None, completion_tokens=None),
        row(a, 3 * MINUTE, delay_ms=300.0, cache_hit=True, cost=Decimal(0)),
        row(a, 15 * MINUTE - 1, delay_ms=400.0, status=429, user_id="bob"),  # the bucket's last millisecond
        # bucket 1 starts exactly here
        row(a, 15 * MINUTE, delay_ms=None, prompt_tokens=7, completion_tokens=3),
        # bucket 10: a cache hit and a redirect (not 2xx: an error, as the overview counts it)
        row(a, 150 * MINUTE, cache_hit=True, cost=Decimal(0), status=302, user_id="bob"),
        # the last bucket (95) and, just outside the window on either side, two rows the day ignores
        row(a, DAY - 1, cost=Decimal("2")),
        row(a, -1, cost=Decimal("100")),
        row(a, DAY, cost=Decimal("100")),
    ]
    rows_b = [row(b, 0, cost=Decimal("99"), delay_ms=9999.0), row(b, 150 * MINUTE, status=500)]
    return rows_a, rows_b


@dataclass
class Served:
    a: httpx.Client
    b: httpx.Client
    empty: httpx.Client


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir: Path = tmp_path_factory.mktemp(f"timeseries-{request.param}")
    if request.param == "sqlite":
        yield from _serve(data_dir, None)
        return
    with throwaway_database_sync() as dsn:
        yield from _serve(data_dir, dsn)


def _serve(data_dir: Path, dsn: str | None) -> Iterator[Served]:
    store = SqliteKeyStore(data_dir / "keys.sqlite3")

    async def setup() -> list[str]:
        keys, orgs = [], []
        for name in ("a", "b", "empty"):
            org = Organisation(id=f"org-{name}-{uuid.uuid4().hex[:6]}", name=name, created_at=T0)
            await store.put_org(org)
            keys.append((await create_key(store, org.id, name))[0])
            orgs.append(org.id)
        rows_a, rows_b = _rows(orgs[0], orgs[1])
        db = PostgresLogDb(dsn, max_size=1) if dsn else SqliteLogDb(data_dir / "logs.sqlite3")
        await db.migrate()
        await db.insert_requests([*rows_a, *rows_b])
        await db.aclose()
        return keys

    keys = asyncio.run(setup())
    server = serve_local(Settings(data_dir=data_dir, database_url=dsn), store)
    clients = [
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10) for key in keys
    ]
    try:
        yield Served(*clients)
    finally:
        for client in clients:
            client.close()
        server.stop()


def _data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    assert response.json()["error"] is None
    return response.json()["data"]


def _series(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    return _data(client.post("/v1/dashboard/timeseries", json=body))  # type: ignore[no-any-return]


def _iso(ms: int) -> str:
    instant = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return f"{instant:%Y-%m-%dT%H:%M:%S}.{instant.microsecond // 1000:03d}Z"


def test_a_day_is_96_quarter_hours_each_counted_by_hand(served: Served) -> None:
    data = _series(served.a, {"timeFilter": DAY_WINDOW})
    assert (data["increment"], data["increment_ms"]) == ("15m", 15 * MINUTE)
    assert (data["start"], data["end"]) == (_iso(MS), _iso(MS + DAY))
    buckets = data["buckets"]
    assert len(buckets) == 96
    assert [b["time"] for b in buckets[:2]] == [_iso(MS), _iso(MS + 15 * MINUTE)]

    first = buckets[0]
    assert (first["requests"], first["errors"], first["cache_hits"]) == (5, 2, 1)
    assert first["cost"] == pytest.approx(1.5 + 0.25 + 0 + 0.25)
    assert (first["prompt_tokens"], first["completion_tokens"]) == (40, 20)
    # latencies 5, 100, 200, 300, 400: p50 200; p95 at rank 3.8, 300 + 0.8 * 100
    assert first["latency_p50"] == pytest.approx(200.0) and first["latency_p95"] == pytest.approx(380.0)
    assert first["ttft_p50"] == pytest.approx(15.0) and first["ttft_p95"] == pytest.approx(19.5)

    second = buckets[1]  # one row at its first millisecond, without a latency
    assert (second["requests"], second["prompt_tokens"], second["completion_tokens"]) == (1, 7, 3)
    assert second["latency_p50"] is None and second["ttft_p50"] is None

    assert (buckets[10]["requests"], buckets[10]["errors"], buckets[10]["cache_hits"]) == (1, 1, 1)
    assert buckets[95]["requests"] == 1 and buckets[95]["cost"] == pytest.approx(2.0)
    empty = buckets[50]
    assert empty == {
        "time": _iso(MS + 50 * 15 * MINUTE), "requests": 0, "errors": 0, "cost": 0.0, "prompt_tokens": 0,
        "completion_tokens": 0, "cache_hits": 0, "latency_p50": None, "latency_p95": None, "ttft_p50": None,
        "ttft_p95": None,
    }  # fmt: skip
    assert sum(b["requests"] for b in buckets) == 8


@pytest.mark.parametrize(
    "body",
    [
        {"timeFilter": DAY_WINDOW},
        {"timeFilter": {"startTimeUnixMs": MS - HOUR, "endTimeUnixMs": MS + 30 * DAY}},
        {},
        {"filter": {"request_response_rmt": {"user_id": {"equals": "bob"}}}},
        {"timeFilter": {"startTimeUnixMs": MS + 7.5 * MINUTE, "endTimeUnixMs": MS + HOUR + 0.5}},
    ],
)
def test_buckets_add_up_to_the_overviews_totals(served: Served, body: dict[str, Any]) -> None:
    totals = _data(served.a.post("/v1/dashboard/overview", json=body))["totals"]
    buckets = _series(served.a, body)["buckets"]
    for name in ("requests", "errors", "prompt_tokens", "completion_tokens", "cache_hits"):
        assert sum(b[name] for b in buckets) == totals[name], name
    assert sum(b["cost"] for b in buckets) == pytest.approx(totals["cost"])
    assert totals["requests"] > 0


@pytest.mark.parametrize(
    ("span_ms", "increment", "count"),
    [(HOUR, "1m", 60), (DAY, "15m", 96), (7 * DAY, "1h", 168), (30 * DAY, "6h", 120), (365 * DAY, "1w", 53)],
)
def test_the_increment_follows_the_range(served: Served, span_ms: int, increment: str, count: int) -> None:
    data = _series(served.a, {"timeFilter": {"startTimeUnixMs": MS, "endTimeUnixMs": MS + span_ms}})
    assert data["increment"] == increment and len(data["buckets"]) == count
    assert 30 <= len(data["buckets"]) <= MAX_BUCKETS


def test_increment_for_stays_within_the_bucket_budget() -> None:
    for span in (1, MINUTE, 3 * HOUR, 2 * DAY, 90 * DAY, 3650 * DAY, 10_000 * 365 * DAY):
        label, width = increment_for(span)
        assert -(-span // width) <= MAX_BUCKETS, (span, label)
    assert increment_for(10 * 365 * DAY)[0] == "3w"


def test_buckets_start_on_local_hours_and_mondays(served: Served) -> None:
    # UTC+5:30 (getTimezoneOffset() is -330): hourly buckets start at :30 UTC
    body = {"timeFilter": {"startTimeUnixMs": MS, "endTimeUnixMs": MS + 7 * DAY}, "timeZoneDifference": -330}
    data = _series(served.a, body)
    assert data["increment"] == "1h" and data["start"] == _iso(MS - 30 * MINUTE)
    assert len(data["buckets"]) == 169  # the range's first half hour is in the bucket before 00:30
    # 00:00-00:30 UTC holds bucket 0's rows (the 15-minute ones and 00:15) and nothing else
    assert data["buckets"][0]["requests"] == 6
    # a year at UTC-4 (getTimezoneOffset() 240): weekly buckets start on Monday 00:00 local, 04:00 UTC
    year = {"timeFilter": {"startTimeUnixMs": MS, "endTimeUnixMs": MS + 365 * DAY}, "timeZoneDifference": 240}
    weekly = _series(served.a, year)
    assert weekly["increment"] == "1w" and weekly["start"] == _iso(MS - 7 * DAY + 4 * HOUR)
    assert weekly["buckets"][0]["requests"] == 7 and weekly["buckets"][1]["requests"] == 2


def test_without_a_time_filter_the_range_is_the_requests_own(served: Served) -> None:
    data = _series(served.a, {})
    # first row at T0 - 1 ms, last at T0 + 1 day: a day and 2 ms is 97 quarter hours from 23:45
    assert data["increment"] == "15m" and data["start"] == _iso(MS - 15 * MINUTE)
    assert data["end"] == _iso(MS + DAY + 15 * MINUTE) and len(data["buckets"]) == 98
    assert sum(b["requests"] for b in data["buckets"]) == 10
    assert _series(served.empty, {}) == {"increment": "1m", "increment_ms": MINUTE, "start": None, "end": None,
                                         "buckets": []}  # fmt: skip


def test_the_filter_narrows_every_bucket(served: Served) -> None:
    body = {"timeFilter": DAY_WINDOW, "filter": {"request_response_rmt": {"user_id": {"equals": "bob"}}}}
    buckets = _series(served.a, body)["buckets"]
    assert [(i, b["requests"]) for i, b in enumerate(buckets) if b["requests"]] == [(0, 2), (10, 1)]
    assert buckets[0]["latency_p50"] == pytest.approx(250.0)


def test_other_organisations_see_only_their_own(served: Served) -> None:
    buckets = _series(served.b, {"timeFilter": DAY_WINDOW})["buckets"]
    assert [(i, b["requests"]) for i, b in enumerate(buckets) if b["requests"]] == [(0, 1), (10, 1)]
    assert buckets[0]["cost"] == pytest.approx(99) and buckets[0]["latency_p50"] == pytest.approx(9999.0)
    assert all(b["requests"] == 0 for b in _series(served.empty, {"timeFilter": DAY_WINDOW})["buckets"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timeFilter": {"startTimeUnixMs": MS, "endTimeUnixMs": MS}}, "timeFilter"),
        ({"timeFilter": {"startTimeUnixMs": 1e300, "endTimeUnixMs": 1}}, "timeFilter.startTimeUnixMs"),
        ({"timeZoneDifference": 5000}, "timeZoneDifference"),
        ({"timeZoneDifference": "60"}, "timeZoneDifference"),
        ({"filter": {"request_response_rmt": {"nope": {"equals": 1}}}}, "filter"),
    ],
)
def test_bad_bodies_are_a_400_naming_the_field(served: Served, body: dict[str, Any], field: str) -> None:
    response = served.a.post("/v1/dashboard/timeseries", json=body)
    assert response.status_code == 400 and field in response.json()["error"], response.text


def test_the_widest_range_is_answered(served: Served) -> None:
    body = {"timeFilter": {"startTimeUnixMs": -62_135_596_800_000, "endTimeUnixMs": 253_402_300_799_999}}
    data = _series(served.a, body)
    assert len(data["buckets"]) <= MAX_BUCKETS + 1
    assert sum(b["requests"] for b in data["buckets"]) == 10


def test_a_key_is_required(served: Served) -> None:
    response = httpx.post(str(served.a.base_url) + "/v1/dashboard/timeseries", json={})
    assert response.status_code == 401
