"""The helpers HQL's SQLite form calls (``hql.compile`` writes them; user SQL cannot name them).

SQLite has no time type: HQL's times there are ClickHouse's UTC text, ``YYYY-MM-DD HH:MM:SS.fff``, whose
text order is time order (``hql.schema``). These functions read any time text SQLite or ClickHouse
would (ISO 8601, with ``T`` or a space, with or without an offset) and write that form, so
``request_created_at > now() - INTERVAL 7 DAY`` compares like with like. A value that is not a time
reads as NULL, as an unparsable string does in ClickHouse's ``OrNull`` functions.
"""

from __future__ import annotations

import calendar
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Final

__all__ = ["install"]

_FORMAT: Final = "%Y-%m-%d %H:%M:%S"


def _parse(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC)
    text = str(value).strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _write(value: datetime) -> str:
    return f"{value.strftime(_FORMAT)}.{value.microsecond // 1000:03d}"


def hql_now() -> str:
    return _write(datetime.now(UTC))


def hql_today() -> str:
    return datetime.now(UTC).date().isoformat()


def hql_datetime(value: object) -> str | None:
    parsed = _parse(value)
    return None if parsed is None else _write(parsed)


def hql_date(value: object) -> str | None:
    parsed = _parse(value)
    return None if parsed is None else parsed.date().isoformat()


def hql_add(value: object, amount: int, unit: str) -> str | None:
    parsed = _parse(value)
    if parsed is None:
        return None
    if unit in {"MONTH", "YEAR"}:
        months = parsed.month - 1 + (amount if unit == "MONTH" else 12 * amount)
        year, month = parsed.year + months // 12, months % 12 + 1
        day = min(parsed.day, calendar.monthrange(year, month)[1])
        try:
            return _write(parsed.replace(year=year, month=month, day=day))
        except ValueError:
            return None
    seconds = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400, "WEEK": 604800}[unit]
    try:
        return _write(parsed + timedelta(seconds=seconds * amount))
    except OverflowError:
        return None


def hql_trunc(value: object, unit: str) -> str | None:
    parsed = _parse(value)
    if parsed is None:
        return None
    day = datetime.combine(parsed.date(), datetime.min.time(), UTC)
    truncated = {
        "SECOND": parsed.replace(microsecond=0),
        "MINUTE": parsed.replace(second=0, microsecond=0),
        "HOUR": parsed.replace(minute=0, second=0, microsecond=0),
        "DAY": day,
        "WEEK": day - timedelta(days=parsed.weekday()),  # weeks start on Monday, as PostgreSQL's do
        "MONTH": day.replace(day=1),
        "YEAR": day.replace(month=1, day=1),
    }[unit]
    return _write(truncated)


def hql_map_get(document: object, key: str) -> str | int | float | None:
    """``map['key']``: the value of ``key`` in a JSON object column (NULL when absent)."""
    if not isinstance(document, str):
        return None
    try:
        value = json.loads(document)
    except ValueError:
        return None
    found = value.get(key) if isinstance(value, dict) else None
    if found is None or isinstance(found, (str, int, float)):
        return found
    return json.dumps(found)


def install(conn: sqlite3.Connection) -> None:
    """Register the helpers on ``conn`` (deterministic ones marked so SQLite may cache them)."""
    conn.create_function("hql_now", 0, hql_now)
    conn.create_function("hql_today", 0, hql_today)
    conn.create_function("hql_datetime", 1, hql_datetime, deterministic=True)
    conn.create_function("hql_date", 1, hql_date, deterministic=True)
    conn.create_function("hql_add", 3, hql_add, deterministic=True)
    conn.create_function("hql_trunc", 2, hql_trunc, deterministic=True)
    conn.create_function("hql_map_get", 2, hql_map_get, deterministic=True)
