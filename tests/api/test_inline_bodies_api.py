"""Every reader of bodies answers the same whether they are on the row or in the blob store (issue 24 §4).

heliport serves the query API on loopback over SQLite with a blob directory, and over PostgreSQL with
S3 (moto's server). The rows are written by the real log writer: one request small enough for its
bodies to ride on the row, one too large. Each reader is called over HTTP, as Helicone's clients call
it: the request with ``includeBody``, the list's ``signed_body_url`` (fetched without a key), a
dataset's export, a webhook's body link and the request's assets.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from heliport.api import requests
from heliport.api.database import PostgresQueries, QueryDb, SqliteQueries
from heliport.api.dialect import Params
from heliport.auth import create_key
from heliport.config import Settings
from heliport.logs.consumer import LogWriter
from heliport.logs.record import LogRecord
from heliport.logs.row import RequestRow
from heliport.logs.stored_bodies import INLINE_BODY_BYTES, NOT_READ, BodiesNotReadError, stored_bodies
from heliport.store.blobs import BlobStore, LocalBlobStore, S3BlobStore
from heliport.store.keys import Organisation, SqliteKeyStore
from heliport.store.logdb import LogDb
from heliport.store.logdb_postgres import PostgresLogDb
from heliport.store.logdb_sqlite import SqliteLogDb
from heliport.webhooks.signing import link_signature
from tests.aws import REGION
from tests.harness import serve_local
from tests.logs.records import chat_record
from tests.postgres import throwaway_database_sync

#: A tiny PNG (as far as heliport's image sniffing goes) for the assets reader.
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(40))
HOOKS = "https://hooks.example.com"


def request_body(text: str) -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {
                        "type": "image_url",
                        "image_url": {"url": f"data:image/png;base64,{base64.b64encode(PNG).decode()}"},
                    },
                    {"type": "text", "text": text},
                ],
            },
        ],
    }


def response_body(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }


@dataclass
class Served:
    url: str
    dsn: str | None
    data_dir: Path
    client: httpx.Client
    org_id: str
    open_blobs: Callable[[], BlobStore]
    #: "small" (bodies on the row) and "large" (bodies in the blob store) -> (record, request, response).
    logged: dict[str, tuple[LogRecord, dict[str, Any], dict[str, Any]]]
    s3: bool


@pytest.fixture(params=["sqlite+dir", "postgres+s3"])
def served(request: pytest.FixtureRequest, tmp_path: Path, aws_endpoint: str) -> Iterator[Served]:
    if request.param == "sqlite+dir":
        yield from _serve(tmp_path, None, None, aws_endpoint)
        return
    bucket = f"heliport-{uuid.uuid4().hex[:12]}"
    asyncio.run(_create_bucket(bucket, aws_endpoint))
    with throwaway_database_sync() as dsn:
        yield from _serve(tmp_path, dsn, bucket, aws_endpoint)


async def _create_bucket(bucket: str, endpoint: str) -> None:
    import aioboto3

    async with aioboto3.Session().client("s3", region_name=REGION, endpoint_url=endpoint) as s3:
        await s3.create_bucket(Bucket=bucket)


def _serve(data_dir: Path, dsn: str | None, bucket: str | None, endpoint: str) -> Iterator[Served]:
    keys = SqliteKeyStore(data_dir / "keys.sqlite3")

    def open_blobs() -> BlobStore:
        # One per event loop: the S3 client belongs to the loop it was made on.
        if bucket:
            return S3BlobStore(bucket, region=REGION, endpoint_url=endpoint)
        return LocalBlobStore(data_dir / "blobs")

    small = (request_body("Hello?"), response_body("Hi there!"))
    # Random text does not compress: this one's gzip JSON is well over the threshold.
    large = (request_body(secrets.token_hex(INLINE_BODY_BYTES)), response_body("A long one."))

    async def setup() -> tuple[str, str, dict[str, tuple[LogRecord, dict[str, Any], dict[str, Any]]]]:
        org = Organisation(id=f"org-{uuid.uuid4().hex[:6]}", name="inline", created_at=datetime.now(UTC))
        await keys.put_org(org)
        plain, _ = await create_key(keys, org.id, "inline")
        logdb: LogDb = PostgresLogDb(dsn, max_size=1) if dsn else SqliteLogDb(data_dir / "logs.sqlite3")
        await logdb.migrate()
        logged = {}
        for name, (req, resp) in {"small": small, "large": large}.items():
            record = chat_record(org_id=org.id, request_body=json.dumps(req), response_body=json.dumps(resp))
            logged[name] = (record, req, resp)
        blobs = open_blobs()
        await LogWriter(logdb, blobs).write([record for record, _, _ in logged.values()])
        await logdb.aclose()
        await blobs.aclose()
        return org.id, plain, logged

    org_id, key, logged = asyncio.run(setup())
    settings = Settings(
        data_dir=data_dir,
        database_url=dsn,
        bucket=bucket,
        aws_region=REGION if bucket else None,
        aws_endpoint_url=endpoint if bucket else None,
        trusted_origins=frozenset({HOOKS}),
    )
    server = serve_local(settings, keys)
    client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    try:
        yield Served(server.url, dsn, data_dir, client, org_id, open_blobs, logged, s3=bucket is not None)
    finally:
        client.close()
        server.stop()


def data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["data"]


def parsed(value: Any) -> Any:
    """A body as a reader hands it back: JSON text (an S3 object's fields) or the JSON value."""
    return json.loads(value) if isinstance(value, str) else value


def test_the_writer_split_them_as_expected(served: Served) -> None:
    """The premise: the small request's bodies are on the row only, the large one's in the blob store."""
    small, large = served.logged["small"][0], served.logged["large"][0]
    prefix = f"organizations/{served.org_id}/requests/"

    async def listed() -> list[str]:
        blobs = served.open_blobs()
        try:
            return await blobs.list(prefix)
        finally:
            await blobs.aclose()

    keys = asyncio.run(listed())
    assert [k for k in keys if small.request_id in k] == []
    assert [k for k in keys if large.request_id in k] == [f"{prefix}{large.request_id}/raw_request_response_body"]


@pytest.mark.parametrize("size", ["small", "large"])
def test_include_body_returns_the_same_bodies(served: Served, size: str) -> None:
    record, req, resp = served.logged[size]
    got = data(served.client.get(f"/v1/request/{record.request_id}", params={"includeBody": "true"}))
    assert got["request_body"] == req and got["response_body"] == resp
    without = data(served.client.get(f"/v1/request/{record.request_id}"))
    assert without["request_body"] is None and without["signed_body_url"]


@pytest.mark.parametrize("size", ["small", "large"])
def test_the_signed_body_url_of_a_listed_request_serves_its_bodies_without_a_key(served: Served, size: str) -> None:
    record, req, resp = served.logged[size]
    rows = data(served.client.post("/v1/request/query", json={"filter": "all", "limit": 10}))
    url = next(r["signed_body_url"] for r in rows if r["request_id"] == record.request_id)
    # Bodies in S3 are an S3 presigned GET; bodies on the row (or in a directory) heliport's own route.
    assert url.startswith(served.url) is not (served.s3 and size == "large")
    fetched = httpx.get(url, timeout=10)  # no key
    assert fetched.status_code == 200, fetched.text
    bodies = fetched.json()
    assert parsed(bodies["request"]) == req and parsed(bodies["response"]) == resp
    if url.startswith(served.url):  # heliport's route refuses a tampered URL
        assert httpx.get(url.replace("signature=", "signature=0"), timeout=10).status_code == 404


def test_a_dataset_export_reads_both(served: Served) -> None:
    ids = [served.logged[size][0].request_id for size in ("small", "large")]
    made = data(served.client.post("/v1/helicone-dataset", json={"name": "inline", "requestIds": ids}))
    exported = data(served.client.get(f"/v1/helicone-dataset/{made['datasetId']}/export", params={"format": "jsonl"}))
    lines = [json.loads(line) for line in exported["content"].splitlines()]
    assert exported["skipped"] == [] and len(lines) == 2
    assistants = sorted(line["messages"][-1]["content"] for line in lines)
    assert assistants == ["A long one.", "Hi there!"]  # each from its logged response body


def test_a_webhook_body_link_reads_both(served: Served) -> None:
    hook = data(served.client.post("/v1/webhooks", json={"destination": f"{HOOKS}/in"}))
    for size in ("small", "large"):
        record, req, resp = served.logged[size]
        expires = int(time.time()) + 600
        signature = link_signature(hook["hmac_key"], served.org_id, hook["id"], record.request_id, expires)
        link = f"{served.url}/v1/webhooks/{hook['id']}/bodies/{record.request_id}"
        got = httpx.get(link, params={"org": served.org_id, "expires": expires, "signature": signature}, timeout=10)
        assert got.status_code == 200, got.text
        assert got.json() == {"request": req, "response": resp}


def test_the_assets_of_both_are_found(served: Served) -> None:
    for size in ("small", "large"):
        record = served.logged[size][0]
        assets = data(served.client.get(f"/v1/request/{record.request_id}/assets"))
        assert [(a["mediaType"], a["bytes"]) for a in assets] == [("image/png", len(PNG))]


def test_a_list_page_does_not_read_the_bodies_on_its_rows(served: Served) -> None:
    """``query_sql`` (the list) says only whether bodies are on a row; reading them from such a row is a
    caller's bug and says so, rather than answering "no bodies"."""

    async def listed() -> dict[str, RequestRow]:
        db: QueryDb = (
            PostgresQueries(served.dsn, max_size=1) if served.dsn else SqliteQueries(served.data_dir / "logs.sqlite3")
        )
        try:
            params = Params(db.dialect)
            sql = requests.query_sql(served.org_id, params, filter="all", sort={}, limit=10, offset=0)
            return {row.request_id: row for row in await db.rows(served.org_id, sql, params.values)}
        finally:
            await db.aclose()

    rows = asyncio.run(listed())
    small, large = (rows[served.logged[size][0].request_id] for size in ("small", "large"))
    assert small.body_inline == NOT_READ and large.body_inline is None
    with pytest.raises(BodiesNotReadError):
        asyncio.run(stored_bodies(small, LocalBlobStore(served.data_dir / "unused")))
