"""Regressions for the query API's 500s that the fuzz suite (``tests/fuzz/test_query_api.py``) found.

Each was a 500 (or, for the methods, a misleading 404) where the contract is a 4xx in the API's
``{data: null, error}`` shape naming the field at fault, or a 200:

1. a stored body nested past the decoder's reach, read back inline or through the signed URL;
2. non-finite scores (``NaN``, ``Infinity``, and ``1e400``, which JSON decoders read as infinity);
3. lone UTF-16 surrogates (``"\\ud800"``), which no UTF-8 encoder can write back out;
4. NUL characters (``"\\u0000"``), which PostgreSQL text cannot hold (SQLite can: same answer on both);
5. free-text search fields longer than SQLite's LIKE pattern limit;
6. GET and HEAD on POST-only routes, taken as a request id.

Every case runs over real HTTP on SQLite and on PostgreSQL, with the rows stored by the real log
database adapters and the bodies in the real blob store, as the consumer writes them.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from heliport.api.app import error_response
from heliport.api.filters import MAX_PATTERN_LENGTH
from heliport.auth import create_key
from heliport.config import Settings
from heliport.errors import RequestError
from heliport.logs.consumer import body_key
from heliport.logs.row import RequestRow
from heliport.store.blobs import LocalBlobStore
from heliport.store.keys import Organisation, SqliteKeyStore
from heliport.store.logdb_postgres import PostgresLogDb
from heliport.store.logdb_sqlite import SqliteLogDb
from tests.harness import serve_local
from tests.logs.records import chat_row
from tests.postgres import throwaway_database_sync

NOW = datetime.now(UTC)
WINDOW = {"startTimeUnixMs": 0, "endTimeUnixMs": 4102444800000}
#: A stored response body nested deeper than any JSON decoder in Python will go.
DEEP_TEXT = "[" * 1000 + "]" * 1000
#: Decodable, but deeper than the API's own limit (HELIPORT_MAX_JSON_DEPTH, 128 by default).
DEEPISH_TEXT = '{"a":' * 600 + "1" + "}" * 600


@dataclass
class Served:
    url: str
    client: httpx.Client
    plain_id: str
    deep_id: str
    deepish_id: str
    database: str


def _row(org_id: str, request_id: str, *, with_body: bool) -> RequestRow:
    return chat_row(
        org_id,
        request_id=request_id,
        created_at=NOW,
        response_created_at=NOW,
        user_id="fuzz-user",
        session_id="fuzz-session",
        session_name="fuzz",
        properties={"env": "fuzz"},
        delay_ms=100.0,
        prompt_tokens=1,
        completion_tokens=1,
        total_tokens=2,
        cost=Decimal("0.001"),
        body_key=body_key(org_id, request_id) if with_body else None,
    )


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir: Path = tmp_path_factory.mktemp(f"fuzz-findings-{request.param}")
    if request.param == "sqlite":
        yield from _serve(data_dir, None)
    else:
        with throwaway_database_sync() as dsn:
            yield from _serve(data_dir, dsn)


def _serve(data_dir: Path, dsn: str | None) -> Iterator[Served]:
    store = SqliteKeyStore(data_dir / "keys.sqlite3")
    plain, deep, deepish = (str(uuid.uuid4()) for _ in range(3))

    async def setup() -> str:
        org = Organisation(id=f"org-{uuid.uuid4().hex[:6]}", name="fuzz", created_at=NOW)
        await store.put_org(org)
        key, _ = await create_key(store, org.id, "fuzz")
        db = PostgresLogDb(dsn, max_size=1) if dsn else SqliteLogDb(data_dir / "logs.sqlite3")
        try:
            await db.migrate()
            rows = [_row(org.id, plain, with_body=False), *(_row(org.id, i, with_body=True) for i in (deep, deepish))]
            assert await db.insert_requests(rows) == 3
        finally:
            await db.aclose()
        blobs = LocalBlobStore(data_dir / "blobs")
        # As the consumer stores them: the text that went over the wire, in a gzip JSON envelope.
        for request_id, response in ((deep, DEEP_TEXT), (deepish, DEEPISH_TEXT)):
            envelope = {"request": '{"model":"gpt-4o-mini"}', "response": response}
            data = gzip.compress(msgspec.json.encode(envelope))
            await blobs.put(body_key(org.id, request_id), data, content_encoding="gzip")
        return key

    key = asyncio.run(setup())
    server = serve_local(Settings(data_dir=data_dir, database_url=dsn), store)
    client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    try:
        yield Served(server.url, client, plain, deep, deepish, "postgres" if dsn else "sqlite")
    finally:
        client.close()
        server.stop()


def _post(served: Served, path: str, body: Any, method: str = "POST") -> httpx.Response:
    """``body`` as JSON with every non-ASCII character escaped, so lone surrogates and NUL travel as
    ``\\ud800`` and ``\\u0000`` escapes (httpx's own ``json=`` cannot encode a lone surrogate)."""
    content = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=True).encode()
    return served.client.request(method, path, content=content, headers={"Content-Type": "application/json"})


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["error"] is None
    return body["data"]


