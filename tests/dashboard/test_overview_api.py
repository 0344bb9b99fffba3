"""``/v1/dashboard/overview`` and ``/v1/dashboard/session-tree`` over real HTTP, on SQLite and PostgreSQL.

Two organisations' rows interleave in one table; every figure is checked against a hand count of
organisation A's rows, so a leak from B, or a dialect that aggregates differently, shows.
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

from heliport.auth import create_key
from heliport.config import Settings
from heliport.logs.row import RequestRow
from heliport.store.keys import Organisation, SqliteKeyStore
from heliport.store.logdb import DeadLetter
from heliport.store.logdb_postgres import PostgresLogDb
from heliport.store.logdb_sqlite import SqliteLogDb
from tests.harness import serve_local
from tests.postgres import throwaway_database_sync

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
MS = int(T0.timestamp() * 1000)


def row(org: str, minutes: int, **fields: Any) -> RequestRow:
    values: dict[str, Any] = {
        "request_id": str(uuid.uuid4()),
        "org_id": org,
        "key_id": "k",
        "created_at": T0 + timedelta(minutes=minutes),
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


@dataclass
class Served:
    a: httpx.Client
    b: httpx.Client
    rows_a: list[RequestRow]


def _rows(a: str, b: str) -> tuple[list[RequestRow], list[RequestRow]]:
    original = row(
        a,
        0,
        user_id="alice",
        session_id="s1",
        session_path="/plan",
        session_name="Trip",
        properties={"env": "prod"},
        delay_ms=100.0,
        time_to_first_token=10.0,
        cost=Decimal("1.5"),
    )
    rows_a = [
        original,
        row(
            a,
            1,
            user_id="alice",
            session_id="s1",
            session_path="/plan/search",
            properties={"env": "prod"},
            delay_ms=200.0,
            time_to_first_token=20.0,
        ),
        row(a, 2, user_id="bob", model="gpt-4o", provider="OPENAI", properties={"env": "dev"}, delay_ms=300.0),
        row(a, 3, user_id="bob", status=500, delay_ms=400.0, cost=None, prompt_tokens=None, completion_tokens=None),
        row(
            a,
            4,
            cache_hit=True,
            cache_reference_id=original.request_id,
            cost=Decimal(0),
            delay_ms=5.0,
            cache_latency_saved_ms=100.0,
            provider="ANTHROPIC",
            model="claude-3-5-haiku",
        ),
        row(a, 600, user_id="late"),  # outside the time range the tests ask for
    ]
    rows_b = [
        row(b, 1, user_id="alice", session_id="s1", session_path="/secret", properties={"env": "prod"},
            cost=Decimal("99"), delay_ms=9999.0),
    ]  # fmt: skip
    return rows_a, rows_b


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir: Path = tmp_path_factory.mktemp(f"overview-{request.param}")
    if request.param == "sqlite":
        yield from _serve(data_dir, None)
        return
    with throwaway_database_sync() as dsn:
        yield from _serve(data_dir, dsn)


def _serve(data_dir: Path, dsn: str | None) -> Iterator[Served]:
    store = SqliteKeyStore(data_dir / "keys.sqlite3")

    async def setup() -> tuple[list[str], list[RequestRow]]:
        keys, orgs = [], []
        for name in ("a", "b"):
            org = Organisation(id=f"org-{name}-{uuid.uuid4().hex[:6]}", name=name, created_at=T0)
            await store.put_org(org)
            keys.append((await create_key(store, org.id, name))[0])
            orgs.append(org.id)
        rows_a, rows_b = _rows(orgs[0], orgs[1])
        db = PostgresLogDb(dsn, max_size=1) if dsn else SqliteLogDb(data_dir / "logs.sqlite3")
        await db.migrate()
        await db.insert_requests([*rows_a, *rows_b])
        # two of a's records were set aside by the log writer; b has none
        letter = DeadLetter(org_id=orgs[0], request_id=None, failed_at=T0, attempts=3, error="refused", record=b"{}")
        await db.add_dead_letters([letter, letter])
        await db.aclose()
        return keys, rows_a

    keys, rows_a = asyncio.run(setup())
    server = serve_local(Settings(data_dir=data_dir, database_url=dsn), store)
    a = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {keys[0]}"}, timeout=10)
    b = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {keys[1]}"}, timeout=10)
    try:
        yield Served(a, b, rows_a)
    finally:
        a.close()
        b.close()
        server.stop()


WINDOW = {"startTimeUnixMs": MS, "endTimeUnixMs": MS + 10 * 60_000}


def _data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    assert response.json()["error"] is None
    return response.json()["data"]


def test_totals_percentiles_and_cache_savings(served: Served) -> None:
    data = _data(served.a.post("/v1/dashboard/overview", json={"timeFilter": WINDOW, "property": "env"}))
    t = data["totals"]
    assert (t["requests"], t["errors"], t["users"], t["sessions"]) == (5, 1, 2, 1)
    assert t["error_rate"] == pytest.approx(0.2)
    assert t["cost"] == pytest.approx(1.5 + 0.25 + 0.25 + 0)
    assert (t["prompt_tokens"], t["completion_tokens"], t["total_tokens"]) == (40, 20, 60)
    assert t["cache_hits"] == 1
    assert t["cache_saved_cost"] == pytest.approx(1.5)  # the replayed original's cost
    assert t["cache_saved_latency_ms"] == pytest.approx(100.0)
    # latencies 5, 100, 200, 300, 400: p50 is 200; p95 interpolates 300 + 0.8 * 100
    assert t["latency_p50"] == pytest.approx(200.0)
    assert t["latency_p95"] == pytest.approx(380.0)
    assert t["ttft_p50"] == pytest.approx(15.0) and t["ttft_p95"] == pytest.approx(19.5)

    models = {g["key"]: g for g in data["by_model"]}
    assert models["gpt-4o-mini"]["requests"] == 3 and models["gpt-4o-mini"]["errors"] == 1
    assert data["by_model"][0]["key"] == "gpt-4o-mini"
    assert {g["key"]: g["requests"] for g in data["by_provider"]} == {"OPENAI": 4, "ANTHROPIC": 1}
    assert {g["key"]: g["requests"] for g in data["by_user"]} == {"alice": 2, "bob": 2, None: 1}
    assert {g["key"]: g["requests"] for g in data["by_property"]} == {"prod": 2, "dev": 1, None: 2}
    assert {g["key"]: g["cost"] for g in data["by_property"]}["prod"] == pytest.approx(1.75)


def test_filter_and_limit_narrow_every_figure(served: Served) -> None:
    body = {"filter": {"request_response_rmt": {"user_id": {"equals": "bob"}}}, "limit": 1}
    data = _data(served.a.post("/v1/dashboard/overview", json=body))
    assert data["totals"]["requests"] == 2 and data["totals"]["latency_p50"] == pytest.approx(350.0)
    assert len(data["by_model"]) == 1 and data["by_property"] == []


def test_empty_range_has_zeros_and_no_percentiles(served: Served) -> None:
    window = {"startTimeUnixMs": 0, "endTimeUnixMs": 1000}
    t = _data(served.a.post("/v1/dashboard/overview", json={"timeFilter": window}))["totals"]
    assert t["requests"] == 0 and t["error_rate"] == 0 and t["cost"] == 0
    assert t["latency_p50"] is None and t["ttft_p95"] is None


def test_other_organisation_sees_only_its_own(served: Served) -> None:
    data = _data(served.b.post("/v1/dashboard/overview", json={"timeFilter": WINDOW}))
    assert data["totals"]["requests"] == 1 and data["totals"]["cost"] == pytest.approx(99)
    assert data["dead_letters"] == 0
    assert _data(served.a.post("/v1/dashboard/overview", json={"timeFilter": WINDOW}))["dead_letters"] == 2
    tree = _data(served.b.post("/v1/dashboard/session-tree", json={"sessionId": "s1"}))
    assert [c["session_path"] for c in tree] == ["/secret"]


def test_session_tree_lists_calls_with_paths_in_time_order(served: Served) -> None:
    tree = _data(served.a.post("/v1/dashboard/session-tree", json={"sessionId": "s1"}))
    assert [c["session_path"] for c in tree] == ["/plan", "/plan/search"]
    assert tree[0]["request_id"] == served.rows_a[0].request_id
    assert tree[0]["session_name"] == "Trip" and tree[0]["cost"] == pytest.approx(1.5)
    assert tree[0]["created_at"] == "2026-05-01T09:00:00.000Z"
    assert _data(served.a.post("/v1/dashboard/session-tree", json={"sessionId": "nope"})) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timeFilter": {"startTimeUnixMs": 1e300, "endTimeUnixMs": 1}}, "timeFilter.startTimeUnixMs"),
        ({"limit": 0}, "limit"),
        ({"property": ""}, "property"),
        ({"filter": {"request_response_rmt": {"nope": {"equals": 1}}}}, "filter"),
    ],
)
def test_bad_bodies_are_a_400_naming_the_field(served: Served, body: dict[str, Any], field: str) -> None:
    response = served.a.post("/v1/dashboard/overview", json=body)
    assert response.status_code == 400 and field in response.json()["error"]


def test_a_key_is_required(served: Served) -> None:
    response = httpx.post(str(served.a.base_url) + "/v1/dashboard/overview", json={})
    assert response.status_code == 401
