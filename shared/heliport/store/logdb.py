"""The log database port: where the consumer stores :class:`RequestRow` and the query API reads them.

Two adapters share this contract: PostgreSQL (``store.logdb_postgres``, partitioned by month, for
deployments) and SQLite (``store.logdb_sqlite``, for ``heliport serve`` on a laptop). The helpers
here are the parts both need to agree on: the column order, the versioned migration files, UTC
normalisation and the month arithmetic behind partitions and retention.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Literal, Protocol

import msgspec

from heliport.logs.row import RequestRow

__all__ = [
    "COLUMNS",
    "DeadLetter",
    "LogDb",
    "Migration",
    "RowRejectedError",
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


class RowRejectedError(Exception):
    """The database refused rows for what they hold (a number out of range, a value too long for an
    index), not because it could not be reached: sending the same rows again cannot help.

    Adapters raise it for exactly those errors, so the log writer can tell a poison record (set it
    aside, keep going) from an outage (give the whole batch back and wait).
    """


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """A log record the writer gave up on, kept with the reason so it can be looked at and replayed."""

    #: Assigned by the database; None before it is stored.
    id: int | None = None
    #: Unknown (None) when the record could not even be decoded.
    org_id: str | None
    request_id: str | None
    failed_at: datetime
    attempts: int
    error: str
    #: The record as it was queued (LogRecord JSON), or the raw bytes that could not be decoded.
    record: bytes


class LogDb(Protocol):
    async def migrate(self) -> list[str]:
        """Apply the migrations not applied yet, in order; return their names (empty when up to date).

        Safe to call from several processes at once: exactly one applies each migration.
        """
        ...

    async def insert_requests(self, rows: Sequence[RequestRow]) -> int:
        """Store rows in one round trip; return how many were new.

        Idempotent, because queues redeliver: a row whose (org_id, request_id) (with the same
        created_at, as a redelivery has) is already stored is skipped, also within one batch.
        Raises :class:`RowRejectedError` when a row's values are refused; nothing of the batch is
        stored then.
        """
        ...

    async def get_request(self, org_id: str, request_id: str) -> RequestRow | None:
        """The organisation's row with this id; None if absent or another organisation's."""
        ...

    async def stored_times(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], set[datetime]]:
        """For each (org_id, request_id) already stored, the created_at of its rows (UTC).

        The writer's test for a request id reused inside one organisation: same id, another instant.
        """
        ...

    async def merge_checks(self, org_id: str, request_id: str, checks: Mapping[str, object]) -> bool:
        """Merge ``checks`` (check name -> outcome object) into the stored row's ``checks``, key by key.

        For outcomes known only after the row was stored (a PostHog delivery). Confined to the
        organisation; False when it has no such row.
        """
        ...

    async def add_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        """Keep records the writer gave up on (one transaction)."""
        ...

    async def list_dead_letters(self, *, org_id: str | None = None, limit: int = 100) -> list[DeadLetter]:
        """Dead letters, oldest first; only one organisation's when ``org_id`` is given."""
        ...

    async def count_dead_letters(self, org_id: str) -> int:
        """How many of the organisation's records are dead letters (the dashboard's warning)."""
        ...

    async def delete_dead_letters(self, ids: Sequence[int] | None) -> int:
        """Remove the dead letters with these ids (all of them when None); returns how many went."""
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