def _refused(response: httpx.Response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["data"] is None and isinstance(body["error"], str), body
    return str(body["error"])


# --- 1. a stored body deeper than the decoder goes -------------------------------------------------


def test_a_stored_body_nested_1000_deep_comes_back_inline_as_text(served: Served) -> None:
    got = _ok(served.client.get(f"/v1/request/{served.deep_id}", params={"includeBody": "true"}))
    assert got["request_body"] == {"model": "gpt-4o-mini"}
    assert got["response_body"] == DEEP_TEXT


def test_a_stored_body_nested_1000_deep_comes_back_through_the_signed_url_as_text(served: Served) -> None:
    url = _ok(served.client.get(f"/v1/request/{served.deep_id}"))["signed_body_url"]
    fetched = httpx.get(url, timeout=30)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json() == {"request": {"model": "gpt-4o-mini"}, "response": DEEP_TEXT}


def test_a_stored_body_past_the_json_depth_limit_comes_back_as_text(served: Served) -> None:
    # 600 deep decodes, but need not encode again inside the answer; past HELIPORT_MAX_JSON_DEPTH it is text.
    got = _ok(served.client.get(f"/v1/request/{served.deepish_id}", params={"includeBody": "true"}))
    assert got["response_body"] == DEEPISH_TEXT
    url = got["signed_body_url"]
    assert httpx.get(url, timeout=30).json()["response"] == DEEPISH_TEXT


# --- 2. non-finite scores ---------------------------------------------------------------------------


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400"])
def test_a_non_finite_score_is_a_400_naming_it(served: Served, literal: bytes) -> None:
    body = b'{"scores":{"quality":' + literal + b"}}"
    message = _refused(_post(served, f"/v1/request/{served.plain_id}/score", body))
    assert "scores.quality" in message and "finite" in message
    assert _ok(served.client.get(f"/v1/request/{served.plain_id}"))["scores"].get("quality") is None


def test_finite_and_boolean_scores_are_still_stored(served: Served) -> None:
    _ok(_post(served, f"/v1/request/{served.plain_id}/score", {"scores": {"accuracy": 0.25, "ok": True}}))
    scores = _ok(served.client.get(f"/v1/request/{served.plain_id}"))["scores"]
    assert scores["accuracy"] == 0.25 and scores["ok"] == 1


# --- 3. lone surrogates -----------------------------------------------------------------------------

FILTER_VALUE = {"filter": {"request_response_rmt": {"model": {"equals": "\ud800"}}}}

SURROGATE_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("/v1/request/query", FILTER_VALUE, "filter.request_response_rmt.model.equals"),
    ("/v1/request/query", {"filter": {"request_response_rmt": {"\ud800": {"equals": "x"}}}},
     "filter.request_response_rmt.\\ud800"),
    ("/v1/request/query", {"filter": "all", "sort": {"\udc00\ud800": "asc"}}, "sort.\\udc00\\ud800"),
    ("/v1/request/query", {"filter": {"properties": {"\ud800": {"equals": "x"}}}}, "filter.properties.\\ud800"),
    ("/v1/session/query", {"search": "\udc00\ud800", "timeFilter": WINDOW, "timezoneDifference": 0, "filter": "all"},
     "search"),
    ("/v1/session/query",
     {"search": "", "timeFilter": WINDOW, "timezoneDifference": 0, "filter": "all", "nameEquals": "\ud800"},
     "nameEquals"),
    ("/v1/session/metrics/query", {"nameContains": "\ud800", "timezoneDifference": 0}, "nameContains"),
    ("/v1/user/query", {"userIds": ["ok", "\ud800"]}, "userIds[1]"),
    ("/v1/user/metrics/query", {"filter": "all", "offset": 0, "limit": 10, "sort": {"\ud800": "asc"}},
     "sort.\\ud800"),
    ("/v1/dashboard/overview", {"property": "\udfff"}, "property"),
    ("/v1/dashboard/session-tree", {"sessionId": "a\ud800b"}, "sessionId"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "field"), SURROGATE_CASES)
def test_a_lone_surrogate_is_a_400_naming_the_field(served: Served, path: str, body: Any, field: str) -> None:
    message = _refused(_post(served, path, body))
    assert "lone UTF-16 surrogate" in message and field in message, message


