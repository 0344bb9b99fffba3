"""The query API over real HTTP: heliport on loopback, two organisations' rows in the same table.

Each case runs on SQLite and on PostgreSQL. The rows are stored by the real log database adapters
(and their bodies in the real blob store); the API is reached with httpx, the way Helicone's clients
reach Helicone. ORG_A and ORG_B share a user id, a session id and property names, and their rows
interleave in time, so a query that leaked across organisations would show it.
"""

from __future__ import annotations

import asyncio
import gzip
import json
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
from heliport.logs.consumer import body_key
from heliport.logs.row import RequestRow
from heliport.store.blobs import LocalBlobStore
from heliport.store.keys import Organisation, SqliteKeyStore
from heliport.store.logdb_postgres import PostgresLogDb
from heliport.store.logdb_sqlite import SqliteLogDb
from tests.harness import serve_local
from tests.postgres import throwaway_database, throwaway_database_sync

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
EVIL = "x'); DROP TABLE requests;--"

#: HeliconeRequest's documented required fields (seeds/docs/rest__request__post-v1requestquery.md).
HELICONE_REQUEST_REQUIRED = {
    "response_id", "response_created_at", "response_status", "response_model", "request_id",
    "request_created_at", "request_body", "request_path", "request_user_id", "request_properties",
    "request_model", "model_override", "helicone_user", "provider", "delay_ms", "time_to_first_token",
    "total_tokens", "prompt_tokens", "prompt_cache_write_tokens", "prompt_cache_read_tokens",
    "completion_tokens", "reasoning_tokens", "prompt_audio_tokens", "completion_audio_tokens", "cost",
    "prompt_id", "prompt_version", "llmSchema", "country_code", "asset_ids", "asset_urls", "scores",
    "properties", "assets", "target_url", "model", "cache_reference_id", "cache_enabled",
    "ai_gateway_body_mapping",
}  # fmt: skip


def row(org: str, minutes: int, **fields: Any) -> RequestRow:
    values: dict[str, Any] = {
        "request_id": str(uuid.uuid4()),
        "org_id": org,
        "key_id": "k-" + org,
        "created_at": T0 + timedelta(minutes=minutes),
        "response_created_at": T0 + timedelta(minutes=minutes, seconds=1),
        "status": 200,
        "provider": "OPENAI",
        "target_url": "https://api.openai.com/v1/chat/completions",
        "path": "/v1/chat/completions",
        "model": "gpt-4o-mini",
        "request_model": "gpt-4o-mini",
        "response_model": "gpt-4o-mini-2024-07-18",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "usage_source": "response",
        "delay_ms": 100.0,
    }
    values.update(fields)
    if isinstance(values.get("cost"), float):
        values["cost"] = Decimal(str(values["cost"]))
    return RequestRow(**values)


@dataclass
class Api:
    url: str
    a: httpx.Client
    b: httpx.Client
    rows_a: list[RequestRow]
    rows_b: list[RequestRow]
    key_a: str
    dsn: str | None

    def ids(self, rows: list[RequestRow]) -> set[str]:
        return {r.request_id for r in rows}


def _rows(org_a: str, org_b: str) -> tuple[list[RequestRow], list[RequestRow]]:
    a = [
        row(
            org_a,
            0,
            user_id="shared-user",
            session_id="sess-1",
            session_name="Checkout",
            cost=0.5,
            properties={"env": "prod", "team": "red"},
            body_key=body_key(org_a, "placeholder"),
        ),
        row(org_a, 10, user_id="alice", session_id="sess-1", model="gpt-4o", cost=2.0, properties={"env": "dev"}),
        row(org_a, 20, user_id="shared-user", status=500, cost=0.0, properties={EVIL: "evil"}, rate_limited=True),
        row(org_a, 30, cache_hit=True, cache_reference_id=str(uuid.uuid4()), cost=0.0),
    ]
    b = [
        row(org_b, 5, user_id="shared-user", session_id="sess-1", session_name="Secret B", cost=100.0,
            properties={"env": "prod", "b-secret": "1"}),
        row(org_b, 15, user_id="bob", model="gpt-4o", cost=50.0, properties={"env": "dev"}),
    ]  # fmt: skip
    a[0].body_key = body_key(org_a, a[0].request_id)
    return a, b


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data_dir: Path = tmp_path_factory.mktemp(f"api-{request.param}")
    if request.param == "sqlite":
        yield from _serve(data_dir, None)
    else:
        with throwaway_database_sync() as dsn:
            yield from _serve(data_dir, dsn)


