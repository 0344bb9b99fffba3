"""The response cache: Helicone's buckets of identical requests, over a :class:`CacheStore`.

Asked for by header only (``Helicone-Cache-Enabled``, or ``-Save`` / ``-Read`` for one direction).
A request's cache key hashes everything that makes two requests "the same" to the caller:

- the seed (``Helicone-Cache-Seed``), the upstream URL, and the body with the top-level keys named in
  ``Helicone-Cache-Ignore-Keys`` removed, as canonical JSON (sorted keys), so key order or an ignored
  ``user`` field does not split entries;
- the cache headers themselves (bucket size, ignore list, seed), as Helicone does;
- the credentials: the heliport key's hash and every provider credential header, so two heliport
  keys, or two provider accounts behind one key, never read each other's answers.

A bucket of size N is N slots (``<key>:0`` .. ``<key>:N-1``). A read fetches every slot in one store
round trip and is a hit only when all N are filled; it then returns one at random, so a caller
asking for variety gets N different answers once N were seen. A write fills the first free slot.

Entries hold the response as it was relayed (status, headers, the chunks in arrival order), so a
stream replays as the same valid stream. They are msgpack, zlib-compressed, with their own format
version: an entry the code cannot read is a miss, never an error.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
import zlib
from collections.abc import Sequence

import msgspec

from heliport.errors import InvalidHeaderError
from heliport.headers import RequestOptions
from heliport.store.cache_store import CacheStore

__all__ = [
    "DEFAULT_TTL",
    "MAX_TTL",
    "CacheEntry",
    "Lookup",
    "ResponseCache",
    "cache_key",
    "cache_ttl",
    "decode_entry",
    "encode_entry",
    "new_entry",
]

#: Seven days, Helicone's default when the request's Cache-Control names no max-age.
DEFAULT_TTL = 604_800
#: 365 days: longer max-age values are clamped to it.
MAX_TTL = 31_536_000
#: Request headers that carry provider credentials; part of the key, never stored.
_CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "x-goog-api-key"})
_ENTRY_VERSION = 1


class CacheEntry(msgspec.Struct, kw_only=True):
    v: int = _ENTRY_VERSION
    #: The request whose response this is: a hit's log points at it.
    request_id: str
    status: int
    headers: list[tuple[str, str]]
    #: How long the original took, start to last byte: what each hit saves.
    latency_ms: float
    chunks: list[bytes]
    created_at: float


_entry_decoder = msgspec.msgpack.Decoder(CacheEntry)
_entry_encoder = msgspec.msgpack.Encoder()


def encode_entry(entry: CacheEntry) -> bytes:
    return zlib.compress(_entry_encoder.encode(entry), 6)


def decode_entry(data: bytes) -> CacheEntry | None:
    try:
        entry = _entry_decoder.decode(zlib.decompress(data))
    except (zlib.error, msgspec.DecodeError, msgspec.ValidationError):
        return None
    return entry if entry.v == _ENTRY_VERSION else None


def cache_ttl(headers: Sequence[tuple[str, str]]) -> int:
    """Seconds to keep a new entry: the request's ``Cache-Control`` s-maxage, else max-age, else 7 days."""
    directives: dict[str, str] = {}
    for name, value in headers:
        if name == "cache-control":
            for part in value.split(","):
                directive, _, argument = part.strip().partition("=")
                directives[directive.strip().lower()] = argument.strip().strip('"')
    raw = directives.get("s-maxage", directives.get("max-age"))
    if raw is None:
        return DEFAULT_TTL
    try:
        seconds = int(raw)
    except ValueError:
        raise InvalidHeaderError("Cache-Control", f"max-age must be a whole number of seconds, got {raw!r}") from None
    if seconds <= 0:
        raise InvalidHeaderError("Cache-Control", f"max-age must be positive to cache, got {seconds}")
    return min(seconds, MAX_TTL)


def _canonical_body(body: bytes, ignore_keys: Sequence[str]) -> bytes:
    try:
        parsed = msgspec.json.decode(body)
        if isinstance(parsed, dict):
            for key in ignore_keys:
                parsed.pop(key, None)
        return msgspec.json.encode(parsed, order="sorted")
    except (msgspec.DecodeError, RecursionError):
        # Not JSON, or deeper than msgspec goes (the pass-through forwards such bodies as they are):
        # the bytes themselves are the identity.
        return body


def cache_key(
    options: RequestOptions,
    *,
    key_hash: str,
    target_url: str,
    body: bytes,
    forward_headers: Sequence[tuple[str, str]],
) -> str:
    """The bucket's key (hex SHA-256); see the module docstring for what goes into it and why."""
    digest = hashlib.sha256()

    def part(data: bytes) -> None:
        # Length-prefixed, so no two different part lists hash the same bytes.
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)

    part((options.cache_seed or "").encode())
    part(target_url.encode())
    part(_canonical_body(body, options.cache_ignore_keys))
    part(
        msgspec.json.encode(
            [options.cache_seed, options.cache_bucket_max_size, sorted(options.cache_ignore_keys)],
        )
    )
    part(key_hash.encode())
    credentials = sorted((name, value) for name, value in forward_headers if name in _CREDENTIAL_HEADERS)
    part(msgspec.json.encode(credentials))
    return digest.hexdigest()


def _slots(key: str, size: int) -> list[str]:
    return [f"{key}:{index}" for index in range(size)]


class Lookup(msgspec.Struct, frozen=True):
    """What a read found: the entry and its slot on a hit, and the empty slots a write may fill."""

    entry: CacheEntry | None = None
    index: int | None = None
    free: tuple[int, ...] = ()


class ResponseCache:
    """Bucket reads and writes over one store, each bounded by ``timeout`` seconds.

    A store failure or timeout raises; the proxy treats it as a miss and records why (fail open).
    """

    def __init__(self, store: CacheStore, *, timeout: float = 2.0, rng: random.Random | None = None) -> None:
        self._store = store
        self._timeout = timeout
        self._rng = rng or random.Random()

    async def lookup(self, key: str, size: int) -> Lookup:
        values = await asyncio.wait_for(self._store.get_many(_slots(key, size)), self._timeout)
        entries = [decode_entry(value) if value is not None else None for value in values]
        free = tuple(index for index, entry in enumerate(entries) if entry is None)
        if free:
            return Lookup(free=free)
        index = self._rng.randrange(size)
        return Lookup(entry=entries[index], index=index)

    async def save(
        self, key: str, size: int, entry: CacheEntry, ttl: int, free: Sequence[int] | None = None
    ) -> int | None:
        """Write ``entry`` into the first free slot; the slot's index, or None when the bucket is full.

        ``free`` is what a preceding lookup saw empty; without one (``Helicone-Cache-Save`` alone),
        slots are tried in order. A slot another instance filled meanwhile is skipped, not overwritten.
        """
        data = encode_entry(entry)
        candidates = list(free) if free is not None else list(range(size))
        slots = _slots(key, size)

        async def fill() -> int | None:
            for index in candidates:
                if await self._store.put_if_absent(slots[index], data, ttl):
                    return index
            return None

        return await asyncio.wait_for(fill(), self._timeout)


def new_entry(
    *, request_id: str, status: int, headers: list[tuple[str, str]], latency_ms: float, chunks: list[bytes]
) -> CacheEntry:
    return CacheEntry(
        request_id=request_id,
        status=status,
        headers=headers,
        latency_ms=latency_ms,
        chunks=chunks,
        created_at=time.time(),
    )
