"""HQL (``/v1/helicone-sql/*``) over real HTTP, on SQLite and on PostgreSQL, with two organisations.

heliport runs on loopback with the log database of the parametrisation, seeded through the real log
writers. Every HQL statement of the seed documentation runs and is checked against the seeded rows;
organisation B's rows (distinctive model, user, session and cost) must never appear in A's answers,
whatever the statement tries; hostile statements are 400s naming ``sql``; saved queries and the CSV
download are confined the same way.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

import heliport.api.hql as hql_api
from heliport.api.app import QueryApi
from heliport.api.bodies import BodyLinks
from heliport.api.database import PostgresQueries, SqliteQueries
from heliport.app import Heliport
from heliport.auth import Authenticator, create_key
from heliport.config import Settings
from heliport.logs.row import RequestRow
from heliport.store.factory import open_blobs, open_cache_store, open_counter_store, open_query_db
from heliport.store.keys import Organisation, SqliteKeyStore
from heliport.store.logdb_postgres import PostgresLogDb
from heliport.store.logdb_sqlite import SqliteLogDb
from heliport.store.queue import MemoryQueue
from tests.harness import ServerThread
from tests.hql.examples import documented_statements
from tests.logs.records import chat_row
from tests.postgres import throwaway_database_sync

#: What only organisation B's rows hold: none of it may appear in an answer to A.
B_MARKERS = ("b-secret-model", "b-secret-user", "b-secret-session", "b-secret-body")


@dataclass
class Api:
    url: str
    a: httpx.Client
    b: httpx.Client
    org_a: str
    org_b: str
    dsn: str | None
    data_dir: Path


def _rows(org_a: str, org_b: str) -> list[RequestRow]:
    now = datetime.now(UTC)
    a = [
        chat_row(
            org_a,
            created_at=now - timedelta(hours=1),
            model="gpt-4o",
            request_model="gpt-4o",
            status=200,
            cost=Decimal("0.002"),
            user_id="u1",
            session_id="s1",
            properties={"environment": "prod"},
            prompt_tokens=10,
            completion_tokens=5,
            total_tokens=15,
            delay_ms=120.4,
            response_preview="hello from a",
        ),
        chat_row(
            org_a,
            created_at=now - timedelta(hours=2),
            model="gpt-4o",
            request_model="gpt-4o",
            status=500,
            cost=Decimal("0.001"),
            user_id="u2",
            session_id="s1",
            properties={"environment": "dev"},
        ),
        chat_row(
            org_a,
            created_at=now - timedelta(days=2),
            model="claude-3-opus",
            request_model="claude-3-opus",
            status=200,
            cost=Decimal("0.01"),
            user_id="u1",
            session_id="s2",
        ),
        chat_row(
            org_a,
            created_at=now - timedelta(days=10),
            model="gpt-4o",
            request_model="gpt-4o",
            status=429,
            cost=Decimal("0.004"),
            user_id="u3",
        ),
        chat_row(
            org_a,
            created_at=now - timedelta(days=40),
            model="gpt-4o",
            request_model="gpt-4o",
            status=200,
            cost=Decimal("1"),
            user_id="u4",
        ),
    ]
    b = [
        chat_row(org_b, created_at=now - timedelta(minutes=30 + i), model="b-secret-model",
                 request_model="b-secret-model", status=500, cost=Decimal("99"), user_id="b-secret-user",
                 session_id="b-secret-session", properties={"environment": "b-secret-env"},
                 response_preview="b-secret-body")
        for i in range(3)
    ]  # fmt: skip
    return a + b


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data_dir: Path = tmp_path_factory.mktemp(f"hql-{request.param}")
    if request.param == "sqlite":
        yield from _serve(data_dir, None)
    else:
        with throwaway_database_sync() as dsn:
            yield from _serve(data_dir, dsn)


def _serve(data_dir: Path, dsn: str | None) -> Iterator[Api]:
    settings = Settings(data_dir=data_dir, database_url=dsn)
    store = SqliteKeyStore(data_dir / "keys.sqlite3")

    async def setup() -> list[tuple[str, str]]:
        made = []
        for name in ("a", "b"):
            org = Organisation(id=f"org-{name}-{uuid.uuid4().hex[:6]}", name=name, created_at=datetime.now(UTC))
            await store.put_org(org)
            plain, _ = await create_key(store, org.id, name)
            made.append((org.id, plain))
        db = PostgresLogDb(dsn, max_size=1) if dsn else SqliteLogDb(data_dir / "logs.sqlite3")
        await db.migrate()
        rows = _rows(made[0][0], made[1][0])
        assert await db.insert_requests(rows) == len(rows)
        await db.aclose()
        return made

    (org_a, key_a), (org_b, key_b) = asyncio.run(setup())

    def make_api(authenticator: Authenticator) -> QueryApi:
        links = BodyLinks(open_blobs(settings), secret=settings.body_url_secret)
        return QueryApi(open_query_db(settings), authenticator, links, settings=settings)

    app = Heliport(
        settings,
        key_store=store,
        queue=MemoryQueue(),
        cache_store=open_cache_store(settings),
        counter_store=open_counter_store(settings),
        api_factory=make_api,
        steps=(),
    )
    server = ServerThread(app).start()
    a = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key_a}"}, timeout=60)
    b = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key_b}"}, timeout=60)
    try:
        yield Api(server.url, a, b, org_a, org_b, dsn, data_dir)
    finally:
        a.close()
        b.close()
        server.stop()


def data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["error"] is None, body
    return body["data"]


def refused(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["data"] is None and body["error"].startswith("Invalid sql"), body
    return str(body["error"])


def run(client: httpx.Client, sql: str) -> list[dict[str, Any]]:
    answer = data(client.post("/v1/helicone-sql/execute", json={"sql": sql}))
    assert set(answer) == {"rows", "elapsedMilliseconds", "size", "rowCount"}
    assert answer["rowCount"] == len(answer["rows"])
    assert answer["size"] == len(json.dumps(answer["rows"], separators=(",", ":")).encode())
    assert answer["elapsedMilliseconds"] >= 0
    for marker in B_MARKERS:
        assert marker not in json.dumps(answer), (marker, sql)
    rows: list[dict[str, Any]] = answer["rows"]
    return rows


# --- the documented examples ------------------------------------------------------------------------------


@pytest.mark.parametrize("sql", documented_statements())
def test_every_documented_example_runs_on_the_organisation_rows(api: Api, sql: str) -> None:
    rows = run(api.a, sql)
    assert rows, sql  # each example covers a window that holds some of A's seeded rows
    other = data(api.b.post("/v1/helicone-sql/execute", json={"sql": sql}))["rows"]
    assert "gpt-4o" not in json.dumps(other) and "u1" not in json.dumps(other)


def test_the_documented_examples_answer_what_the_rows_hold(api: Api) -> None:
    examples = {" ".join(s.split()): s for s in documented_statements()}
    by_text = {k.split(" FROM ")[0]: v for k, v in examples.items()}

    costly = run(api.a, by_text["SELECT request_created_at, request_model, response_body, provider_total_cost"])
    assert [r["provider_total_cost"] for r in costly] == [10_000_000, 2_000_000, 1_000_000]
    assert costly[1]["response_body"] == "hello from a" and costly[1]["request_model"] == "gpt-4o"
    assert len(costly[0]["request_created_at"]) == len("2025-01-01 00:00:00.000")

    error_rate = run(api.a, next(v for k, v in by_text.items() if "error_rate" in k))
    assert error_rate == [{"error_count": 1, "total_requests": 2, "error_rate": 0.5}]

    dau = run(api.a, next(v for k, v in by_text.items() if "dau" in k))
    assert sum(r["dau"] for r in dau) >= 3 and all(len(r["day"]) == 10 for r in dau)
    assert [r["day"] for r in dau] == sorted(r["day"] for r in dau)

    sessions = run(api.a, next(v for k, v in by_text.items() if "session_id" in k))
    assert sessions == [
        {"session_id": "s2", "requests": 1, "total_cost": 10_000_000},
        {"session_id": "s1", "requests": 2, "total_cost": 3_000_000},
    ]

    by_model = run(api.a, by_text["SELECT request_model, sum(cost) AS total_cost, COUNT() AS request_count"])
    assert by_model == [
        {"request_model": "claude-3-opus", "total_cost": 10_000_000, "request_count": 1},
        {"request_model": "gpt-4o", "total_cost": 7_000_000, "request_count": 3},
    ]

    usd = run(api.a, by_text["SELECT request_model, sum(cost) / 1000000000 AS total_cost_usd"])
    assert sorted((r["request_model"], round(r["total_cost_usd"], 9)) for r in usd) == [
        ("claude-3-opus", 0.01), ("gpt-4o", 0.003)
    ]  # fmt: skip

    star = run(api.a, by_text["SELECT *"])
    assert len(star) == 2
    assert {r["properties"].get("environment") for r in star} == {"prod", "dev"}
    assert all(r["properties"]["Helicone-Session-Id"] == "s1" for r in star)
    assert {r["latency"] for r in star} >= {120}


def test_functions_beyond_the_examples(api: Api) -> None:
    rows = run(
        api.a,
        "SELECT toStartOfDay(request_created_at) AS d, uniq(user_id) AS users, sumIf(cost, status = 200) AS ok_cost, "
        "if(count() > 1, 'many', 'one') AS size, multiIf(max(status) >= 500, 'err', max(status) >= 400, 'warn', 'ok') "
        "AS worst, toString(min(status)) AS low, lower(any_model) AS m "
        "FROM (SELECT request_created_at, user_id, cost, status, model AS any_model FROM request_response_rmt) AS t "
        "WHERE request_created_at >= now() - INTERVAL 1 MONTH GROUP BY d, any_model ORDER BY d, m",
    )
    assert [r["users"] for r in rows] == [1, 1, 2]
    assert rows[-1]["worst"] == "err" and rows[-1]["ok_cost"] == 2_000_000 and rows[-1]["size"] == "many"
    assert rows[0]["low"] == "429" and rows[0]["d"].endswith("00:00:00.000")
    env = run(api.a, "SELECT properties['Environment'] AS env, count() AS n FROM request_response_rmt "
                     "WHERE properties['environment'] != '' GROUP BY env ORDER BY env")  # fmt: skip
    assert env == [{"env": "dev", "n": 1}, {"env": "prod", "n": 1}]


# --- organisations ----------------------------------------------------------------------------------------

ESCAPES = [
    "SELECT count() AS n FROM request_response_rmt WHERE 1 = 1 OR 1 = 1",
    "SELECT count() AS n FROM request_response_rmt WHERE status = 200 OR TRUE",
    "SELECT count() AS n FROM request_response_rmt -- WHERE organization_id = 'x'",
    "SELECT count() AS n FROM /* other */ request_response_rmt",
    "SELECT count() AS n FROM request_response_rmt AS x, request_response_rmt AS y WHERE x.request_id = y.request_id",
    "SELECT (SELECT count() FROM request_response_rmt) AS n FROM request_response_rmt LIMIT 1",
    "SELECT count() AS n FROM (SELECT * FROM request_response_rmt WHERE 1 = 1 OR 1 = 1) AS t",
    "SELECT count() AS n FROM request_response_rmt WHERE request_id IN (SELECT request_id FROM request_response_rmt)",
    'SELECT count() AS n FROM "request_response_rmt"',
    "SELECT count() AS n FROM REQUEST_RESPONSE_RMT",
]


@pytest.mark.parametrize("sql", ESCAPES)
def test_another_organisations_rows_never_appear(api: Api, sql: str) -> None:
    assert run(api.a, sql) == [{"n": 5}]
    counted = data(api.b.post("/v1/helicone-sql/execute", json={"sql": sql}))["rows"]
    assert counted == [{"n": 3}]


def test_union_and_other_tables_are_refused_for_either_organisation(api: Api) -> None:
    for client in (api.a, api.b):
        for sql in (
            "SELECT model FROM request_response_rmt UNION ALL SELECT model FROM requests",
            "SELECT model FROM request_response_rmt UNION ALL SELECT model FROM request_response_rmt",
            "SELECT model FROM requests",
            "SELECT model FROM request_response_rmt; SELECT model FROM requests",
        ):
            refused(client.post("/v1/helicone-sql/execute", json={"sql": sql}))


def test_the_database_layer_is_read_only_and_confined(api: Api) -> None:
    async def check() -> None:
        db = PostgresQueries(api.dsn) if api.dsn else SqliteQueries(api.data_dir / "logs.sqlite3")
        try:
            # No HQL statement can write (the parser refuses), and the transaction could not either.
            with pytest.raises(Exception, match=r"(?i)read-only|readonly|query_only|attempt to write"):
                await db.read_only(api.org_a, "DELETE FROM requests", [], time_limit=5, max_rows=10)
            if api.dsn:
                # Row-level security: a statement that names no organisation still sees only its own.
                names, rows = await db.read_only(api.org_b, "SELECT count(*) AS n FROM requests", [],
                                                 time_limit=5, max_rows=10)  # fmt: skip
                assert names == ["n"] and rows == [(3,)]
            names, rows = await db.read_only(api.org_a, "SELECT 1 AS one UNION ALL SELECT 2", [],
                                             time_limit=5, max_rows=1)  # fmt: skip
            assert rows == [(1,)]  # max_rows cuts what is fetched
        finally:
            await db.aclose()
        # The DELETE changed nothing.
        assert run(api.a, "SELECT count() AS n FROM request_response_rmt") == [{"n": 5}]

    asyncio.run(check())


# --- limits and refusals ----------------------------------------------------------------------------------

HOSTILE = [
    "",
    "DROP TABLE requests",
    "SELECT * FROM requests",
    "SELECT org_id FROM request_response_rmt",
    "SELECT pg_sleep(40) FROM request_response_rmt",
    "SELECT * FROM request_response_rmt SETTINGS max_threads = 1",
    "SELECT * FROM system.tables",
    "SELECT * FROM url('http://example.com', CSV, 'a String')",
    "WITH t AS (SELECT 1) SELECT * FROM t",
    "SELECT current_setting('heliport.org_id') AS o FROM request_response_rmt",
    "SELECT status FROM request_response_rmt WHERE status = 1 / 0",  # the database refuses (PostgreSQL)
    "SELECT CAST('x' AS Int64) FROM request_response_rmt",
    "SELECT count() FROM request_response_rmt WHERE count() > 1",
]


@pytest.mark.parametrize("sql", HOSTILE)
def test_refused_statements_are_400s_that_say_why(api: Api, sql: str) -> None:
    answer = api.a.post("/v1/helicone-sql/execute", json={"sql": sql})
    if answer.status_code == 200 and api.dsn is None:
        # SQLite computes 1/0 as NULL and casts 'x' to 0 rather than refusing: no error to report.
        assert sql in (HOSTILE[10], HOSTILE[11]), answer.text
        return
    message = refused(answer)
    assert len(message) > len("Invalid sql: ")


def test_a_missing_or_mistyped_sql_is_a_400_naming_it(api: Api) -> None:
    for body in ({}, {"sql": 1}, {"sql": ""}, {"query": "SELECT 1"}):
        answer = api.a.post("/v1/helicone-sql/execute", json=body)
        assert answer.status_code == 400 and "sql" in answer.json()["error"]


def test_more_rows_than_the_cap_is_refused_not_cut(api: Api) -> None:
    # 5 rows to the 8th power: 390,625 rows, past the 300,000 cap.
    tables = ", ".join(f"request_response_rmt AS t{i}" for i in range(8))
    message = refused(api.a.post("/v1/helicone-sql/execute", json={"sql": f"SELECT 1 AS one FROM {tables}"}))
    assert "300,000" in message


def test_a_statement_past_the_time_limit_is_stopped(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hql_api, "TIME_LIMIT", 0.2)
    tables = ", ".join(f"request_response_rmt AS t{i}" for i in range(12))  # 5^12 rows to count
    message = refused(api.a.post("/v1/helicone-sql/execute", json={"sql": f"SELECT count() AS n FROM {tables}"}))
    assert "longer than" in message


# --- schema, download, saved queries ----------------------------------------------------------------------


def test_schema_lists_the_table_without_the_organisation(api: Api) -> None:
    tables = data(api.a.get("/v1/helicone-sql/schema"))
    assert [t["table_name"] for t in tables] == ["request_response_rmt"]
    names = {c["name"] for c in tables[0]["columns"]}
    documented = {"request_created_at", "request_model", "status", "user_id", "cost", "provider_total_cost",
                  "prompt_tokens", "completion_tokens", "total_tokens", "properties", "response_body"}  # fmt: skip
    assert documented <= names and "organization_id" not in names and "org_id" not in names
    assert all(isinstance(c["type"], str) and c["type"] for c in tables[0]["columns"])


def test_download_is_a_signed_csv_url_of_the_organisation_rows(api: Api) -> None:
    sql = "SELECT request_model, status, properties FROM request_response_rmt ORDER BY status, request_model"
    url = data(api.a.post("/v1/helicone-sql/download", json={"sql": sql}))
    assert isinstance(url, str) and url.startswith(api.url)
    fetched = httpx.get(url, timeout=30)  # no key: the URL is the proof
    assert fetched.status_code == 200 and fetched.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(fetched.text)))
    assert table[0] == ["request_model", "status", "properties"]
    assert [row[:2] for row in table[1:]] == [
        ["claude-3-opus", "200"], ["gpt-4o", "200"], ["gpt-4o", "200"], ["gpt-4o", "429"], ["gpt-4o", "500"]
    ]  # fmt: skip
    assert not any(marker in fetched.text for marker in B_MARKERS)
    # A changed statement or organisation, or a forged signature, is a 404.
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    for change in ({"org": api.org_b}, {"signature": "0" * 64}, {"expires": str(int(query["expires"]) + 1)},
                   {"sql": "U0VMRUNUIDEgRlJPTSByZXF1ZXN0X3Jlc3BvbnNlX3JtdA"}):  # fmt: skip
        forged = httpx.get(f"{api.url}/v1/helicone-sql/download/csv", params=query | change, timeout=30)
        assert forged.status_code == 404, forged.text
    refused(api.a.post("/v1/helicone-sql/download", json={"sql": "SELECT * FROM requests"}))


def test_saved_queries_crud_within_the_organisation(api: Api) -> None:
    made = data(api.a.post("/v1/helicone-sql/saved-query", json={"name": "errors", "sql": "SELECT 1"}))
    assert isinstance(made, list) and len(made) == 1
    query = made[0]
    assert set(query) == {"id", "organization_id", "name", "sql", "created_at", "updated_at"}
    assert query["organization_id"] == api.org_a and query["name"] == "errors"
    assert data(api.a.get(f"/v1/helicone-sql/saved-query/{query['id']}")) == query
    assert query in data(api.a.get("/v1/helicone-sql/saved-queries"))

    # B sees none of it and changes none of it.
    assert data(api.b.get("/v1/helicone-sql/saved-queries")) == []
    assert api.b.get(f"/v1/helicone-sql/saved-query/{query['id']}").status_code == 404
    assert api.b.put(f"/v1/helicone-sql/saved-query/{query['id']}", json={"name": "x", "sql": "y"}).status_code == 404
    assert api.b.delete(f"/v1/helicone-sql/saved-query/{query['id']}").status_code == 404
    data(api.b.post("/v1/helicone-sql/saved-queries/bulk-delete", json={"ids": [query["id"]]}))

    updated = data(api.a.put(f"/v1/helicone-sql/saved-query/{query['id']}",
                             json={"name": "renamed", "sql": "SELECT 2"}))  # fmt: skip
    assert updated["name"] == "renamed" and updated["sql"] == "SELECT 2" and updated["id"] == query["id"]
    assert updated["created_at"] == query["created_at"]

    for bad, field in (({"sql": "x"}, "name"), ({"name": "x"}, "sql"), ({"name": "", "sql": "x"}, "name"),
                       ({"name": "x" * 201, "sql": "x"}, "name")):  # fmt: skip
        answer = api.a.post("/v1/helicone-sql/saved-query", json=bad)
        assert answer.status_code == 400 and field in answer.json()["error"]

    other = data(api.a.post("/v1/helicone-sql/saved-query", json={"name": "other", "sql": "SELECT 3"}))[0]
    data(api.a.delete(f"/v1/helicone-sql/saved-query/{query['id']}"))
    assert api.a.get(f"/v1/helicone-sql/saved-query/{query['id']}").status_code == 404
    data(api.a.post("/v1/helicone-sql/saved-queries/bulk-delete", json={"ids": [other["id"], "missing"]}))
    assert data(api.a.get("/v1/helicone-sql/saved-queries")) == []