def _serve(data_dir: Path, dsn: str | None) -> Iterator[Api]:
    store = SqliteKeyStore(data_dir / "keys.sqlite3")

    async def setup() -> tuple[str, str, list[RequestRow], list[RequestRow]]:
        keys = []
        orgs = []
        for name in ("a", "b"):
            org = Organisation(id=f"org-{name}-{uuid.uuid4().hex[:6]}", name=name, created_at=T0)
            await store.put_org(org)
            plain, _ = await create_key(store, org.id, name)
            keys.append(plain)
            orgs.append(org.id)
        rows_a, rows_b = _rows(orgs[0], orgs[1])
        db = PostgresLogDb(dsn, max_size=1) if dsn else SqliteLogDb(data_dir / "logs.sqlite3")
        await db.migrate()
        assert await db.insert_requests([*rows_a[:2], rows_b[0], *rows_a[2:], rows_b[1]]) == 6
        await db.aclose()
        blobs = LocalBlobStore(data_dir / "blobs")
        bodies = {"request": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
                  "response": {"choices": [{"message": {"role": "assistant", "content": "hello"}}]}}  # fmt: skip
        assert rows_a[0].body_key is not None
        await blobs.put(rows_a[0].body_key, gzip.compress(json.dumps(bodies).encode()), content_encoding="gzip")
        return keys[0], keys[1], rows_a, rows_b

    key_a, key_b, rows_a, rows_b = asyncio.run(setup())
    server = serve_local(Settings(data_dir=data_dir, database_url=dsn), store)
    a = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key_a}"}, timeout=10)
    b = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key_b}"}, timeout=10)
    try:
        yield Api(server.url, a, b, rows_a, rows_b, key_a, dsn)
    finally:
        a.close()
        b.close()
        server.stop()


def data(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] is None
    return body["data"]


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["data"] is None and isinstance(body["error"], str)
    return body["error"]


def query(client: httpx.Client, filter: Any = "all", path: str = "/v1/request/query", **body: Any) -> list[dict]:
    return data(client.post(path, json={"filter": filter, **body}))


# --- isolation -------------------------------------------------------------------------------------


def test_each_key_sees_only_its_organisations_requests(api: Api) -> None:
    got_a = query(api.a)
    got_b = query(api.b)
    assert {r["request_id"] for r in got_a} == api.ids(api.rows_a)
    assert {r["request_id"] for r in got_b} == api.ids(api.rows_b)
    for item in got_a:
        assert set(item) >= HELICONE_REQUEST_REQUIRED
    # Newest first by default.
    assert [r["request_created_at"] for r in got_a] == sorted((r["request_created_at"] for r in got_a), reverse=True)


@pytest.mark.parametrize(
    "filter",
    [
        {"left": {"request_response_rmt": {"model": {"equals": "nothing"}}}, "operator": "or", "right": "all"},
        {"left": "all", "operator": "or", "right": {"request_response_rmt": {"user_id": {"equals": "shared-user"}}}},
        {"request_response_rmt": {"properties": {"env": {"equals": "prod"}}}},
        {"properties": {"b-secret": {"equals": "1"}}},
        {"request": {"user_id": {"equals": "bob"}}},
    ],
)
def test_no_filter_reaches_another_organisation(api: Api, filter: Any) -> None:
    got = query(api.a, filter)
    assert {r["request_id"] for r in got} <= api.ids(api.rows_a)


def test_an_organisation_filter_cannot_name_another_organisation(api: Api) -> None:
    other = api.rows_b[0].org_id
    response = api.a.post(
        "/v1/request/query", json={"filter": {"request_response_rmt": {"organization_id": {"equals": other}}}}
    )
    if response.status_code == 200:
        assert {r["request_id"] for r in data(response)} <= api.ids(api.rows_a)
    else:
        assert "organization_id" in error(response, 400)


def test_another_organisations_request_is_not_found(api: Api) -> None:
    theirs = api.rows_b[0].request_id
    assert "No request" in error(api.a.get(f"/v1/request/{theirs}"), 404)
    assert data(api.a.post("/v1/request/query-ids", json={"requestIds": [theirs]})) == []
    for method, path, body in [
        ("POST", f"/v1/request/{theirs}/feedback", {"rating": True}),
        ("PUT", f"/v1/request/{theirs}/property", {"key": "env", "value": "hijacked"}),
        ("POST", f"/v1/request/{theirs}/score", {"scores": {"quality": 1}}),
        ("POST", "/v1/feedback", {"helicone-id": theirs, "rating": False}),
    ]:
        error(api.a.request(method, path, json=body), 404)
    # And nothing changed on their side.
    mine = data(api.b.get(f"/v1/request/{theirs}"))
    assert mine["properties"] == {"env": "prod", "b-secret": "1"}
    assert mine["scores"] == {} and mine["feedback_rating"] is None


