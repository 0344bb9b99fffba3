"""The two SQL dialects the query API speaks, and the one way to add a bind parameter.

Every value, property name included, reaches the database as a parameter; only column names from
a whitelist and fixed keywords are ever written into the SQL text. :class:`Params` collects the
values in order and renders the dialect's placeholder for each (``$1`` for PostgreSQL/asyncpg,
``?`` for SQLite). :func:`js_iso` reads an instant back from either database, as answers print it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from heliport.store.logdb_sqlite import stored_timestamp

__all__ = ["POSTGRES", "SQLITE", "Dialect", "Params", "js_iso"]


@dataclass(frozen=True, slots=True)
class Dialect:
    name: Literal["postgres", "sqlite"]

    def property(self, column: str, placeholder: str) -> str:
        """The text value of one key of a JSON object column; the key arrives as ``placeholder``."""
        if self.name == "postgres":
            return f"({column} ->> {placeholder})"
        # Not json_extract with a JSON path: SQLite's path syntax cannot quote every key (a '"' in a
        # property name has no escape), while json_each compares the plain key as a bound value.
        return f"(SELECT j.value FROM json_each({column}) AS j WHERE j.key = {placeholder})"

    def timestamp(self, value: datetime) -> object:
        """A bound instant: PostgreSQL takes the datetime; SQLite compares the fixed-width UTC text it
        stores (``logdb_sqlite.stored_timestamp``), so comparing text is comparing instants."""
        if self.name == "postgres":
            return value
        return stored_timestamp(value)

    def property_key(self, name: str) -> str:
        """The parameter value that :meth:`property` expects for the key ``name`` (the name itself)."""
        return name


POSTGRES = Dialect("postgres")
SQLITE = Dialect("sqlite")


@dataclass(slots=True)
class Params:
    dialect: Dialect
    values: list[object] = field(default_factory=list)

    def add(self, value: object) -> str:
        """Bind ``value``; return its placeholder."""
        self.values.append(value)
        return f"${len(self.values)}" if self.dialect.name == "postgres" else "?"


def js_iso(value: object) -> str:
    """A stored instant (asyncpg datetime or SQLite UTC text) as JavaScript's toISOString would print it."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"not a timestamp: {value!r}")
    utc = value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"