def test_a_lone_surrogate_in_an_annotation_is_a_400_and_stores_nothing(served: Served) -> None:
    rid = served.plain_id
    assert "scores.\\ud800" in _refused(_post(served, f"/v1/request/{rid}/score", {"scores": {"\ud800": 1}}))
    message = _refused(_post(served, f"/v1/request/{rid}/property", {"key": "env", "value": "\ud800"}, "PUT"))
    assert "value" in message
    assert _ok(served.client.get(f"/v1/request/{rid}"))["properties"] == {"env": "fuzz"}


def test_escaped_surrogate_pairs_and_escaped_backslashes_are_text(served: Served) -> None:
    # A pair is one character (U+1F600); "\\ud800" is a backslash and five letters. Both are fine.
    pair = b'{"filter":{"request_response_rmt":{"model":{"equals":"\\ud83d\\ude00"}}}}'
    assert _ok(_post(served, "/v1/request/query", pair)) == []
    backslash = b'{"filter":{"request_response_rmt":{"model":{"equals":"\\\\ud800"}}}}'
    assert _ok(_post(served, "/v1/request/query", backslash)) == []


def test_an_error_message_holding_a_lone_surrogate_is_still_written() -> None:
    response = error_response(RequestError("Invalid sort.\ud800: unknown sort field"))
    assert response.status_code == 400
    assert json.loads(response.body) == {"data": None, "error": "Invalid sort.\\ud800: unknown sort field"}


# --- 4. NUL, which PostgreSQL text cannot hold --------------------------------------------------------

NUL_CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/v1/request/query", {"filter": {"request_response_rmt": {"model": {"equals": "a\x00b"}}}},
     "filter.request_response_rmt.model.equals"),
    ("POST", "/v1/request/query", {"filter": {"request": {"prompt": {"contains": "\x00"}}}},
     "filter.request.prompt.contains"),
    ("POST", "/v1/request/query",
     {"filter": {"request_response_rmt": {"properties": {"e\x00nv": {"equals": "x"}}}}},
     "filter.request_response_rmt.properties.e\\u0000nv"),
    ("POST", "/v1/request/query", {"filter": "all", "sort": {"properties": {"\x00": "asc"}}},
     "sort.properties.\\u0000"),
    ("POST", "/v1/session/query", {"search": "\x00", "timeFilter": WINDOW, "timezoneDifference": 0, "filter": "all"},
     "search"),
    ("POST", "/v1/session/query",
     {"search": "", "timeFilter": WINDOW, "timezoneDifference": 0, "filter": "all", "nameEquals": "a\x00"},
     "nameEquals"),
    ("POST", "/v1/session/metrics/query", {"nameContains": "\x00", "timezoneDifference": 0}, "nameContains"),
    ("POST", "/v1/user/query", {"userIds": ["\x00"]}, "userIds[0]"),
    ("POST", "/v1/dashboard/overview", {"property": "e\x00nv"}, "property"),
    ("POST", "/v1/dashboard/session-tree", {"sessionId": "s\x00"}, "sessionId"),
    ("PUT", "/v1/request/{rid}/property", {"key": "e\x00nv", "value": "x"}, "key"),
    ("PUT", "/v1/request/{rid}/property", {"key": "env", "value": "x\x00"}, "value"),
    ("PUT", "/v1/request/{rid}/property", {"te\x00am": "red"}, "te\\u0000am"),
    ("POST", "/v1/request/{rid}/score", {"scores": {"q\x00": 1}}, "scores.q\\u0000"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "field"), NUL_CASES)
def test_a_nul_character_is_a_400_naming_the_field_on_both_databases(
    served: Served, method: str, path: str, body: Any, field: str
) -> None:
    message = _refused(_post(served, path.format(rid=served.plain_id), body, method))
    assert "NUL" in message and field in message, message


def test_a_nul_character_stores_nothing(served: Served) -> None:
    rid = served.plain_id
    _refused(_post(served, f"/v1/request/{rid}/property", {"key": "env", "value": "x\x00"}, "PUT"))
    assert _ok(served.client.get(f"/v1/request/{rid}"))["properties"] == {"env": "fuzz"}


def test_the_text_backslash_u0000_is_not_a_nul(served: Served) -> None:
    assert _ok(_post(served, "/v1/request/query", b'{"filter":{"request":{"prompt":{"equals":"\\\\u0000"}}}}')) == []


# --- 5. free-text search longer than SQLite's LIKE pattern limit ----------------------------------------

LONG = "x" * 65536
AT_CAP = "x" * MAX_PATTERN_LENGTH