def test_aggregates_count_only_the_callers_rows(api: Api) -> None:
    window = {"startTimeUnixMs": 0, "endTimeUnixMs": 4102444800000}
    sessions = data(api.a.post("/v1/session/query", json={"search": "", "timeFilter": window,
                                                          "timezoneDifference": 0, "filter": "all"}))  # fmt: skip
    assert [(s["session_id"], s["session_name"], s["total_requests"]) for s in sessions] == [("sess-1", "Checkout", 2)]
    assert sessions[0]["total_cost"] == pytest.approx(2.5)
    users = data(api.a.post("/v1/user/query", json={}))
    assert {u["user_id"]: u["count"] for u in users} == {"shared-user": 2, "alice": 1}
    metrics = data(api.a.post("/v1/user/metrics/query", json={"filter": "all", "offset": 0, "limit": 10}))
    assert {u["user_id"] for u in metrics["users"]} == {"shared-user", "alice"}
    assert sum(u["cost"] for u in metrics["users"]) == pytest.approx(2.5)
    properties = data(api.a.post("/v1/property/query", json={}))
    assert {p["property"] for p in properties} == {"env", "team", EVIL}
    overview = data(api.a.post("/v1/user/metrics-overview/query",
                               json={"useInterquartile": False, "pSize": "p99", "filter": "all"}))  # fmt: skip
    # A's users made 2 and 1 requests costing 0.5 and 2.0; B's much more (a leak would show in the edges).
    assert overview["request_count"] and max(float(b["range_end"]) for b in overview["request_count"]) <= 2
    assert overview["user_cost"] and max(float(b["range_end"]) for b in overview["user_cost"]) <= 2.0
    session_metrics = data(api.a.post("/v1/session/metrics/query", json={"nameContains": "", "timezoneDifference": 0}))
    assert sum(bucket["value"] for bucket in session_metrics["session_count"]) == 1


def test_row_level_security_is_a_second_wall() -> None:
    """On PostgreSQL a statement without any org condition still sees only the organisation the call
    runs for, and the API's role without an organisation sees nothing and may delete nothing."""
    import asyncpg

    from heliport.api.database import PostgresQueries

    async def check() -> None:
        async with throwaway_database() as dsn:
            rows_a, rows_b = _rows("org-a", "org-b")
            db = PostgresLogDb(dsn, max_size=1)
            await db.migrate()
            await db.insert_requests([*rows_a, *rows_b])
            await db.aclose()
            queries = PostgresQueries(dsn)
            try:
                seen = await queries.fetch("org-a", "SELECT DISTINCT org_id FROM requests", [])
                assert [r["org_id"] for r in seen] == ["org-a"]
                assert await queries.execute("org-a", "UPDATE requests SET scores = '{\"x\": 1}'", []) == len(rows_a)
            finally:
                await queries.aclose()
            conn = await asyncpg.connect(dsn)
            try:
                assert await conn.fetchval("SELECT count(*) FROM requests WHERE scores <> '{}'") == len(rows_a)
                async with conn.transaction():
                    await conn.execute("SET LOCAL ROLE heliport_api")
                    assert await conn.fetchval("SELECT count(*) FROM requests") == 0
                async with conn.transaction():
                    await conn.execute("SET LOCAL ROLE heliport_api")
                    with pytest.raises(asyncpg.InsufficientPrivilegeError):
                        await conn.execute("DELETE FROM requests")
            finally:
                await conn.close()

    asyncio.run(check())


# --- keys and bad input -------------------------------------------------------------------------------


