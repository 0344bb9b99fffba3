"""The blob port (request and response bodies, claim checks, the log spool) and its local adapter.

Keys are S3 keys: ``/``-separated, compared as strings. The AWS adapter is ``store.aws.S3BlobStore``;
the local one keeps each object as a file under a root directory, so ``heliport serve`` needs no
service. Both store the bytes exactly as given: a gzip body put with ``content_encoding="gzip"`` is
read back still compressed, so a reader that fetches it over HTTP (a presigned URL) is the one that
decompresses, as Helicone's reader does.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import secrets
from pathlib import Path
from typing import Protocol

__all__ = ["THREAD_THRESHOLD", "BlobStore", "LocalBlobStore"]

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
