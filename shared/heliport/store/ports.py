"""The storage ports. Each has an AWS adapter (``store.aws``) and a local one (``store.local``).

Stores speak in typed records, never raw rows or items, so the proxy cannot tell which one it has.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import msgspec

from heliport.logs.record import LogRecord

__all__ = ["ApiKey", "CacheStore", "CounterStore", "KeyStore", "LogQueue", "Organisation"]


class Organisation(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    created_at: datetime


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    """A heliport key as stored: only its SHA-256 hash, never the key itself."""

    id: str
    org_id: str
    name: str
    key_hash: str
    #: The first characters of the key, so a person can tell keys apart in a list.
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class KeyStore(Protocol):
    async def put_org(self, org: Organisation) -> None:
        """Store ``org``, replacing any organisation with its id; no check on the name (see ``create_org``)."""
        ...

    async def create_org(self, org: Organisation) -> None:
        """Store a new organisation; ValueError if its id or its name is already taken.

        Names are unique per store (``heliport keys --org`` accepts a name), and the check and the
        write are one atomic step, so two concurrent creates of one name cannot both succeed.
        """
        ...

    async def get_org(self, org_id: str) -> Organisation | None: ...

    async def find_orgs(self, name: str) -> list[Organisation]:
        """The organisations called exactly ``name``, oldest first.

        At most one when every organisation came through ``create_org``; ``put_org`` does not check
        names, so a store written before names were unique may answer several.
        """
        ...

    async def list_orgs(self) -> list[Organisation]:
        """Every organisation, oldest first (the first is the default of ``bootstrap_local_org``)."""
        ...

    async def put_key(self, key: ApiKey) -> None: ...

    async def get_key(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, revoked or not; None if there is none."""
        ...

    async def list_keys(self, org_id: str) -> list[ApiKey]: ...

    async def revoke_key(self, org_id: str, key_id: str) -> bool:
        """Mark the key revoked; False if the organisation has no such key."""
        ...

    async def aclose(self) -> None: ...


class LogQueue(Protocol):
    async def send(self, record: LogRecord) -> None:
        """Return only once the record is durably accepted; raise if it could not be."""
        ...

    async def aclose(self) -> None: ...


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


class CounterStore(Protocol):
    """Numeric counters shared by every proxy instance: the rate limiter's windows.

    Keys name one window of one limit, so a counter is never reset, only left to expire.
    """

    async def get(self, key: str) -> float:
        """The counter's value; 0 when it does not exist or has expired."""
        ...

    async def add(
        self, key: str, amount: float, *, ttl_seconds: int, at_most: float | None = None
    ) -> tuple[bool, float]:
        """Atomically add ``amount``; with ``at_most``, only when the result stays at or under it.

        Returns (applied, value): the value after the add when applied, else the value that stopped it.
        The first add sets the expiry ``ttl_seconds`` from now; later adds keep it. One conditional write.
        """
        ...

    async def aclose(self) -> None: ...