def test_a_key_is_required(api: Api) -> None:
    anonymous = httpx.post(f"{api.url}/v1/request/query", json={"filter": "all"})
    assert "Missing heliport key" in error(anonymous, 401)
    bad = httpx.post(
        f"{api.url}/v1/request/query", json={"filter": "all"}, headers={"Authorization": "Bearer sk-heliport-nope"}
    )
    assert "Unknown heliport key" in error(bad, 401)
    bare = httpx.post(f"{api.url}/v1/request/query", json={"filter": "all"}, headers={"Authorization": api.key_a})
    assert {r["request_id"] for r in data(bare)} == api.ids(api.rows_a)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"filter": "all", "limit": 5000}, "limit"),
        ({"filter": "all", "offset": -1}, "offset"),
        ({"filter": "all", "isCached": "yes"}, "isCached"),
        ({"limit": 10}, "filter"),
        ({"filter": {"request_response_rmt": {"no_such_field": {"equals": "x"}}}}, "no_such_field"),
        ({"filter": {"request_response_rmt": {"model": {"regex": ".*"}}}}, "regex"),
        ({"filter": {"nope": {"model": {"equals": "x"}}}}, "nope"),
        ({"filter": "all", "sort": {"no_such_column": "asc"}}, "no_such_column"),
        ({"filter": {"request_response_rmt": {"latency": {"gte": "fast"}}}}, "latency"),
    ],
)
def test_bad_queries_are_400s_naming_the_field(api: Api, body: dict[str, Any], named: str) -> None:
    assert named in error(api.a.post("/v1/request/query", json=body), 400)


def test_bodies_that_are_not_json_objects_are_400s(api: Api) -> None:
    assert "not JSON" in error(api.a.post("/v1/request/query", content=b"{nope"), 400)
    assert "JSON object" in error(api.a.post("/v1/request/query", json=["all"]), 400)
    assert "UUID" in error(api.a.get("/v1/request/not-a-uuid"), 404)
    assert "rating" in error(api.a.post(f"/v1/request/{api.rows_a[0].request_id}/feedback", json={"rating": 1}), 400)
    assert "includeBody" in error(api.a.get(f"/v1/request/{api.rows_a[0].request_id}?includeBody=maybe"), 400)
    assert "No route" in error(api.a.post("/v1/request/nothing/here/at/all", json={}), 404)


def test_injection_through_names_and_values_is_inert(api: Api) -> None:
    by_name = query(api.a, {"request_response_rmt": {"properties": {EVIL: {"equals": "evil"}}}})
    assert [r["request_id"] for r in by_name] == [api.rows_a[2].request_id]
    by_value = query(api.a, {"request_response_rmt": {"model": {"equals": EVIL}}})
    assert by_value == []
    target = api.rows_a[3].request_id
    data(api.a.put(f"/v1/request/{target}/property", json={"key": EVIL, "value": EVIL + '"}'}))
    assert data(api.a.get(f"/v1/request/{target}"))["properties"] == {EVIL: EVIL + '"}'}
    error(api.a.post("/v1/request/query", json={"filter": {"request_response_rmt": {f"model; {EVIL}": {}}}}), 400)
    assert len(query(api.a, limit=1000)) == len(api.rows_a)  # the table is still there


# --- the documented behaviour ------------------------------------------------------------------------------

#: The request bodies shown in the seed docs (rest__request__*.md, the ETL, sessions, user-requests and
#: custom-properties cookbooks), each with the path it is sent to, transcribed into a data file.
DOCUMENTED_EXAMPLES: list[tuple[str, dict[str, Any]]] = [
    (example["path"], example["body"])
    for example in json.loads((Path(__file__).parent / "helicone_examples.json").read_text())
]


@pytest.mark.parametrize(("path", "body"), DOCUMENTED_EXAMPLES)
def test_every_documented_example_runs_and_has_the_documented_shape(api: Api, path: str, body: dict) -> None:
    got = data(api.a.post(path, json=body))
    assert isinstance(got, list)
    for item in got:
        assert set(item) >= HELICONE_REQUEST_REQUIRED
        assert item["request_id"] in api.ids(api.rows_a)


def test_documented_filters_select_the_right_rows(api: Api) -> None:
    shared = {api.rows_a[0].request_id, api.rows_a[2].request_id}
    assert {r["request_id"] for r in query(api.a, {"request": {"user_id": {"equals": "shared-user"}}})} == shared
    gpt4o = query(
        api.a,
        {
            "request_response_rmt": {"model": {"contains": "gpt-4o"}},
        },
    )
    assert len(gpt4o) == 4
    since = query(
        api.a, {"request_response_rmt": {"request_created_at": {"gte": (T0 + timedelta(minutes=15)).isoformat()}}}
    )
    assert {r["request_id"] for r in since} == {api.rows_a[2].request_id, api.rows_a[3].request_id}
    prod = query(api.a, {"request_response_rmt": {"properties": {"env": {"equals": "prod"}}}})
    assert [r["request_id"] for r in prod] == [api.rows_a[0].request_id]
    # The sessions cookbook filters on the session header as a property; here it is a column.
    session = query(api.a, {"properties": {"Helicone-Session-Id": {"equals": "sess-1"}}})
    assert {r["request_id"] for r in session} == {api.rows_a[0].request_id, api.rows_a[1].request_id}
    cached = query(api.a, isCached=True)
    assert [r["request_id"] for r in cached] == [api.rows_a[3].request_id]


