"""Request assets over real HTTP: the images inside logged bodies, each behind its own signed URL.

Runs on SQLite and PostgreSQL with the local blob store (heliport signs its own asset URLs), and on S3
(moto's server) where the URL is S3's presigned GET. Two organisations: the second sees none of it.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from heliport.auth import create_key
from heliport.config import Settings
from heliport.logs.consumer import body_key
from heliport.logs.row import RequestRow
from heliport.store.blobs import BlobStore, LocalBlobStore, S3BlobStore
from heliport.store.keys import Organisation, SqliteKeyStore
from heliport.store.logdb_postgres import PostgresLogDb
from heliport.store.logdb_sqlite import SqliteLogDb
from tests.harness import serve_local
from tests.postgres import throwaway_database_sync

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(40))
JPEG = b"\xff\xd8\xff\xe0" + b"jpeg bytes" * 3
GENERATED = b"\x89PNG\r\n\x1a\n" + b"generated image"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def asset_id(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


REQUEST = {
    "model": "gpt-4o",
    "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "Compare these"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64(PNG)}"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/not-an-asset.png"}},
            {"type": "image_url", "image_url": {"url": f"data:image/svg+xml;base64,{b64(SVG)}"}},
        ]},
        {"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": b64(JPEG)}},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64(PNG)}"}},  # the same image again
        ]},
    ],
}  # fmt: skip
RESPONSE = {"created": 1, "data": [{"b64_json": b64(GENERATED)}]}


@dataclass
class Served:
    url: str
    a: httpx.Client
    b: httpx.Client
    org_a: str
    request_a: str
    plain_a: str
    request_b: str
    blobs: BlobStore


def _serve(data_dir: Path, dsn: str | None, bucket: str | None = None, endpoint: str | None = None) -> Iterator[Served]:
    store = SqliteKeyStore(data_dir / "keys.sqlite3")
    blobs: BlobStore = (
        S3BlobStore(bucket, region="us-east-1", endpoint_url=endpoint) if bucket else LocalBlobStore(data_dir / "blobs")
    )

    async def setup() -> tuple[list[str], list[str], list[str]]:
        keys, orgs = [], []
        for name in ("a", "b"):
            org = Organisation(id=f"org-{name}-{uuid.uuid4().hex[:6]}", name=name, created_at=T0)
            await store.put_org(org)
            plain, _ = await create_key(store, org.id, name)
            keys.append(plain)
            orgs.append(org.id)
        rows = []
        for owner, bodies in ((orgs[0], (REQUEST, RESPONSE)), (orgs[0], None), (orgs[1], (REQUEST, RESPONSE))):
            row = RequestRow(request_id=str(uuid.uuid4()), org_id=owner, key_id="k", created_at=T0, status=200,
                             provider="OPENAI", target_url="https://api.openai.com/v1/chat/completions",
                             path="/v1/chat/completions")  # fmt: skip
            if bodies is not None:
                row.body_key = body_key(owner, row.request_id)
                text = {"request": json.dumps(bodies[0]), "response": json.dumps(bodies[1])}
                await blobs.put(row.body_key, gzip.compress(json.dumps(text).encode()), content_encoding="gzip")
            rows.append(row)
        db = PostgresLogDb(dsn, max_size=1) if dsn else SqliteLogDb(data_dir / "logs.sqlite3")
        await db.migrate()
        assert await db.insert_requests(rows) == 3
        await db.aclose()
        await blobs.aclose()  # an S3 client belongs to this event loop
        return keys, orgs, [r.request_id for r in rows]

    keys, orgs, ids = asyncio.run(setup())
    settings = Settings(data_dir=data_dir, database_url=dsn, bucket=bucket, aws_endpoint_url=endpoint,
                        aws_region="us-east-1" if bucket else None)  # fmt: skip
    server = serve_local(settings, store)
    a = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {keys[0]}"}, timeout=10)
    b = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {keys[1]}"}, timeout=10)
    try:
        yield Served(server.url, a, b, orgs[0], ids[0], ids[1], ids[2], blobs)
    finally:
        a.close()
        b.close()
        server.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir: Path = tmp_path_factory.mktemp(f"assets-{request.param}")
    if request.param == "sqlite":
        yield from _serve(data_dir, None)
    else:
        with throwaway_database_sync() as dsn:
            yield from _serve(data_dir, dsn)


def data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["error"] is None
    return body["data"]


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["data"] is None and isinstance(body["error"], str)
    message: str = body["error"]
    return message


def test_a_requests_images_are_listed_by_content_id(served: Served) -> None:
    listed = data(served.a.get(f"/v1/request/{served.request_a}/assets"))
    assert listed == [
        {"assetId": asset_id(PNG), "mediaType": "image/png", "bytes": len(PNG)},
        {"assetId": asset_id(SVG), "mediaType": "image/svg+xml", "bytes": len(SVG)},
        {"assetId": asset_id(JPEG), "mediaType": "image/jpeg", "bytes": len(JPEG)},
        {"assetId": asset_id(GENERATED), "mediaType": "image/png", "bytes": len(GENERATED)},
    ]
    assert data(served.a.get(f"/v1/request/{served.plain_a}/assets")) == []  # no bodies, no assets


@pytest.mark.parametrize(("image", "media_type"), [(PNG, "image/png"), (JPEG, "image/jpeg"), (GENERATED, "image/png")])
def test_an_asset_url_serves_the_image_without_a_key(served: Served, image: bytes, media_type: str) -> None:
    answer = data(served.a.post(f"/v1/request/{served.request_a}/assets/{asset_id(image)}"))
    assert set(answer) == {"assetUrl"}
    got = httpx.get(answer["assetUrl"], timeout=10)
    assert got.status_code == 200 and got.content == image
    assert got.headers["content-type"] == media_type
    assert got.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in got.headers["content-security-policy"]
    # Stored beside the bodies, under the organisation's prefix.
    key = f"organizations/{served.org_a}/requests/{served.request_a}/assets/{asset_id(image)}"
    assert asyncio.run(served.blobs.get(key)) == image


def test_script_is_never_served_as_an_image(served: Served) -> None:
    answer = data(served.a.post(f"/v1/request/{served.request_a}/assets/{asset_id(SVG)}"))
    got = httpx.get(answer["assetUrl"], timeout=10)
    assert got.content == SVG and got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-disposition"].startswith("attachment")


def test_a_forged_or_expired_url_is_a_404(served: Served) -> None:
    url = data(served.a.post(f"/v1/request/{served.request_a}/assets/{asset_id(PNG)}"))["assetUrl"]
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    for changed in ({"signature": "0" * 64}, {"expires": str(int(query["expires"]) + 1)}, {"org": "org-other"},
                    {"expires": "1"}):  # fmt: skip
        error(httpx.get(f"{base}?{urlencode(query | changed)}", timeout=10), 404)
    # The signature is for this asset only: another asset of the same request, or the body link, is refused.
    other = base.replace(asset_id(PNG), asset_id(JPEG))
    error(httpx.get(f"{other}?{urlencode(query)}", timeout=10), 404)
    body_link = f"{served.url}/v1/request/{served.request_a}/body?{urlencode(query)}"
    error(httpx.get(body_link, timeout=10), 404)


def test_unknown_ids_and_other_organisations_are_404s(served: Served) -> None:
    route = f"/v1/request/{served.request_a}/assets"
    assert "32 hex" in error(served.a.post(f"{route}/not-an-id"), 404)
    error(served.a.post(f"{route}/{'0' * 32}"), 404)
    error(served.a.post(f"/v1/request/{served.plain_a}/assets/{asset_id(PNG)}"), 404)
    error(served.a.post(f"/v1/request/{uuid.uuid4()}/assets/{asset_id(PNG)}"), 404)
    error(served.a.post(f"/v1/request/not-a-uuid/assets/{asset_id(PNG)}"), 404)
    # B holds the very same image in its own request, and still cannot reach A's.
    error(served.b.post(f"{route}/{asset_id(PNG)}"), 404)
    error(served.b.get(route), 404)
    mine = data(served.b.post(f"/v1/request/{served.request_b}/assets/{asset_id(PNG)}"))["assetUrl"]
    assert served.request_b in mine and served.request_a not in mine
    error(httpx.post(f"{served.url}{route}/{asset_id(PNG)}", timeout=10), 401)


def test_on_s3_the_asset_url_is_a_presigned_get(tmp_path: Path, aws_endpoint: str) -> None:
    bucket = f"heliport-{uuid.uuid4().hex[:12]}"
    asyncio.run(_bucket(aws_endpoint, bucket, create=True))
    try:
        for served in _serve(tmp_path, None, bucket=bucket, endpoint=aws_endpoint):
            url = data(served.a.post(f"/v1/request/{served.request_a}/assets/{asset_id(JPEG)}"))["assetUrl"]
            key = f"organizations/{served.org_a}/requests/{served.request_a}/assets/{asset_id(JPEG)}"
            assert url.startswith(f"{aws_endpoint}/{bucket}/{key}?") and "Signature=" in url
            got = httpx.get(url, timeout=10)  # S3 itself answers, with the type stored with the object
            assert got.status_code == 200 and got.content == JPEG and got.headers["content-type"] == "image/jpeg"
            error(served.b.post(f"/v1/request/{served.request_a}/assets/{asset_id(JPEG)}"), 404)
            svg = data(served.a.post(f"/v1/request/{served.request_a}/assets/{asset_id(SVG)}"))["assetUrl"]
            got = httpx.get(svg, timeout=10)  # script-capable: stored, and so served, as a download
            assert got.content == SVG and got.headers["content-type"] == "application/octet-stream"
    finally:
        asyncio.run(_bucket(aws_endpoint, bucket, create=False))


async def _bucket(endpoint: str, name: str, *, create: bool) -> None:
    """Make the bucket, or empty and remove it."""
    import aioboto3

    async with aioboto3.Session().client("s3", region_name="us-east-1", endpoint_url=endpoint) as s3:
        if create:
            await s3.create_bucket(Bucket=name)
            return
        listed = await s3.list_objects_v2(Bucket=name)
        for item in listed.get("Contents", []):
            await s3.delete_object(Bucket=name, Key=item["Key"])
        await s3.delete_bucket(Bucket=name)
