"""The blob store contract, run against both adapters: files under a directory, and S3 on moto's server."""

from __future__ import annotations

import asyncio
import gzip
import os
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import httpx
import pytest

from heliport.store.blobs import BlobStore, LocalBlobStore, S3BlobStore
from tests.aws import REGION

pytestmark = pytest.mark.anyio


async def test_put_get_keeps_gzip_bytes_as_they_are(blobs: BlobStore) -> None:
    data = gzip.compress(b'{"request": "hi", "response": "there"}' * 100)
    await blobs.put("organizations/o/requests/r/raw_request_response_body", data, content_encoding="gzip")
    # Neither the adapter nor its HTTP client may decompress for the caller.
    assert await blobs.get("organizations/o/requests/r/raw_request_response_body") == data


async def test_put_replaces(blobs: BlobStore) -> None:
    await blobs.put("a/b.json", b"one")
    await blobs.put("a/b.json", b"two")
    assert await blobs.get("a/b.json") == b"two"
    assert await blobs.list("a/") == ["a/b.json"]


async def test_get_missing_is_none(blobs: BlobStore) -> None:
    assert await blobs.get("no/such/key.json") is None
    await blobs.put("dir/file.json", b"x")
    # A key "below" an object, or naming a directory of objects, is missing too.
    assert await blobs.get("dir/file.json/child") is None
    assert await blobs.get("dir") is None


async def test_list_by_prefix_sorted_and_limited(blobs: BlobStore) -> None:
    keys = [
        "spool/2024/05/17/b.json",
        "spool/2024/05/16/z.json",
        "spool/2024/05/17/a.json",
        "spool-dead/2024/05/17/c.json",
        "claims/org/r.json",
        "a/b",
        "a.b",
        "a-b",
    ]
    for key in keys:
        await blobs.put(key, key.encode())
    assert await blobs.list("spool/") == [
        "spool/2024/05/16/z.json",
        "spool/2024/05/17/a.json",
        "spool/2024/05/17/b.json",
    ]
    assert await blobs.list("spool/", limit=2) == ["spool/2024/05/16/z.json", "spool/2024/05/17/a.json"]
    # A prefix need not end at a "/": it is a string prefix, as in S3.
    assert await blobs.list("spool") == [*sorted(k for k in keys if k.startswith("spool"))]
    assert await blobs.list("spool/2024/05/1") == await blobs.list("spool/")
    assert await blobs.list("spool/2024/05/17/a") == ["spool/2024/05/17/a.json"]
    # String order, not directory-walk order: "-" < "." < "/".
    assert await blobs.list("a") == ["a-b", "a.b", "a/b"]
    assert await blobs.list("") == sorted(keys)
    assert await blobs.list("nothing/") == []
    assert await blobs.list("spool/", limit=0) == []


async def test_list_follows_pages(blobs: BlobStore) -> None:
    # S3 returns at most 1000 keys a page; a page of 2 makes the adapter follow pages on 7 objects.
    if isinstance(blobs, S3BlobStore):
        blobs._page_size = 2
    await asyncio.gather(*(blobs.put(f"many/{i:02d}", b"") for i in range(7)))
    await blobs.put("other/x", b"")
    assert await blobs.list("many/", limit=5) == [f"many/{i:02d}" for i in range(5)]
    assert await blobs.list("many/") == [f"many/{i:02d}" for i in range(7)]


async def test_delete(blobs: BlobStore) -> None:
    await blobs.put("spool/2024/05/17/a.json", b"a")
    await blobs.put("spool/2024/05/17/b.json", b"b")
    await blobs.delete("spool/2024/05/17/a.json")
    assert await blobs.get("spool/2024/05/17/a.json") is None
    assert await blobs.list("spool/") == ["spool/2024/05/17/b.json"]
    await blobs.delete("spool/2024/05/17/a.json")  # missing: not an error
    await blobs.delete("spool/2024/05/17/b.json")
    assert await blobs.list("spool/") == []
    # Writing again under the pruned directories works.
    await blobs.put("spool/2024/05/17/c.json", b"c")
    assert await blobs.get("spool/2024/05/17/c.json") == b"c"


async def test_large_object(blobs: BlobStore) -> None:
    data = os.urandom(2 * 1024 * 1024)
    await blobs.put("claims/org/large.json", data, content_type="application/octet-stream")
    assert await blobs.get("claims/org/large.json") == data


async def test_concurrent_puts(blobs: BlobStore) -> None:
    payloads = {f"spool/2024/05/17/{i}.json": os.urandom(100 + i * 1000) for i in range(100)}
    await asyncio.gather(*(blobs.put(k, v) for k, v in payloads.items()))
    assert await blobs.list("spool/") == sorted(payloads)
    for key, value in payloads.items():
        assert await blobs.get(key) == value


