"""Response-cache storage (the :class:`~heliport.store.cache_store.CacheStore` port): SQLite locally, DynamoDB in AWS.

Both adapters keep opaque bytes under a key with a per-entry expiry, and both enforce that expiry on
read: DynamoDB's TTL deletes items lazily (often days late) and a SQLite file is only swept now and
then, so an expired entry may still be stored but always reads as absent and may be overwritten.

``put_if_absent`` is a single atomic conditional write in both, so two proxy instances racing for
the same bucket slot never both win it: exactly one write lands, and the other moves on to the next
slot (see ``heliport.cache``).

As in every AWS adapter (``store.aws``), nothing here imports aioboto3 or botocore at load time.
"""

from __future__ import annotations

import asyncio
import math
import random
import secrets
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from heliport.errors import HeliportError
from heliport.store.aws import LazyClient
from heliport.store.blobs import BlobStore
from heliport.store.sqlite import connect

__all__ = ["INLINE_LIMIT", "CacheStore", "CacheUnavailableError", "DynamoCacheStore", "SqliteCacheStore"]

#: Values larger than this go to the blob store, leaving a pointer in the DynamoDB item: items are
#: capped at 400 KB including attribute names, and this leaves room for the key and the rest.
INLINE_LIMIT = 350_000

#: A clock in epoch seconds; injectable so tests can step past an expiry instead of sleeping.
Clock = Callable[[], float]


class CacheStore(Protocol):
    """Response-cache entries: opaque bytes under a key, each with its own time to live.

    Expiry is the store's to enforce on read (DynamoDB deletes expired items lazily, days later):
    an entry past its TTL reads as absent and may be overwritten.
    """

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Each key's live value, in the order asked, None where absent or expired; one round trip if possible."""
        ...

    async def put_if_absent(self, key: str, value: bytes, ttl_seconds: int) -> bool:
        """Store ``value`` unless a live entry already holds ``key``; True when it was stored."""
        ...

    async def aclose(self) -> None: ...


class CacheUnavailableError(HeliportError):
    """The cache store could not answer: DynamoDB kept some keys of a batch read unprocessed."""

    status = 503
    code = "cache_unavailable"


def _check_ttl(ttl_seconds: int) -> None:
    # An entry that is dead on arrival can never be "live", so storing it would only waste a slot.
    if ttl_seconds <= 0:
        raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")


