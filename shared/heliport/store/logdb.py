"""The log database port: where the consumer stores :class:`RequestRow` and the query API reads them.

Two adapters share this contract: PostgreSQL (``store.logdb_postgres``, partitioned by month, for
deployments) and SQLite (``store.logdb_sqlite``, for ``heliport serve`` on a laptop). The helpers
here are the parts both need to agree on: the column order, the versioned migration files, UTC
normalisation and the month arithmetic behind partitions and retention.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Literal, Protocol

from heliport.logs.row import RequestRow

__all__ = [
    "COLUMNS",
    "LogDb",
    "Migration",
    "add_months",
    "as_utc",
    "load_migrations",
    "month_start",
    "partition_name",
]

#: Table columns, in RequestRow's field order: both schemas declare exactly these, in this order,
#: so a row converts to and from a tuple without a name lookup per field.
COLUMNS: tuple[str, ...] = RequestRow.__struct_fields__

_MIGRATION_NAME = re.compile(r"^(\d{4}_[a-z0-9_]+)\.sql$")


class LogDb(Protocol):
    async def migrate(self) -> list[str]:
        """Apply the migrations not applied yet, in order; return their names (empty when up to date).

        Safe to call from several processes at once: exactly one applies each migration.
        """
        ...

    async def insert_requests(self, rows: Sequence[RequestRow]) -> int:
        """Store rows in one round trip; return how many were new.

        Idempotent, because queues redeliver: a row whose request_id (with the same created_at, as a
        redelivery has) is already stored is skipped, also within one batch.
        """
        ...

    async def get_request(self, org_id: str, request_id: str) -> RequestRow | None:
        """The organisation's row with this id; None if absent or another organisation's."""
        ...

    async def ensure_partitions(self, now: datetime) -> None:
        """Make sure the partitions for the month of ``now`` and the next exist (a no-op without partitions)."""
        ...

    async def drop_before(self, cutoff: datetime) -> list[str]:
        """Retention for every organisation: remove every UTC month that ended at or before ``cutoff``.

        Whole months go at once (PostgreSQL drops the partitions, which is instant and leaves no
        bloat), so rows newer than the start of ``cutoff``'s month are kept. Returns the months
        removed as partition names (``requests_YYYY_MM``), sorted.
        """
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Migration:
    #: The file name without ``.sql``, e.g. ``0001_requests``: the version recorded in ``schema_migrations``.
    name: str
    sql: str


def load_migrations(dialect: Literal["postgres", "sqlite"]) -> list[Migration]:
    """The dialect's migration files, in version order, read from the package (they ship as package data)."""
    folder = resources.files("heliport.store") / "migrations" / dialect
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(name=match.group(1), sql=entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.name)
    return found


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime is taken to be UTC already (rows are stamped in UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def month_start(value: datetime) -> datetime:
    """Midnight UTC on the first day of ``value``'s UTC month."""
    utc = as_utc(value)
    return datetime(utc.year, utc.month, 1, tzinfo=UTC)


def add_months(start: datetime, months: int) -> datetime:
    """The first of the month ``months`` after ``start``'s month (UTC)."""
    index = start.year * 12 + (start.month - 1) + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_name(value: datetime) -> str:
    """The monthly partition (PostgreSQL) or month label (SQLite retention) holding ``value``."""
    utc = as_utc(value)
    return f"requests_{utc.year:04d}_{utc.month:02d}"
