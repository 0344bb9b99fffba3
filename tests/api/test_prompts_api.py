"""Helicone's Prompts API (``/v1/prompt-2025/*``) over real HTTP, on SQLite and on PostgreSQL.

heliport runs on loopback with the real local prompt store (``<data_dir>/prompts.sqlite3``) and the
log database of the parametrisation (the ``/inputs`` route reads a logged row through the API's
database layer). Two organisations' keys: every route is tried with the other organisation's key
on organisation A's prompt, which must see nothing and change nothing.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from heliport.api.app import QueryApi
from heliport.api.bodies import BodyLinks
from heliport.app import Heliport
from heliport.auth import Authenticator, create_key
from heliport.config import Settings
from heliport.logs.row import RequestRow
from heliport.prompts.factory import open_prompt_store
from heliport.store.factory import open_blobs, open_cache_store, open_counter_store, open_query_db
from heliport.store.keys import Organisation, SqliteKeyStore
from heliport.store.logdb_postgres import PostgresLogDb
from heliport.store.logdb_sqlite import SqliteLogDb
from heliport.store.queue import MemoryQueue
from tests.harness import ServerThread
from tests.postgres import throwaway_database_sync

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
VERSION_FIELDS = {
    "id", "model", "prompt_id", "major_version", "minor_version", "commit_message", "environment", "environments",
    "created_at", "s3_url", "prompt_body",
}  # fmt: skip
SUPPORT = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "system", "content": "You help {{hc:customer:string}} with {{hc:product:string}}."}],
    "temperature": 0.7,
}


@dataclass
class Api:
    url: str
    a: httpx.Client
    b: httpx.Client
    org_a: str
    org_b: str
    data_dir: Path
    dsn: str | None

    def insert(self, *rows: RequestRow) -> None:
        async def write() -> None:
            db = PostgresLogDb(self.dsn, max_size=1) if self.dsn else SqliteLogDb(self.data_dir / "logs.sqlite3")
            assert await db.insert_requests(list(rows)) == len(rows)
            await db.aclose()

        asyncio.run(write())


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data_dir: Path = tmp_path_factory.mktemp(f"prompts-{request.param}")
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
        await db.aclose()
        return made

    (org_a, key_a), (org_b, key_b) = asyncio.run(setup())

    def make_api(authenticator: Authenticator) -> QueryApi:
        # The query API as the deployment builds it, with the prompt store the settings name.
        links = BodyLinks(open_blobs(settings), secret=settings.body_url_secret)
        return QueryApi(open_query_db(settings), authenticator, links, prompts=open_prompt_store(settings))

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
    a = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key_a}"}, timeout=10)
    b = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key_b}"}, timeout=10)
    try:
        yield Api(server.url, a, b, org_a, org_b, data_dir, dsn)
    finally:
        a.close()
        b.close()
        server.stop()


def data(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] is None, body
    return body["data"]


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["data"] is None and isinstance(body["error"], str), body
    return str(body["error"])


def create(client: httpx.Client, name: str = "Customer Support Bot", tags: list[str] | None = None) -> dict[str, str]:
    made: dict[str, str] = data(
        client.post("/v1/prompt-2025", json={"name": name, "tags": tags or ["support"], "promptBody": SUPPORT})
    )
    return made


def update(client: httpx.Client, prompt_id: str, base: str, **fields: Any) -> str:
    body = {"promptId": prompt_id, "promptVersionId": base, "commitMessage": "m", "promptBody": SUPPORT, **fields}
    made = data(client.post("/v1/prompt-2025/update", json=body))
    assert set(made) == {"id"}
    return str(made["id"])


# --- the routes, in Helicone's shapes --------------------------------------------------------------


def test_create_then_read_in_helicones_shapes(api: Api) -> None:
    made = create(api.a, tags=["support", "chatbot"])
    assert set(made) == {"id", "versionId"}
    assert re.fullmatch(r"[0-9A-Za-z]{6}", made["id"])
    uuid.UUID(made["versionId"])

    prompt = data(api.a.get(f"/v1/prompt-2025/id/{made['id']}"))
    assert prompt["id"] == made["id"] and prompt["name"] == "Customer Support Bot"
    assert prompt["tags"] == ["support", "chatbot"] and ISO.fullmatch(prompt["created_at"])
    assert set(prompt) == {"id", "name", "tags", "created_at"}

    production = data(api.a.post("/v1/prompt-2025/query/production-version", json={"promptId": made["id"]}))
    assert set(production) == VERSION_FIELDS
    assert production["id"] == made["versionId"] and production["prompt_id"] == made["id"]
    assert (production["major_version"], production["minor_version"]) == (0, 0)
    assert production["commit_message"] == "First version."
    assert production["model"] == "gpt-4o-mini" and production["environment"] == "production"
    assert production["prompt_body"] == SUPPORT and ISO.fullmatch(production["created_at"])

    by_id = data(api.a.post("/v1/prompt-2025/query/version", json={"promptVersionId": made["versionId"]}))
    assert by_id == production
    in_env = data(
        api.a.post(
            "/v1/prompt-2025/query/environment-version", json={"promptId": made["id"], "environment": "production"}
        )
    )
    assert in_env == production
    listed = data(api.a.post("/v1/prompt-2025/query/versions", json={"promptId": made["id"]}))
    assert [v["id"] for v in listed] == [made["versionId"]] and listed[0]["prompt_body"] is None
    counts = data(api.a.post("/v1/prompt-2025/query/total-versions", json={"promptId": made["id"]}))
    assert counts == {"totalVersions": 1, "majorVersions": 0}
    assert "production" in data(api.a.get("/v1/prompt-2025/environments"))
    assert {"support", "chatbot"} <= set(data(api.a.get("/v1/prompt-2025/tags")))
    assert isinstance(data(api.a.get("/v1/prompt-2025/count")), int)


def test_versions_numbers_and_environments(api: Api) -> None:
    made = create(api.a, name="Versioned")
    pid, v00 = made["id"], made["versionId"]
    v01 = update(api.a, pid, v00)
    v10 = update(api.a, pid, v01, newMajorVersion=True, environment="staging", commitMessage="Production release v2.0")
    v11 = update(api.a, pid, v10)

    listed = data(api.a.post("/v1/prompt-2025/query/versions", json={"promptId": pid}))
    assert [(v["id"], v["major_version"], v["minor_version"]) for v in listed] == [
        (v11, 1, 1), (v10, 1, 0), (v01, 0, 1), (v00, 0, 0),
    ]  # fmt: skip
    major_one = data(api.a.post("/v1/prompt-2025/query/versions", json={"promptId": pid, "majorVersion": 1}))
    assert [v["id"] for v in major_one] == [v11, v10]
    assert data(api.a.post("/v1/prompt-2025/query/total-versions", json={"promptId": pid})) == {
        "totalVersions": 4,
        "majorVersions": 1,
    }
    staged = data(
        api.a.post("/v1/prompt-2025/query/environment-version", json={"promptId": pid, "environment": "staging"})
    )
    assert staged["id"] == v10 and staged["environment"] == "staging"
    assert staged["commit_message"] == "Production release v2.0"

    # Production moves to v1.1; v0.0 keeps no environment.
    moved = api.a.post(
        "/v1/prompt-2025/update/environment",
        json={"promptId": pid, "promptVersionId": v11, "environment": "production"},
    )
    assert data(moved) is None
    production = data(api.a.post("/v1/prompt-2025/query/production-version", json={"promptId": pid}))
    assert production["id"] == v11 and production["environments"] == ["production"]
    first = data(api.a.post("/v1/prompt-2025/query/version", json={"promptVersionId": v00}))
    assert first["environment"] is None and first["environments"] == []
    assert {"production", "staging"} <= set(data(api.a.get("/v1/prompt-2025/environments")))


def test_query_tags_rename_and_delete(api: Api) -> None:
    marker = uuid.uuid4().hex[:8]
    first = create(api.a, name=f"{marker} Support Bot", tags=["support", marker])
    second = create(api.a, name=f"{marker} Ticket Classifier", tags=["classification"])
    found = data(
        api.a.post(
            "/v1/prompt-2025/query", json={"search": marker.upper(), "tagsFilter": [], "page": 0, "pageSize": 10}
        )
    )
    assert [p["id"] for p in found] == [second["id"], first["id"]]  # newest first
    by_tag = data(api.a.post("/v1/prompt-2025/query", json={"search": marker, "tagsFilter": [marker, "nope"]}))
    assert [p["id"] for p in by_tag] == [first["id"]]
    paged = data(api.a.post("/v1/prompt-2025/query", json={"search": marker, "page": 1, "pageSize": 1}))
    assert [p["id"] for p in paged] == [first["id"]]

    tags = data(
        api.a.patch(f"/v1/prompt-2025/id/{first['id']}/tags", json={"tags": [" customer-support ", "v2", "v2"]})
    )
    assert tags == ["customer-support", "v2"]
    assert data(api.a.post(f"/v1/prompt-2025/id/{first['id']}/rename", json={"name": "Renamed"})) is None
    got = data(api.a.get(f"/v1/prompt-2025/id/{first['id']}"))
    assert (got["name"], got["tags"]) == ("Renamed", ["customer-support", "v2"])
    assert "customer-support" in data(api.a.get("/v1/prompt-2025/tags"))

    # Delete one version, then the whole prompt.
    extra = update(api.a, second["id"], second["versionId"], environment="development")
    assert data(api.a.delete(f"/v1/prompt-2025/{second['id']}/{extra}")) is None
    error(api.a.post("/v1/prompt-2025/query/version", json={"promptVersionId": extra}), 404)
    env_gone = api.a.post(
        "/v1/prompt-2025/query/environment-version", json={"promptId": second["id"], "environment": "development"}
    )
    assert "development" in error(env_gone, 404)
    count = data(api.a.get("/v1/prompt-2025/count"))
    assert data(api.a.delete(f"/v1/prompt-2025/{second['id']}")) is None
    assert data(api.a.get("/v1/prompt-2025/count")) == count - 1
    error(api.a.get(f"/v1/prompt-2025/id/{second['id']}"), 404)
    error(api.a.delete(f"/v1/prompt-2025/{second['id']}"), 404)
    error(api.a.post("/v1/prompt-2025/query/version", json={"promptVersionId": second["versionId"]}), 404)


def test_inputs_of_a_logged_request(api: Api) -> None:
    made = create(api.a, name="With inputs")
    pid, vid = made["id"], made["versionId"]
    inputs = {"customer": "Alice", "product": "Pro Plan", "count": 3}
    used = {"id": pid, "version_id": vid, "environment": "production", "inputs": inputs}
    row_a = _row(api.org_a, checks={"prompt": used})
    plain = _row(api.org_a)
    # Organisation B's row claims A's prompt and version: A's key must not read it, nor B's the other.
    row_b = _row(api.org_b, checks={"prompt": used})
    api.insert(row_a, plain, row_b)

    path = f"/v1/prompt-2025/id/{pid}/{vid}/inputs"
    got = data(api.a.get(path, params={"requestId": row_a.request_id}))
    assert got == {"request_id": row_a.request_id, "version_id": vid, "inputs": inputs, "environment": "production"}
    assert "requestId" in error(api.a.get(path), 400)
    assert "did not use" in error(api.a.get(path, params={"requestId": plain.request_id}), 404)
    assert "No request" in error(api.a.get(path, params={"requestId": row_b.request_id}), 404)
    assert "No request" in error(api.a.get(path, params={"requestId": str(uuid.uuid4())}), 404)
    error(api.a.get(path, params={"requestId": "not-a-uuid"}), 404)
    other = update(api.a, pid, vid)
    assert "did not use" in error(
        api.a.get(f"/v1/prompt-2025/id/{pid}/{other}/inputs", params={"requestId": row_a.request_id}), 404
    )
    # B's key: A's prompt does not exist for it, whatever request it names.
    error(api.b.get(path, params={"requestId": row_b.request_id}), 404)
    error(api.b.get(path, params={"requestId": row_a.request_id}), 404)


def _row(org_id: str, checks: dict[str, Any] | None = None) -> RequestRow:
    now = datetime.now(UTC)
    return RequestRow(
        request_id=str(uuid.uuid4()),
        org_id=org_id,
        key_id="k",
        created_at=now,
        status=200,
        provider="OPENAI",
        target_url="https://api.openai.com/v1/chat/completions",
        path="/v1/chat/completions",
        model="gpt-4o-mini",
        checks=checks or {},
    )


# --- isolation ------------------------------------------------------------------------------------


def test_another_organisation_sees_nothing_and_changes_nothing(api: Api) -> None:
    made = create(api.a, name="A's secret prompt", tags=["a-secret-tag"])
    pid, vid = made["id"], made["versionId"]
    staged = update(api.a, pid, vid, environment="a-secret-env")
    b = api.b
    error(b.get(f"/v1/prompt-2025/id/{pid}"), 404)
    assert data(b.post("/v1/prompt-2025/query", json={"search": "secret"})) == []
    assert data(b.post("/v1/prompt-2025/query", json={})) == []
    assert data(b.get("/v1/prompt-2025/count")) == 0
    assert data(b.get("/v1/prompt-2025/tags")) == []
    assert data(b.get("/v1/prompt-2025/environments")) == []
    error(b.post("/v1/prompt-2025/query/version", json={"promptVersionId": vid}), 404)
    error(b.post("/v1/prompt-2025/query/versions", json={"promptId": pid}), 404)
    error(b.post("/v1/prompt-2025/query/production-version", json={"promptId": pid}), 404)
    error(
        b.post("/v1/prompt-2025/query/environment-version", json={"promptId": pid, "environment": "a-secret-env"}), 404
    )
    error(b.post("/v1/prompt-2025/query/total-versions", json={"promptId": pid}), 404)
    # Writes: every one a 404, none with an effect.
    error(b.patch(f"/v1/prompt-2025/id/{pid}/tags", json={"tags": ["b"]}), 404)
    error(b.post(f"/v1/prompt-2025/id/{pid}/rename", json={"name": "B's now"}), 404)
    error(b.post("/v1/prompt-2025/update", json={"promptId": pid, "promptVersionId": vid, "promptBody": SUPPORT}), 404)
    error(
        b.post(
            "/v1/prompt-2025/update/environment",
            json={"promptId": pid, "promptVersionId": vid, "environment": "staging"},
        ),
        404,
    )
    error(b.delete(f"/v1/prompt-2025/{pid}/{staged}"), 404)
    error(b.delete(f"/v1/prompt-2025/{pid}"), 404)

    prompt = data(api.a.get(f"/v1/prompt-2025/id/{pid}"))
    assert (prompt["name"], prompt["tags"]) == ("A's secret prompt", ["a-secret-tag"])
    listed = data(api.a.post("/v1/prompt-2025/query/versions", json={"promptId": pid}))
    assert [v["id"] for v in listed] == [staged, vid]
    assert [v["environments"] for v in listed] == [["a-secret-env"], ["production"]]


# --- bad input, unknown ids -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/prompt-2025", {"tags": [], "promptBody": SUPPORT}, "name"),
        ("/v1/prompt-2025", {"name": "", "promptBody": SUPPORT}, "name"),
        ("/v1/prompt-2025", {"name": "x"}, "promptBody"),
        ("/v1/prompt-2025", {"name": "x", "promptBody": []}, "promptBody"),
        ("/v1/prompt-2025", {"name": "x", "promptBody": {"messages": "hi"}}, "promptBody"),
        ("/v1/prompt-2025", {"name": "x", "promptBody": {"messages": [{"content": "no role"}]}}, "promptBody"),
        ("/v1/prompt-2025", {"name": "x", "promptBody": {"model": 4}}, "promptBody"),
        ("/v1/prompt-2025", {"name": "x", "tags": "support", "promptBody": SUPPORT}, "tags"),
        ("/v1/prompt-2025", {"name": "x", "promptBody": {"messages": [{"role": "user", "content": "x" * 300_001}]}},
         "promptBody"),
        ("/v1/prompt-2025/update", {"promptId": "abc123", "promptBody": SUPPORT}, "promptVersionId"),
        ("/v1/prompt-2025/update", {"promptId": "abc123", "promptVersionId": "v", "promptBody": SUPPORT,
                                    "environment": "a:b"}, "environment"),
        ("/v1/prompt-2025/update", {"promptId": "abc123", "promptVersionId": "v", "promptBody": SUPPORT,
                                    "newMajorVersion": "yes"}, "newMajorVersion"),
        ("/v1/prompt-2025/query", {"pageSize": -1}, "pageSize"),
        ("/v1/prompt-2025/query", {"page": "0"}, "page"),
        ("/v1/prompt-2025/query/version", {}, "promptVersionId"),
        ("/v1/prompt-2025/query/versions", {"promptId": "abc123", "majorVersion": -1}, "majorVersion"),
        ("/v1/prompt-2025/query/environment-version", {"promptId": "abc123", "environment": "{{x}}"}, "environment"),
        ("/v1/prompt-2025/update/environment", {"promptId": "abc123", "promptVersionId": "v"}, "environment"),
    ],
)  # fmt: skip
def test_bad_input_is_a_400_naming_the_field(api: Api, path: str, body: dict[str, Any], field: str) -> None:
    assert field in error(api.a.post(path, json=body), 400)


def test_bad_input_on_the_path_routes(api: Api) -> None:
    made = create(api.a, name="paths")
    assert "tags" in error(api.a.patch(f"/v1/prompt-2025/id/{made['id']}/tags", json={"tags": [1]}), 400)
    assert "name" in error(api.a.post(f"/v1/prompt-2025/id/{made['id']}/rename", json={}), 400)
    assert "JSON" in error(api.a.post("/v1/prompt-2025", content=b"{not json"), 400)


def test_unknown_prompt_or_version_is_a_404(api: Api) -> None:
    made = create(api.a, name="known")
    pid, vid = made["id"], made["versionId"]
    missing = str(uuid.uuid4())
    assert "zzzzzz" in error(api.a.get("/v1/prompt-2025/id/zzzzzz"), 404)
    assert missing in error(api.a.post("/v1/prompt-2025/query/version", json={"promptVersionId": missing}), 404)
    assert missing in error(
        api.a.post("/v1/prompt-2025/update", json={"promptId": pid, "promptVersionId": missing, "promptBody": SUPPORT}),
        404,
    )
    error(
        api.a.post(
            "/v1/prompt-2025/update", json={"promptId": "zzzzzz", "promptVersionId": vid, "promptBody": SUPPORT}
        ),
        404,
    )
    error(
        api.a.post(
            "/v1/prompt-2025/update/environment",
            json={"promptId": pid, "promptVersionId": missing, "environment": "dev"},
        ),
        404,
    )
    error(
        api.a.post("/v1/prompt-2025/query/environment-version", json={"promptId": pid, "environment": "nowhere"}), 404
    )
    error(api.a.delete(f"/v1/prompt-2025/{pid}/{missing}"), 404)
    error(api.a.get(f"/v1/prompt-2025/id/{pid}/{missing}/inputs", params={"requestId": missing}), 404)
    # A version of another prompt is not this prompt's.
    other = create(api.a, name="other")
    error(api.a.delete(f"/v1/prompt-2025/{pid}/{other['versionId']}"), 404)
    assert data(api.a.post("/v1/prompt-2025/query/version", json={"promptVersionId": other["versionId"]}))["id"]


def test_a_literal_route_is_not_a_prompt_id(api: Api) -> None:
    # DELETE /v1/prompt-2025/count is the literal GET route's 405, not a deletion of prompt "count".
    response = api.a.delete("/v1/prompt-2025/count")
    assert response.status_code == 405 and response.headers["allow"] == "GET, HEAD"


def test_every_prompt_route_is_documented_with_its_path_parameters(api: Api) -> None:
    document = httpx.get(f"{api.url}/openapi.json").json()
    prompt_paths = {path: ops for path, ops in document["paths"].items() if path.startswith("/v1/prompt-2025")}
    assert len([op for ops in prompt_paths.values() for op in ops]) == 18
    for path, operations in prompt_paths.items():
        wanted = set(re.findall(r"\{(\w+)\}", path))
        for operation in operations.values():
            declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert declared == wanted, (path, declared)
            assert "404" in operation["responses"] and "200" in operation["responses"]