def test_sort_limit_and_offset_page_through_the_rows(api: Api) -> None:
    by_cost = query(api.a, sort={"cost": "desc"}, limit=2)
    assert [r["cost"] for r in by_cost] == [2.0, 0.5]
    pages = [query(api.a, sort={"created_at": "asc"}, limit=1, offset=i) for i in range(5)]
    assert [p[0]["request_id"] for p in pages[:4]] == [r.request_id for r in api.rows_a]
    assert pages[4] == []


# --- one request, bodies, annotations ----------------------------------------------------------------


def test_one_request_with_its_bodies_inline_and_through_a_signed_url(api: Api) -> None:
    first = api.rows_a[0]
    plain = data(api.a.get(f"/v1/request/{first.request_id}"))
    assert plain["request_body"] is None and "response_body" not in plain
    full = data(api.a.get(f"/v1/request/{first.request_id}", params={"includeBody": "true"}))
    assert full["request_body"]["messages"] == [{"role": "user", "content": "hi"}]
    assert full["response_body"]["choices"][0]["message"]["content"] == "hello"
    assert full["cost"] == 0.5 and full["request_user_id"] == "shared-user"
    assert full["properties"] == {"env": "prod", "team": "red"}
    url = full["signed_body_url"]
    assert url and url.startswith(api.url)
    fetched = httpx.get(url)  # no key: the URL is the proof
    assert fetched.status_code == 200 and fetched.json()["request"] == full["request_body"]
    assert httpx.get(url.replace("signature=", "signature=0")).status_code == 404
    listed = query(api.a, {"request": {"id": {"equals": first.request_id}}})
    assert listed[0]["signed_body_url"] and listed[0]["request_body"] is None
    assert full["rate_limited"] is False
    assert data(api.a.get(f"/v1/request/{api.rows_a[2].request_id}"))["rate_limited"] is True
    no_bodies = data(api.a.get(f"/v1/request/{api.rows_a[1].request_id}", params={"includeBody": "true"}))
    assert no_bodies["signed_body_url"] is None and no_bodies["request_body"] is None


def test_feedback_properties_and_scores_are_stored(api: Api) -> None:
    target = api.rows_a[1].request_id
    assert data(api.a.post(f"/v1/request/{target}/feedback", json={"rating": True})) is None
    assert data(api.a.put(f"/v1/request/{target}/property", json={"key": "reviewed", "value": "yes"})) is None
    # The custom-properties guide's form: an object of names to values.
    assert data(api.a.put(f"/v1/request/{target}/property", json={"Environment": "production"})) is None
    assert data(api.a.post(f"/v1/request/{target}/score", json={"scores": {"accuracy": 0.9, "passed": True}})) is None
    got = data(api.a.get(f"/v1/request/{target}"))
    assert got["feedback_rating"] is True and got["feedback_created_at"]
    assert got["properties"] == {"env": "dev", "reviewed": "yes", "Environment": "production"}
    assert got["scores"] == {"accuracy": 0.9, "passed": 1.0}
    # Helicone's older route names the request in the body.
    assert data(api.a.post("/v1/feedback", json={"helicone-id": target, "rating": False})) is None
    assert data(api.a.get(f"/v1/request/{target}"))["feedback_rating"] is False
    scored = query(api.a, isScored=True)
    assert target in {r["request_id"] for r in scored}
    by_feedback = query(api.a, {"feedback": {"rating": {"equals": False}}})
    assert [r["request_id"] for r in by_feedback] == [target]


def test_openapi_document_describes_every_route(api: Api) -> None:
    spec = httpx.get(f"{api.url}/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert set(spec["paths"]) >= {
        "/v1/request/query", "/v1/request/query-clickhouse", "/v1/request/query-ids", "/v1/request/{requestId}",
        "/v1/request/{requestId}/feedback", "/v1/request/{requestId}/property", "/v1/request/{requestId}/score",
        "/v1/session/query", "/v1/session/metrics/query", "/v1/user/query", "/v1/user/metrics/query",
        "/v1/user/metrics-overview/query", "/v1/property/query",
    }  # fmt: skip
    helicone_request = spec["components"]["schemas"]["HeliconeRequest"]
    assert set(helicone_request["required"]) >= HELICONE_REQUEST_REQUIRED - {"response_body"}
