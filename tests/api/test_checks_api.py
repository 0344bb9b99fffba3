"""``heliport_checks`` in the query API: every request-returning endpoint carries each row's checks, in
the shape ``/openapi.json`` documents, only ever the caller's organisation's.

heliport serves the API on loopback over SQLite and over PostgreSQL (under row-level security), with
rows stored by the log database adapters as the consumer stores them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from heliport.api.requests import to_helicone_request
from heliport.api.schemas import HeliconeRequest
from heliport.auth import create_key
from heliport.config import Settings
from heliport.logs.row import RequestRow
from heliport.store.keys import Organisation, SqliteKeyStore
from heliport.store.logdb_postgres import PostgresLogDb
from heliport.store.logdb_sqlite import SqliteLogDb
from tests.harness import serve_local
from tests.postgres import throwaway_database_sync

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
BLOCKED = {"llm_security": {"threat": True, "messages": [{"verdict": "jailbreak", "score": 0.998}]}}
TRIMMED = {"token_limit": {"strategy": "middle-out", "tokens_before": 9000, "tokens_after": 3900}}
SECRET = {"moderation": {"flagged": True, "categories": ["org-b-secret"]}}


def _row(org_id: str, minutes: int, **fields: Any) -> RequestRow:
    values: dict[str, Any] = {
        "request_id": str(uuid.uuid4()),
        "org_id": org_id,
        "key_id": "k",
        "created_at": T0 + timedelta(minutes=minutes),
        "status": 200,
        "provider": "OPENAI",
        "target_url": "https://api.openai.com/v1/chat/completions",
        "path": "/v1/chat/completions",
        "model": "gpt-4o-mini",
    }
    return RequestRow(**(values | fields))


@dataclass
class Served:
    a: httpx.Client
    b: httpx.Client
    url: str
    blocked: RequestRow
    trimmed: RequestRow
    plain: RequestRow
    theirs: RequestRow


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir: Path = tmp_path_factory.mktemp(f"checks-api-{request.param}")
    if request.param == "sqlite":
        yield from _serve(data_dir, None)
    else:
        with throwaway_database_sync() as dsn:
            yield from _serve(data_dir, dsn)


def _serve(data_dir: Path, dsn: str | None) -> Iterator[Served]:
    store = SqliteKeyStore(data_dir / "keys.sqlite3")
    orgs = [Organisation(id=f"org-{n}-{uuid.uuid4().hex[:6]}", name=n, created_at=T0) for n in ("a", "b")]
    blocked = _row(orgs[0].id, 0, status=400, checks=BLOCKED)
    trimmed = _row(orgs[0].id, 1, checks=TRIMMED)
    plain = _row(orgs[0].id, 2)
    # Organisation B reuses A's request id (ids are unique per organisation only).
    theirs = _row(orgs[1].id, 3, request_id=blocked.request_id, checks=SECRET)

    async def setup() -> list[str]:
        keys = []
        for org in orgs:
            await store.put_org(org)
            keys.append((await create_key(store, org.id, org.name))[0])
        db = PostgresLogDb(dsn, max_size=1) if dsn else SqliteLogDb(data_dir / "logs.sqlite3")
        await db.migrate()
        await db.ensure_partitions(T0)
        assert await db.insert_requests([blocked, trimmed, plain, theirs]) == 4
        await db.aclose()
        return keys

    key_a, key_b = asyncio.run(setup())
    server = serve_local(Settings(data_dir=data_dir, database_url=dsn), store)
    a = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key_a}"}, timeout=10)
    b = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key_b}"}, timeout=10)
    try:
        yield Served(a, b, server.url, blocked, trimmed, plain, theirs)
    finally:
        a.close()
        b.close()
        server.stop()


def _data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["error"] is None
    return body["data"]


def test_every_request_endpoint_returns_the_checks_in_the_documented_shape(served: Served) -> None:
    a = served.a
    expected = {served.blocked.request_id: BLOCKED, served.trimmed.request_id: TRIMMED, served.plain.request_id: {}}
    listed = _data(a.post("/v1/request/query", json={"filter": "all"}))
    clickhouse = _data(a.post("/v1/request/query-clickhouse", json={"filter": "all"}))
    by_ids = _data(a.post("/v1/request/query-ids", json={"requestIds": list(expected)}))
    single = [_data(a.get(f"/v1/request/{request_id}")) for request_id in expected]
    with_body = [_data(a.get(f"/v1/request/{request_id}", params={"includeBody": "true"})) for request_id in expected]
    for answer in (listed, clickhouse, by_ids, single, with_body):
        assert {r["request_id"]: r["heliport_checks"] for r in answer} == expected
        for item in answer:
            HeliconeRequest.model_validate(item)  # the schema /openapi.json publishes, extra="forbid"


def test_another_organisation_never_sees_the_checks(served: Served) -> None:
    # Same request id in both organisations: each key gets its own row's checks.
    mine = _data(served.a.get(f"/v1/request/{served.blocked.request_id}"))
    theirs = _data(served.b.get(f"/v1/request/{served.blocked.request_id}"))
    assert mine["heliport_checks"] == BLOCKED and theirs["heliport_checks"] == SECRET
    listed = served.a.post("/v1/request/query", json={"filter": "all"})
    assert "org-b-secret" not in listed.text
    assert [r["heliport_checks"] for r in _data(served.b.post("/v1/request/query", json={"filter": "all"}))] == [SECRET]


def test_a_blocked_request_is_listed_with_its_400_and_its_verdict(served: Served) -> None:
    failed = _data(served.a.post("/v1/request/query", json={"filter": {"response": {"status": {"equals": 400}}}}))
    assert [(r["request_id"], r["response_status"], r["heliport_checks"]) for r in failed] == [
        (served.blocked.request_id, 400, BLOCKED)
    ]


def test_the_openapi_document_describes_heliport_checks(served: Served) -> None:
    spec = httpx.get(f"{served.url}/openapi.json").json()
    schema = spec["components"]["schemas"]["HeliconeRequest"]
    field = schema["properties"]["heliport_checks"]
    assert field["type"] == "object" and field["additionalProperties"]["type"] == "object"
    for check in ("moderation", "llm_security", "token_limit", "posthog"):
        assert check in field["description"]
    assert "heliport_checks" in schema["required"]
    HeliconeRequest.model_validate(
        to_helicone_request(_row("o", 0)) | {"heliport_checks": field["examples"][0]}
    )  # the example is valid


def test_a_check_that_is_not_an_object_is_wrapped_to_match_the_schema() -> None:
    # Every check records an object; a row written otherwise (a faulty or future writer) must still
    # answer in the documented shape rather than break a client's generated model.
    row = _row("o", 0, checks={"moderation": {"flagged": False}, "odd": True, "list": [1, 2]})
    answer = to_helicone_request(row)
    assert answer["heliport_checks"] == {
        "moderation": {"flagged": False},
        "odd": {"value": True},
        "list": {"value": [1, 2]},
    }
    HeliconeRequest.model_validate(answer)
    assert to_helicone_request(_row("o", 0))["heliport_checks"] == {}
