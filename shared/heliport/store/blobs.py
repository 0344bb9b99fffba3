"""The blob port (request and response bodies, claim checks, the log spool): files locally, S3 in AWS.

Keys are S3 keys: ``/``-separated, compared as strings. The local adapter keeps each object as a
file under a root directory, so ``heliport serve`` needs no service. Both store the bytes exactly as
given: a gzip body put with ``content_encoding="gzip"`` is read back still compressed, so a reader
that fetches it over HTTP (a presigned URL) is the one that decompresses, as Helicone's reader does.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from heliport.store.aws import LazyClient

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

__all__ = ["THREAD_THRESHOLD", "BlobStore", "LocalBlobStore", "S3BlobStore"]

#: Bodies at least this large are read and written in a worker thread; smaller ones inline, where a
#: thread hop (tens of microseconds) would cost more than the I/O itself.
THREAD_THRESHOLD = 64 * 1024

# Temporary files are hidden beside their target (``.<name>.<token>.partial``) so ``os.replace`` never
# crosses a file system; keys may not name such a file, and listings skip them.
_TMP_PREFIX = "."
_TMP_SUFFIX = ".partial"


class BlobStore(Protocol):
    async def put(
        self, key: str, data: bytes, *, content_type: str = "application/json", content_encoding: str | None = None
    ) -> None:
        """Store ``data`` under ``key``, replacing any object there; return once it is durable."""
        ...

    async def get(self, key: str) -> bytes | None:
        """The stored bytes, exactly as put (never decompressed); None if there is no such object."""
        ...

    async def list(self, prefix: str, limit: int = 1000) -> list[str]:
        """Up to ``limit`` keys starting with ``prefix``, the smallest first (string order, as S3 lists)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; deleting a missing one is not an error."""
        ...

    async def presign_get(self, key: str, expires_in: int) -> str | None:
        """A URL that reads the object without credentials, or None if the store cannot make one."""
        ...

    async def aclose(self) -> None: ...


def _check_key(key: str) -> list[str]:
    """The key's segments; ValueError for a key that could name a path outside the root.

    Stricter than S3 on purpose: a key here becomes a file path, so absolute paths, ``..``, ``.``,
    empty segments, backslashes (a separator on Windows) and NULs are all refused, as are names of
    this store's own temporary files.
    """
    if not key or "\\" in key or "\0" in key or key.startswith("/") or os.path.isabs(key):
        raise ValueError(f"invalid blob key {key!r}")
    segments = key.split("/")
    for segment in segments:
        if segment in ("", ".", "..") or (segment.startswith(_TMP_PREFIX) and segment.endswith(_TMP_SUFFIX)):
            raise ValueError(f"invalid blob key {key!r}")
    return segments


class LocalBlobStore:
    """Objects as files under ``root``: ``<root>/<key>``, written atomically.

    A write goes to a temporary file beside the target and is renamed over it (``os.replace``), so a
    reader sees the old object or the new one, never half of one, and a crash leaves at most a stray
    temporary file. Without ``fsync`` that survives a process crash but not an OS crash: the same
    promise as the local SQLite queue (WAL, ``synchronous=NORMAL``). With ``fsync=True`` the file and
    its directory are flushed before ``put`` returns, always in a thread, since that wait depends on
    the disk rather than the size of the object.

    Content type and encoding are not kept: the file is the bytes, and callers know what they wrote.
    """

    def __init__(self, root: Path, *, fsync: bool = False) -> None:
        self._root = Path(root).resolve()
        self._fsync = fsync

    @property
    def root(self) -> Path:
        return self._root

    def _path(self, key: str) -> Path:
        return self._root.joinpath(*_check_key(key))

    async def put(
        self, key: str, data: bytes, *, content_type: str = "application/json", content_encoding: str | None = None
    ) -> None:
        path = self._path(key)
        if self._fsync or len(data) >= THREAD_THRESHOLD:
            await asyncio.to_thread(self._write, path, data)
        else:
            self._write(path, data)

    def _write(self, path: Path, data: bytes) -> None:
        tmp = path.with_name(f"{_TMP_PREFIX}{path.name}.{secrets.token_hex(6)}{_TMP_SUFFIX}")
        for attempt in range(3):
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                f = open(tmp, "wb")  # noqa: SIM115 - closed below; opened apart to retry the race
                break
            except FileNotFoundError:
                # A concurrent delete pruned the (then empty) directory between mkdir and open.
                if attempt == 2:
                    raise
        try:
            with f:
                f.write(data)
                if self._fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if self._fsync and hasattr(os, "O_DIRECTORY"):
            fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    async def get(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            size = path.stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None  # a directory of objects (a "common prefix" in S3 terms), not an object
        try:
            if size >= THREAD_THRESHOLD:
                return await asyncio.to_thread(path.read_bytes)
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None  # changed between the stat and the read

    async def list(self, prefix: str, limit: int = 1000) -> list[str]:
        # A directory walk has no size bound, so it always runs in a thread.
        return await asyncio.to_thread(self._list, prefix, limit)

    def _list(self, prefix: str, limit: int) -> builtins.list[str]:  # the method above shadows list here
        if limit <= 0 or "\\" in prefix or "\0" in prefix or prefix.startswith("/"):
            return []
        # Walk only the deepest directory the prefix names in full; its last part is a name prefix.
        head, _, _ = prefix.rpartition("/")
        if head and any(s in ("", ".", "..") for s in head.split("/")):
            return []
        start = self._root.joinpath(*head.split("/")) if head else self._root
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(start):
            rel = os.path.relpath(dirpath, self._root)
            base = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            # Prune directories that cannot hold a match (keys below them all start with base + name + "/").
            dirnames[:] = [d for d in dirnames if _may_match(base + d + "/", prefix)]
            for name in filenames:
                if name.startswith(_TMP_PREFIX) and name.endswith(_TMP_SUFFIX):
                    continue
                key = base + name
                if key.startswith(prefix):
                    keys.append(key)
        keys.sort()
        return keys[:limit]

    async def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return
        # Leave no empty directories behind (a drained spool should not keep a tree of dated folders).
        parent = path.parent
        while parent != self._root:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    async def presign_get(self, key: str, expires_in: int) -> str | None:
        """A ``file://`` URL of the object's path: no signature, since whoever can read it is local."""
        return self._path(key).as_uri()

    async def aclose(self) -> None:
        return None