SEARCH_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("/v1/session/query", {"search": LONG, "timeFilter": WINDOW, "timezoneDifference": 0, "filter": "all"}, "search"),
    ("/v1/session/metrics/query", {"nameContains": LONG, "timezoneDifference": 0}, "nameContains"),
    ("/v1/request/query", {"filter": {"request": {"prompt": {"contains": LONG}}}}, "filter.request.prompt.contains"),
    ("/v1/request/query", {"filter": {"request_response_rmt": {"model": {"not-contains": LONG}}}},
     "filter.request_response_rmt.model.not-contains"),
    ("/v1/request/query", {"filter": {"request_response_rmt": {"model": {"like": LONG}}}},
     "filter.request_response_rmt.model.like"),
    ("/v1/request/query", {"filter": {"response": {"body_completion": {"ilike": LONG}}}},
     "filter.response.body_completion.ilike"),
    ("/v1/request/query",
     {"filter": {"request_response_rmt": {"search_properties": {"env": {"equals": LONG}}}}},
     "filter.request_response_rmt.search_properties.env.equals"),
    ("/v1/session/query",
     {"search": "", "timeFilter": WINDOW, "timezoneDifference": 0,
      "filter": {"sessions_request_response_rmt": {"session_session_name": {"contains": LONG}}}},
     "filter.sessions_request_response_rmt.session_session_name.contains"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "field"), SEARCH_CASES)
def test_a_64k_search_string_is_a_400_naming_the_field(served: Served, path: str, body: Any, field: str) -> None:
    message = _refused(_post(served, path, body))
    assert field in message and str(MAX_PATTERN_LENGTH) in message, message


def test_search_strings_at_the_cap_are_answered(served: Served) -> None:
    sessions = {"search": AT_CAP, "timeFilter": WINDOW, "timezoneDifference": 0, "filter": "all"}
    assert _ok(_post(served, "/v1/session/query", sessions)) == []
    # The worst case for the escaped pattern: every character a LIKE wildcard, each doubled by escaping.
    wild = {**sessions, "search": "%" * MAX_PATTERN_LENGTH}
    assert _ok(_post(served, "/v1/session/query", wild)) == []
    _ok(_post(served, "/v1/session/metrics/query", {"nameContains": "%" * MAX_PATTERN_LENGTH, "timezoneDifference": 0}))
    for op in ("contains", "like", "ilike", "not-contains"):
        _ok(_post(served, "/v1/request/query", {"filter": {"request": {"prompt": {op: "_" * MAX_PATTERN_LENGTH}}}}))
    # Equality is not a pattern: a long value is fine.
    assert _ok(_post(served, "/v1/request/query", {"filter": {"request": {"prompt": {"equals": LONG}}}})) == []


def test_the_search_caps_are_in_the_openapi_document(served: Served) -> None:
    paths = httpx.get(f"{served.url}/openapi.json").json()["paths"]

    def body(path: str) -> dict[str, Any]:
        return dict(paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"])

    assert body("/v1/session/query")["search"]["maxLength"] == MAX_PATTERN_LENGTH
    assert body("/v1/session/metrics/query")["nameContains"]["maxLength"] == MAX_PATTERN_LENGTH
    assert str(MAX_PATTERN_LENGTH) in body("/v1/request/query")["filter"]["description"]


# --- 6. a method the path does not take ---------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/request/query", "/v1/request/query-clickhouse", "/v1/request/query-ids"])
@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE"])
def test_other_methods_on_a_post_only_route_are_a_405_with_allow(served: Served, path: str, method: str) -> None:
    response = served.client.request(method, path)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == "POST"
    if method != "HEAD":
        assert response.json() == {"data": None, "error": f"{method} is not allowed on {path}."}


def test_a_405_names_the_methods_of_any_route(served: Served) -> None:
    rid = served.plain_id
    for method, path, allow in [
        ("PUT", f"/v1/request/{rid}/score", "POST"),
        ("GET", f"/v1/request/{rid}/feedback", "POST"),
        ("POST", f"/v1/request/{rid}/property", "PUT"),
        ("DELETE", f"/v1/request/{rid}", "GET, HEAD"),
        ("GET", "/v1/session/query", "POST"),
        ("POST", "/openapi.json", "GET, HEAD"),
    ]:
        response = served.client.request(method, path)
        assert response.status_code == 405, (method, path, response.text)
        assert response.headers["allow"] == allow, (method, path)
        assert response.json() == {"data": None, "error": f"{method} is not allowed on {path}."}


def test_a_request_id_route_still_answers_ids_and_unknown_paths(served: Served) -> None:
    assert _ok(served.client.get(f"/v1/request/{served.plain_id}"))["request_id"] == served.plain_id
    assert "request ids are UUIDs" in _refused(served.client.get("/v1/request/queryx"), 404)
    assert "No route" in _refused(served.client.post("/v1/request/query/more", json={}), 404)