async def test_presign_get(blobs: BlobStore) -> None:
    data = gzip.compress(b'{"request": "q", "response": "a"}')
    await blobs.put("organizations/o/requests/r/raw_request_response_body", data, content_encoding="gzip")
    url = await blobs.presign_get("organizations/o/requests/r/raw_request_response_body", 3600)
    assert url is not None
    if isinstance(blobs, LocalBlobStore):
        # Local: a file:// URL of the object itself.
        parsed = urlparse(url)
        assert parsed.scheme == "file"
        assert await asyncio.to_thread(Path(url2pathname(parsed.path)).read_bytes) == data
        return
    async with httpx.AsyncClient() as client, client.stream("GET", url) as response:
        assert response.status_code == 200
        assert response.headers["content-encoding"] == "gzip"
        assert response.headers["content-type"] == "application/json"
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    assert raw == data
    # Without the signature, the same URL is refused.
    async with httpx.AsyncClient() as client:
        refused = await client.get(url.split("?", 1)[0])
    assert refused.status_code == 403


# --- Local only -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "../escape.json",
        "a/../../escape.json",
        "a/..",
        "..",
        "/etc/passwd",
        "a\\..\\b",
        "a\\b",
        "",
        "a//b",
        "a/./b",
        "a/",
        "nul\0byte",
        "a/.b.0123456789ab.partial",
    ],
)
async def test_local_rejects_keys_outside_root(tmp_path: Path, key: str) -> None:
    store = LocalBlobStore(tmp_path / "root")
    with pytest.raises(ValueError, match="invalid blob key"):
        await store.put(key, b"x")
    with pytest.raises(ValueError, match="invalid blob key"):
        await store.get(key)
    with pytest.raises(ValueError, match="invalid blob key"):
        await store.delete(key)
    with pytest.raises(ValueError, match="invalid blob key"):
        await store.presign_get(key, 60)
    # Nothing written anywhere; the root was not even made.
    assert os.listdir(tmp_path) == []


async def test_local_list_ignores_traversal_prefixes(tmp_path: Path) -> None:
    (tmp_path / "outside.json").write_bytes(b"secret")
    store = LocalBlobStore(tmp_path / "root")
    await store.put("inside.json", b"x")
    assert await store.list("../") == []
    assert await store.list("/") == []
    assert await store.list("a/../") == []


async def test_local_writes_are_atomic_and_leave_no_temporary_files(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path, fsync=True)
    await store.put("spool/2024/05/17/a.json", b"small")
    await store.put("spool/2024/05/17/b.json", os.urandom(200_000))
    names = sorted(p.name for p in (tmp_path / "spool/2024/05/17").iterdir())
    assert names == ["a.json", "b.json"]
    # A temporary file left by a crash mid-write is not an object.
    (tmp_path / "spool/2024/05/17/.c.json.0123456789ab.partial").write_bytes(b"half")
    assert await store.list("spool/") == ["spool/2024/05/17/a.json", "spool/2024/05/17/b.json"]


async def test_local_delete_prunes_empty_directories(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "root")
    await store.put("spool/2024/05/17/a.json", b"a")
    await store.put("spool/2024/05/18/b.json", b"b")
    await store.delete("spool/2024/05/17/a.json")
    assert not (tmp_path / "root/spool/2024/05/17").exists()
    assert (tmp_path / "root/spool/2024/05/18/b.json").exists()
    await store.delete("spool/2024/05/18/b.json")
    assert list((tmp_path / "root").iterdir()) == []


# --- S3 only --------------------------------------------------------------------------------------


async def test_s3_stores_content_headers_without_explicit_encryption(aws_endpoint: str, s3_bucket: str) -> None:
    import aioboto3

    store = S3BlobStore(s3_bucket, region=REGION, endpoint_url=aws_endpoint)
    try:
        await store.put("claims/o/r.json", gzip.compress(b"{}"), content_encoding="gzip")
        await store.put("spool/x.json", b"{}")
    finally:
        await store.aclose()
    async with aioboto3.Session().client("s3", region_name=REGION, endpoint_url=aws_endpoint) as s3:
        claim = await s3.head_object(Bucket=s3_bucket, Key="claims/o/r.json")
        plain = await s3.head_object(Bucket=s3_bucket, Key="spool/x.json")
    assert claim["ContentType"] == "application/json"
    assert claim["ContentEncoding"] == "gzip"
    assert plain["ContentType"] == "application/json"
    assert "ContentEncoding" not in plain


async def test_s3_missing_bucket_raises_rather_than_reads_as_missing(aws_endpoint: str) -> None:
    from botocore.exceptions import ClientError

    store = S3BlobStore("heliport-no-such-bucket", region=REGION, endpoint_url=aws_endpoint)
    try:
        with pytest.raises(ClientError, match="NoSuchBucket"):
            await store.get("a.json")
    finally:
        await store.aclose()