# --- SQLite -------------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS cache_expires_at ON cache(expires_at);
"""

# One statement, so the "is the slot free?" check and the write are a single atomic step, even
# between processes sharing the file: a new key inserts, a live one is left alone (no change, which
# is how the caller learns it lost), and an expired one is taken over in place.
_PUT_IF_ABSENT = """
INSERT INTO cache (key, value, expires_at) VALUES (?, ?, ?)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
WHERE cache.expires_at <= ?
"""

# SQLite's bound-parameter limit is 32766 on current builds; stay far below it on any build.
_SQLITE_CHUNK = 500


class SqliteCacheStore:
    """Cache entries in one SQLite file (``<data_dir>/cache.sqlite3``), shareable between processes.

    Expired rows are swept on the first write and every ``sweep_every`` writes after it, through an
    index on ``expires_at``, so the file does not grow without bound yet no write pays for a scan.
    """

    def __init__(self, path: Path, *, clock: Clock = time.time, sweep_every: int = 256) -> None:
        self._conn = connect(path)
        self._conn.executescript(_SCHEMA)
        self._clock = clock
        self._sweep_every = max(1, sweep_every)
        self._writes = 0

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        unique = list(dict.fromkeys(keys))
        now = self._clock()
        found: dict[str, bytes] = {}
        for start in range(0, len(unique), _SQLITE_CHUNK):
            chunk = unique[start : start + _SQLITE_CHUNK]
            marks = ", ".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT key, value FROM cache WHERE key IN ({marks}) AND expires_at > ?", (*chunk, now)
            )
            found.update(rows)
        return [found.get(key) for key in keys]

    async def put_if_absent(self, key: str, value: bytes, ttl_seconds: int) -> bool:
        _check_ttl(ttl_seconds)
        now = self._clock()
        if self._writes % self._sweep_every == 0:
            self._conn.execute("DELETE FROM cache WHERE expires_at <= ?", (now,))
        self._writes += 1
        cursor = self._conn.execute(_PUT_IF_ABSENT, (key, sqlite3.Binary(value), now + ttl_seconds, now))
        return cursor.rowcount == 1

    async def aclose(self) -> None:
        self._conn.close()


# --- DynamoDB -----------------------------------------------------------------------------------

_PK_PREFIX = "cache#"
_SK = "cache"
_BLOB_PREFIX = "cache/"
#: BatchGetItem's limit on keys per call.
_BATCH_LIMIT = 100
#: Extra BatchGetItem calls for keys DynamoDB left unprocessed (throttling), before giving up.
_UNPROCESSED_RETRIES = 3
_UNPROCESSED_BACKOFF = 0.02


class DynamoCacheStore:
    """Cache entries in the deployment's DynamoDB table, large ones with their bytes in the blob store.

    One item per entry::

        pk              sk      attributes
        cache#<key>     cache   v (B, the value)  | blob (S, blob key cache/<key>/<token>),  expires_at (N)

    ``expires_at`` is whole epoch seconds (rounded up, so an entry lives at least its TTL) and is the
    table's TTL attribute. TTL deletion runs lazily, days late at times, so expiry is checked here:
    a read ignores an expired item and a write may replace one (the write's condition is
    ``attribute_not_exists(pk) OR expires_at <= :now``, one conditional PutItem, atomic).

    A value over :data:`INLINE_LIMIT` bytes would not fit in an item (400 KB at most), so its bytes go
    to the blob store first and the item holds a pointer. Each write gets its own blob key: the item
    is only written if its condition holds, and a write that loses must not have touched the blob a
    live entry points to. The loser's blob is left behind (the proxy may not delete objects), as are
    blobs of expired entries: only a lifecycle rule on ``cache/`` (expiring objects after the longest
    TTL, ``heliport.cache.MAX_TTL``) keeps them from piling up.

    A lookup reads the whole bucket of slots in one ``BatchGetItem`` (eventually consistent: half the
    cost, and a just-written entry read as a miss costs only a lost write race), then fetches any
    blob pointers concurrently. A blob that has gone reads as a miss.

    Timeouts are short and botocore retries once: this sits on the request path, and a slow cache
    must fail fast so the proxy can go without it. Failures raise; the caller fails open.
    """

    def __init__(
        self,
        table_name: str,
        blobs: BlobStore,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        clock: Clock = time.time,
        connect_timeout: float = 1.0,
        read_timeout: float = 2.0,
    ) -> None:
        self._table = table_name
        self._blobs = blobs
        self._clock = clock
        self._client = LazyClient(
            "dynamodb",
            region=region,
            endpoint_url=endpoint_url,
            config={
                # One retry in all (botocore's ``max_attempts`` would not count the first try).
                "retries": {"mode": "standard", "total_max_attempts": 2},
                "connect_timeout": connect_timeout,
                "read_timeout": read_timeout,
            },
        )

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        # BatchGetItem refuses a request naming the same key twice.
        unique = list(dict.fromkeys(keys))
        if not unique:
            return []
        chunks = [unique[start : start + _BATCH_LIMIT] for start in range(0, len(unique), _BATCH_LIMIT)]
        batches = await asyncio.gather(*(self._batch_get(chunk) for chunk in chunks))
        now = self._clock()
        inline: dict[str, bytes] = {}
        pointers: dict[str, str] = {}
        for items in batches:
            for item in items:
                if float(item["expires_at"]["N"]) <= now:
                    continue
                key = item["pk"]["S"].removeprefix(_PK_PREFIX)
                if "v" in item:
                    inline[key] = item["v"]["B"]
                elif "blob" in item:
                    pointers[key] = item["blob"]["S"]
        if pointers:
            fetched = await asyncio.gather(*(self._blobs.get(blob_key) for blob_key in pointers.values()))
            inline.update((key, data) for key, data in zip(pointers, fetched, strict=True) if data is not None)
        return [inline.get(key) for key in keys]

    async def _batch_get(self, keys: list[str]) -> list[dict[str, Any]]:
        """The items for up to 100 distinct keys, asking again for any DynamoDB left unprocessed."""
        client = await self._client.get()
        request: dict[str, Any] = {self._table: {"Keys": [_item_key(key) for key in keys]}}
        items: list[dict[str, Any]] = []
        for attempt in range(_UNPROCESSED_RETRIES + 1):
            if attempt:
                delay = _UNPROCESSED_BACKOFF * 2 ** (attempt - 1)
                await asyncio.sleep(delay + random.uniform(0, delay))
            response = await client.batch_get_item(RequestItems=request)
            items.extend(response.get("Responses", {}).get(self._table, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return items
        left = len(request.get(self._table, {}).get("Keys", []))
        raise CacheUnavailableError(f"DynamoDB left {left} cache keys unprocessed after retries")

    async def put_if_absent(self, key: str, value: bytes, ttl_seconds: int) -> bool:
        from botocore.exceptions import ClientError

        _check_ttl(ttl_seconds)
        now = self._clock()
        item: dict[str, Any] = {
            **_item_key(key),
            "expires_at": {"N": str(math.ceil(now + ttl_seconds))},
        }
        if len(value) > INLINE_LIMIT:
            blob_key = f"{_BLOB_PREFIX}{key}/{secrets.token_hex(8)}"
            await self._blobs.put(blob_key, value, content_type="application/octet-stream")
            item["blob"] = {"S": blob_key}
        else:
            item["v"] = {"B": value}
        client = await self._client.get()
        try:
            await client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR expires_at <= :now",
                ExpressionAttributeValues={":now": {"N": f"{now:.6f}"}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    async def aclose(self) -> None:
        await self._client.aclose()


def _item_key(key: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"{_PK_PREFIX}{key}"}, "sk": {"S": _SK}}