def _may_match(dir_prefix: str, prefix: str) -> bool:
    """Whether keys under a directory (all starting with ``dir_prefix``) can start with ``prefix``."""
    return dir_prefix.startswith(prefix) or prefix.startswith(dir_prefix)


# --- S3 -----------------------------------------------------------------------------------------


class S3BlobStore:
    """The blob store on S3 (see ``store.blobs.BlobStore``): bodies, claim checks and the log spool.

    Objects are stored byte for byte: ``Content-Encoding`` is metadata for HTTP readers (a presigned
    GET), and neither botocore nor this class decompresses on ``get``. No ``ServerSideEncryption`` is
    sent, so the bucket's default encryption (SSE-S3 or its KMS key) applies, and the IAM policy need
    not allow a choice the bucket already made.

    botocore's standard retries (backoff with jitter on throttles and 5xx) are enough here: callers
    either run after the response (bodies, spool) or in a consumer that SQS redelivers to.
    """

    def __init__(
        self,
        bucket: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        max_attempts: int = 3,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
    ) -> None:
        self._bucket = bucket
        #: ListObjectsV2's page size (S3's maximum); tests lower it to exercise paging cheaply.
        self._page_size = 1000
        config: dict[str, object] = {
            "retries": {"mode": "standard", "max_attempts": max_attempts},
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
        }
        if endpoint_url:
            # MinIO, moto and other S3-compatibles are addressed by path, not by bucket subdomain.
            config["s3"] = {"addressing_style": "path"}
        self._client = LazyClient("s3", region=region, endpoint_url=endpoint_url, config=config)

    @property
    def bucket(self) -> str:
        return self._bucket

    async def put(
        self, key: str, data: bytes, *, content_type: str = "application/json", content_encoding: str | None = None
    ) -> None:
        client = await self._client.get()
        params: dict[str, Any] = {"Bucket": self._bucket, "Key": key, "Body": data, "ContentType": content_type}
        if content_encoding:
            params["ContentEncoding"] = content_encoding
        await client.put_object(**params)

    async def get(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        client = await self._client.get()
        try:
            response = await client.get_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        async with response["Body"] as body:
            data: bytes = await body.read()
        return data

    async def list(self, prefix: str, limit: int = 1000) -> list[str]:
        if limit <= 0:
            return []
        client = await self._client.get()
        paginator = client.get_paginator("list_objects_v2")
        keys: list[str] = []
        pages = paginator.paginate(
            Bucket=self._bucket,
            Prefix=prefix,
            PaginationConfig={"MaxItems": limit, "PageSize": min(limit, self._page_size)},
        )
        async for page in pages:
            keys.extend(item["Key"] for item in page.get("Contents", []))
            if len(keys) >= limit:
                break
        # S3 lists in UTF-8 byte order, which is code-point order: sorting only guards other S3-compatibles.
        keys.sort()
        return keys[:limit]

    async def delete(self, key: str) -> None:
        client = await self._client.get()
        await client.delete_object(Bucket=self._bucket, Key=key)

    async def presign_get(self, key: str, expires_in: int) -> str | None:
        """A SigV4 presigned GET URL; made locally from the credentials, no request to S3."""
        client = await self._client.get()
        url: str = await client.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=expires_in
        )
        return url

    async def aclose(self) -> None:
        await self._client.aclose()


def _missing(error: ClientError) -> bool:
    """Whether S3 said the object is not there; a missing bucket is a deployment error and still raises."""
    code = error.response.get("Error", {}).get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return code in ("NoSuchKey", "404", "NotFound") or (status == 404 and code != "NoSuchBucket")
