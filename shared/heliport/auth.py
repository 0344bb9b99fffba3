"""heliport API keys: making them, hashing them, and checking them on the hot path.

Keys are 192 random bits behind a recognisable prefix, so a plain SHA-256 is the right hash (a slow
password hash protects guessable secrets; these are not guessable) and lookups stay one KV read.
:class:`Authenticator` remembers answers, hits and misses alike, for ``ttl`` seconds: a key costs at
most one store read per TTL per process, and a revoked key stops working within one TTL.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
import uuid
from datetime import UTC, datetime

from heliport.errors import AuthenticationError
from heliport.store.keys import ApiKey, KeyStore, Organisation

__all__ = ["KEY_PREFIX", "Authenticator", "bootstrap_local_org", "create_key", "generate_key", "hash_key"]

KEY_PREFIX = "sk-heliport-"
_DISPLAY_CHARS = len(KEY_PREFIX) + 6
# Misses are remembered briefly: enough to absorb a retry storm from a client with a bad key,
# short enough that a key created a moment ago works at once on its next try.
_MISS_TTL = 2.0
_MAX_CACHED = 10_000
_MISSING_KEY = "Missing heliport key: send 'Helicone-Auth: Bearer <key>' or put the key in the path."


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_hex(24)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_key(store: KeyStore, org_id: str, name: str) -> tuple[str, ApiKey]:
    """Make a key for ``org_id``; the plain key is returned once and never stored."""
    plain = generate_key()
    record = ApiKey(
        id=str(uuid.uuid4()),
        org_id=org_id,
        name=name,
        key_hash=hash_key(plain),
        prefix=plain[:_DISPLAY_CHARS],
        created_at=datetime.now(UTC),
    )
    await store.put_key(record)
    return plain, record


async def bootstrap_local_org(store: KeyStore) -> tuple[Organisation, str | None]:
    """The first organisation, creating it and a first key on a fresh store.

    Returns the plain key only when it was just made (it cannot be shown again later).
    """
    orgs = await store.list_orgs()
    if orgs:
        return orgs[0], None
    org = Organisation(id=str(uuid.uuid4()), name="local", created_at=datetime.now(UTC))
    await store.put_org(org)
    plain, _ = await create_key(store, org.id, "default")
    return org, plain


class Authenticator:
    """Keys by their hash, cached for ``ttl`` seconds (unknown ones for two).

    One lookup per key at a time: requests that arrive while a key is being read from the store
    wait for that read instead of starting their own (with Lambda Managed Instances, 64 first
    requests in one environment would otherwise be 64 DynamoDB reads). The read is a task of its
    own, so a waiter that is cancelled (its client went away) does not cancel it for the others.
    """

    def __init__(self, store: KeyStore, ttl: float) -> None:
        self._store = store
        self._ttl = ttl
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._lookups: dict[str, asyncio.Task[ApiKey | None]] = {}

    async def authenticate(self, token: str | None) -> ApiKey:
        """The active key ``token`` names, or :class:`AuthenticationError` (401 ``invalid_api_key``).

        Every unusable key is a 401, as Helicone answers. No token (None or only blanks) is a missing key,
        and so is ``Helicone-Auth: Bearer`` with nothing after it (the header parser passes None); a token
        no key hashes to is an unknown key; a revoked key is refused. A ``Helicone-Auth`` that is not
        ``Bearer <key>`` at all is refused with the same 401 while the headers are parsed
        (:func:`heliport.headers.parse_headers`).
        """
        if token is None or not token.strip():
            raise AuthenticationError(_MISSING_KEY)
        key_hash = hash_key(token)
        now = time.monotonic()
        cached = self._cache.get(key_hash)
        if cached is not None and cached[0] > now:
            key = cached[1]
        else:
            lookup = self._lookups.get(key_hash)
            if lookup is None:
                lookup = asyncio.get_running_loop().create_task(self._store.get_key(key_hash))
                self._lookups[key_hash] = lookup
                lookup.add_done_callback(lambda done: self._looked_up(key_hash, done))
            key = await asyncio.shield(lookup)
        if key is None:
            raise AuthenticationError("Unknown heliport key.")
        if not key.active:
            raise AuthenticationError("This heliport key has been revoked.")
        return key

    def _looked_up(self, key_hash: str, lookup: asyncio.Task[ApiKey | None]) -> None:
        """Cache what the store answered; a failed read is not cached (the next request tries again)."""
        del self._lookups[key_hash]
        if lookup.cancelled() or lookup.exception() is not None:  # retrieved: the waiters raise it
            return
        key = lookup.result()
        if len(self._cache) >= _MAX_CACHED:
            self._cache.clear()
        self._cache[key_hash] = (time.monotonic() + (self._ttl if key is not None else _MISS_TTL), key)
