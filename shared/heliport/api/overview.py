"""Read-only aggregates for the dashboard (``/dashboard``), computed in SQL on PostgreSQL and SQLite.

::

    POST /v1/dashboard/overview        overview      -> Overview
    POST /v1/dashboard/session-tree    session_tree  -> SessionTreeRow[]
    POST /v1/dashboard/timeseries      timeseries    -> Timeseries       (the overview's charts)

Helicone's documented REST API has no single call for a dashboard's headline numbers, and the
request row it documents (``HeliconeRequest``) does not carry ``Helicone-Session-Path`` nor offer
the overview's figures over time; these three endpoints fill exactly those gaps and nothing else (the
time series' own decisions are stated where it begins, below). Like every other statement of the query API,
each one here has ``org_id = <param>`` in its own text and runs under the key's organisation
(row-level security on PostgreSQL).

Decisions:

* An error is a status outside 200-299. ``error_rate`` is errors / requests (0 with no requests).
* Percentiles are linear interpolation (PostgreSQL's ``percentile_cont``), written with
  ``row_number()`` so one statement serves both databases; rows without a value are left out.
* A cache hit costs nothing; the money it saved is the cost of the request whose response it
  replayed (``cache_reference_id``), when that request is still stored; the time it saved is the
  original's latency (``cache_latency_saved_ms``).
* Breakdowns are the ``limit`` (default 10) largest groups by request count; a row without a value
  for the grouping (no user, no such property) is the group ``null``.
* ``timeFilter`` is a half-open range ``[start, end)`` in Unix milliseconds; absent, all time.

The handlers need only the log database, so they take anything with a ``db`` (:class:`Reader`), not
the API object: this module knows the route-table shapes (``api/endpoint.py``) and nothing of
``api/app.py``, which registers them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from heliport.api.database import QueryDb
from heliport.api.dialect import Params, js_iso
from heliport.api.endpoint import Call
from heliport.api.filters import compile_request_filter
from heliport.api.schemas import FIRST_INSTANT_MS, LAST_INSTANT_MS, FilterNode, MsTimeFilter, TimezoneMinutes

__all__ = [
    "Overview",
    "OverviewBody",
    "Reader",
    "SessionTreeBody",
    "SessionTreeRow",
    "Timeseries",
    "TimeseriesBody",
    "increment_for",
    "overview",
    "session_tree",
    "timeseries",
]


class Reader(Protocol):
    """What the dashboard's handlers use of the API: its database (``QueryApi`` has one)."""

    @property
    def db(self) -> QueryDb: ...


_MAX_TREE = 1000


class OverviewBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    timeFilter: MsTimeFilter | None = None
    filter: FilterNode = "all"
    #: Also break down by the values of this property.
    property: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 10


class SessionTreeBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    sessionId: Annotated[str, Field(min_length=1, max_length=1024)]


class OverviewTotals(BaseModel):
    requests: int
    errors: int
    error_rate: float
    cost: float
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    users: int
    sessions: int
    cache_hits: int
    cache_saved_cost: float
    cache_saved_latency_ms: float
    latency_p50: float | None
    latency_p95: float | None
    ttft_p50: float | None
    ttft_p95: float | None


class OverviewGroup(BaseModel):
    key: str | None
    requests: int
    errors: int
    cost: float
    total_tokens: int


class Overview(BaseModel):
    totals: OverviewTotals
    by_model: list[OverviewGroup]
    by_provider: list[OverviewGroup]
    by_user: list[OverviewGroup]
    #: By the values of ``property`` (empty when none was asked for).
    by_property: list[OverviewGroup]
    #: The organisation's log records the writer could not store and set aside (issue 18); any time.
    dead_letters: int


class SessionTreeRow(BaseModel):
    request_id: str
    created_at: str
    session_path: str | None
    session_name: str | None
    model: str | None
    provider: str
    status: int
    user_id: str | None
    delay_ms: float | None
    time_to_first_token: float | None
    total_tokens: int | None
    cost: float | None
    request_preview: str | None


# --- SQL -------------------------------------------------------------------------------------------


def _postgres(params: Params) -> bool:
    return params.dialect.name == "postgres"


def _cost(params: Params) -> str:
    return "cost" if _postgres(params) else "CAST(cost AS REAL)"


def _scoped(body: OverviewBody, org_id: str, params: Params) -> str:
    """``scoped AS (...)``: the organisation's requests matching the filter and time range."""
    where = compile_request_filter(body.filter, params)  # its values are bound first: it comes first
    conditions = [f"({where})", f"org_id = {params.add(org_id)}"]
    if body.timeFilter is not None:
        # Both ends are instants a datetime holds: the model's bounds (MsTimeFilter) say so.
        start, end = body.timeFilter.bounds()
        conditions.append(f"created_at >= {params.add(params.dialect.timestamp(start))}")
        conditions.append(f"created_at < {params.add(params.dialect.timestamp(end))}")
    return f"scoped AS (SELECT * FROM requests WHERE {' AND '.join(conditions)})"


_ERROR = "CASE WHEN status < 200 OR status >= 300 THEN 1 ELSE 0 END"
_TOKENS = "coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)"


def _totals_sql(body: OverviewBody, org_id: str, params: Params) -> str:
    cost = _cost(params)
    original = "o.request_id::text" if _postgres(params) else "o.request_id"
    original_cost = "o.cost" if _postgres(params) else "CAST(o.cost AS REAL)"
    return (
        f"WITH {_scoped(body, org_id, params)}"
        " SELECT count(*) AS requests,"
        f" coalesce(sum({_ERROR}), 0) AS errors,"
        f" coalesce(sum({cost}), 0) AS cost,"
        " coalesce(sum(prompt_tokens), 0) AS prompt_tokens,"
        " coalesce(sum(completion_tokens), 0) AS completion_tokens,"
        " count(DISTINCT user_id) AS users, count(DISTINCT session_id) AS sessions,"
        " coalesce(sum(CASE WHEN cache_hit THEN 1 ELSE 0 END), 0) AS cache_hits,"
        " coalesce(sum(CASE WHEN cache_hit THEN cache_latency_saved_ms END), 0) AS cache_saved_latency_ms,"
        f" coalesce((SELECT sum({original_cost}) FROM scoped h JOIN requests o"
        f" ON o.org_id = h.org_id AND {original} = h.cache_reference_id WHERE h.cache_hit), 0) AS cache_saved_cost"
        " FROM scoped"
    )


def _percentiles_sql(body: OverviewBody, org_id: str, params: Params) -> str:
    """p50 and p95 of latency and TTFT: one row per metric."""
    postgres = _postgres(params)
    double = "double precision" if postgres else "REAL"

    def whole(expr: str) -> str:
        # SQLite's floor() needs the optional math functions; a position is never negative, so
        # truncation is floor there. PostgreSQL's CAST to integer rounds, so it uses floor().
        return f"floor({expr})" if postgres else f"CAST({expr} AS INTEGER)"

    def at(p: float) -> str:
        pos = f"(CAST({p} AS {double}) * (n - 1))"
        i = whole(pos)
        low = f"max(CASE WHEN i = {i} THEN v END)"
        high = f"max(CASE WHEN i = {i} + 1 THEN v END)"
        return f"({low} + coalesce({high} - {low}, 0) * max({pos} - {i}))"

    return (
        f"WITH {_scoped(body, org_id, params)},"
        " vals AS (SELECT 'latency' AS metric, delay_ms AS v FROM scoped WHERE delay_ms IS NOT NULL"
        " UNION ALL SELECT 'ttft', time_to_first_token FROM scoped WHERE time_to_first_token IS NOT NULL),"
        " ranked AS (SELECT metric, v, row_number() OVER (PARTITION BY metric ORDER BY v) - 1 AS i,"
        " count(*) OVER (PARTITION BY metric) AS n FROM vals)"
        f" SELECT metric, {at(0.5)} AS p50, {at(0.95)} AS p95 FROM ranked GROUP BY metric"
    )


def _group_sql(body: OverviewBody, org_id: str, params: Params, key: str | None) -> str:
    """The largest groups by ``key`` (a column), or by the value of ``body.property`` when None."""
    scoped = _scoped(body, org_id, params)
    if key is None:
        assert body.property is not None
        key = params.dialect.property("properties", params.add(params.dialect.property_key(body.property)))
    collate = ' COLLATE "C"' if _postgres(params) else ""
    return (
        f"WITH {scoped}, keyed AS (SELECT {key} AS key, status, cost, prompt_tokens, completion_tokens FROM scoped)"
        f" SELECT key, count(*) AS requests, coalesce(sum({_ERROR}), 0) AS errors,"
        f" coalesce(sum({_cost(params)}), 0) AS cost, coalesce(sum({_TOKENS}), 0) AS total_tokens"
        f" FROM keyed GROUP BY key ORDER BY count(*) DESC, key{collate} LIMIT {params.add(body.limit)}"
    )


def _number(value: Any) -> float:
    return float(value) if value is not None else 0.0


def _whole(value: Any) -> int:
    return int(value) if value is not None else 0


def _groups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "key": None if row["key"] is None else str(row["key"]),
            "requests": _whole(row["requests"]),
            "errors": _whole(row["errors"]),
            "cost": _number(row["cost"]),
            "total_tokens": _whole(row["total_tokens"]),
        }
        for row in rows
    ]


# --- handlers (registered in api/app.py's ENDPOINTS) ------------------------------------------------


#: Writes one of this module's statements: the body, the organisation, the Params to bind into, and extra arguments.
_Statement = Callable[..., str]


async def overview(api: Reader, call: Call) -> dict[str, Any]:
    body = call.parsed(OverviewBody)
    org = call.org_id

    async def run(build: _Statement, *args: str | None) -> list[dict[str, Any]]:
        params = Params(api.db.dialect)
        sql = build(body, org, params, *args)
        return await api.db.fetch(org, sql, params.values)

    totals = (await run(_totals_sql))[0]
    percentiles = {row["metric"]: row for row in await run(_percentiles_sql)}
    requests = _whole(totals["requests"])
    errors = _whole(totals["errors"])
    prompt, completion = _whole(totals["prompt_tokens"]), _whole(totals["completion_tokens"])

    def percentile(metric: str, name: str) -> float | None:
        row = percentiles.get(metric)
        return None if row is None or row[name] is None else float(row[name])

    return {
        "totals": {
            "requests": requests,
            "errors": errors,
            "error_rate": errors / requests if requests else 0.0,
            "cost": _number(totals["cost"]),
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "users": _whole(totals["users"]),
            "sessions": _whole(totals["sessions"]),
            "cache_hits": _whole(totals["cache_hits"]),
            "cache_saved_cost": _number(totals["cache_saved_cost"]),
            "cache_saved_latency_ms": _number(totals["cache_saved_latency_ms"]),
            "latency_p50": percentile("latency", "p50"),
            "latency_p95": percentile("latency", "p95"),
            "ttft_p50": percentile("ttft", "p50"),
            "ttft_p95": percentile("ttft", "p95"),
        },
        "by_model": _groups(await run(_group_sql, "model")),
        "by_provider": _groups(await run(_group_sql, "provider")),
        "by_user": _groups(await run(_group_sql, "user_id")),
        "by_property": _groups(await run(_group_sql, None)) if body.property is not None else [],
        "dead_letters": _whole((await run(_dead_letters_sql))[0]["dead_letters"]),
    }


def _dead_letters_sql(body: OverviewBody, org_id: str, params: Params) -> str:
    return f"SELECT count(*) AS dead_letters FROM log_dead_letters WHERE org_id = {params.add(org_id)}"


async def session_tree(api: Reader, call: Call) -> list[dict[str, Any]]:
    body = call.parsed(SessionTreeBody)
    params = Params(api.db.dialect)
    cost = _cost(params)
    sql = (
        "SELECT request_id, created_at, session_path, session_name, model, provider, status, user_id, delay_ms,"
        f" time_to_first_token, total_tokens, {cost} AS cost, request_preview FROM requests"
        f" WHERE org_id = {params.add(call.org_id)} AND session_id = {params.add(body.sessionId)}"
        f" ORDER BY created_at, request_id LIMIT {_MAX_TREE}"
    )
    rows = await api.db.fetch(call.org_id, sql, params.values)
    return [
        {
            "request_id": str(row["request_id"]),
            "created_at": js_iso(row["created_at"]),
            "session_path": row["session_path"],
            "session_name": row["session_name"],
            "model": row["model"],
            "provider": row["provider"],
            "status": int(row["status"]),
            "user_id": row["user_id"],
            "delay_ms": None if row["delay_ms"] is None else float(row["delay_ms"]),
            "time_to_first_token": None if row["time_to_first_token"] is None else float(row["time_to_first_token"]),
            "total_tokens": row["total_tokens"],
            "cost": None if row["cost"] is None else float(row["cost"]),
            "request_preview": (row["request_preview"] or "")[:300] or None,
        }
        for row in rows
    ]


# --- POST /v1/dashboard/timeseries: the overview's charts ---------------------------------------------
#
# The body is the overview's ``timeFilter`` and ``filter``, plus ``timeZoneDifference`` (minutes, as
# JavaScript's ``Date.getTimezoneOffset()``: local = UTC - minutes, what Helicone's web client sends).
# The answer is one bucket per increment over the range, oldest first, empty buckets included (zeros
# and null percentiles), so a chart draws it as it comes.
#
# * The increment is chosen from the range: the smallest of 1, 5, 15, 30 minutes, 1, 3, 6, 12 hours,
#   1 day, 1 week giving at most MAX_BUCKETS buckets (an hour is 60 one-minute buckets, a day 96 of 15
#   minutes, a week 168 hours, 30 days 120 of six hours); longer ranges take whole weeks.
# * Buckets are aligned in the caller's zone: an hour-or-longer bucket starts on a local hour (a
#   half-hour zone's at :30 UTC), a day at local midnight, a week on a local Monday. The zone is a
#   fixed offset, as everywhere in the query API: across a daylight-saving change the local
#   boundaries move by that hour.
# * Without ``timeFilter`` the range is the matching requests' own, first to last.
# * Every figure is the overview's, per bucket, so the buckets add up to the overview's totals for the
#   same body (an error is a status outside 200-299, as there).
# * Percentiles: PostgreSQL's ``percentile_cont`` per bucket; SQLite has no percentile aggregate, so
#   it ranks each bucket's values with window functions and interpolates the same way (as the
#   overview's and ``alerts/metrics.py`` do): both databases give the same value.
# * A row's bucket comes from its instant in whole milliseconds (truncated), by integer arithmetic on
#   both databases, so a row at a bucket's first millisecond is in that bucket.

#: The most buckets an automatically chosen increment gives (the fewest is then about a fifth of it).
MAX_BUCKETS: Final = 200
_MINUTE: Final = 60_000
_HOUR: Final = 60 * _MINUTE
_DAY: Final = 24 * _HOUR
_WEEK: Final = 7 * _DAY
#: The increments, smallest first: (label, milliseconds).
_LADDER: Final = (
    ("1m", _MINUTE), ("5m", 5 * _MINUTE), ("15m", 15 * _MINUTE), ("30m", 30 * _MINUTE),
    ("1h", _HOUR), ("3h", 3 * _HOUR), ("6h", 6 * _HOUR), ("12h", 12 * _HOUR), ("1d", _DAY), ("1w", _WEEK),
)  # fmt: skip
#: 1970-01-01 was a Thursday: weeks start this long after the epoch, on Monday 1970-01-05.
_MONDAY: Final = 4 * _DAY
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class TimeseriesBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    timeFilter: MsTimeFilter | None = None
    filter: FilterNode = "all"
    timeZoneDifference: TimezoneMinutes = 0.0

    @field_validator("timeFilter")
    @classmethod
    def _forwards(cls, value: MsTimeFilter | None) -> MsTimeFilter | None:
        if value is not None and value.endTimeUnixMs <= value.startTimeUnixMs:
            raise ValueError("endTimeUnixMs must be after startTimeUnixMs")
        return value


class TimeseriesBucket(BaseModel):
    #: The bucket's first instant (UTC, as JavaScript's toISOString prints it).
    time: str
    requests: int
    errors: int
    cost: float
    prompt_tokens: int
    completion_tokens: int
    cache_hits: int
    latency_p50: float | None
    latency_p95: float | None
    ttft_p50: float | None
    ttft_p95: float | None


class Timeseries(BaseModel):
    #: The increment's name: ``1m`` ... ``12h``, ``1d``, ``1w``, ``<n>w``.
    increment: str
    increment_ms: int
    #: The first bucket's start and the last one's end; null with no buckets.
    start: str | None
    end: str | None
    buckets: list[TimeseriesBucket]


def increment_for(span_ms: int) -> tuple[str, int]:
    """The increment for a range of ``span_ms`` milliseconds: the smallest giving at most MAX_BUCKETS."""
    for label, width in _LADDER:
        if math.ceil(span_ms / width) <= MAX_BUCKETS:
            return label, width
    weeks = math.ceil(span_ms / (MAX_BUCKETS * _WEEK))
    return f"{weeks}w", weeks * _WEEK


def _anchor(width: int, shift_ms: int) -> int:
    """An instant (Unix ms) on which a bucket of ``width`` starts, in a zone ``shift_ms`` behind UTC."""
    return shift_ms + (_MONDAY if width % _WEEK == 0 else 0)


# --- SQL -------------------------------------------------------------------------------------------


def _epoch_ms(params: Params) -> str:
    """A row's instant as whole Unix milliseconds (truncated), exact integer arithmetic."""
    if params.dialect.name == "postgres":
        return "CAST(floor(extract(epoch FROM created_at) * 1000) AS bigint)"
    # SQLite stores fixed-width UTC text (2026-05-14T09:30:15.123456+00:00): whole seconds, then the
    # milliseconds are characters 21-23.
    return "(CAST(strftime('%s', created_at) AS INTEGER) * 1000 + CAST(substr(created_at, 21, 3) AS INTEGER))"


def _conditions(body: TimeseriesBody, org_id: str, params: Params) -> str:
    where = compile_request_filter(body.filter, params)  # its values are bound first: it comes first
    conditions = [f"({where})", f"org_id = {params.add(org_id)}"]
    if body.timeFilter is not None:
        start, end = body.timeFilter.bounds()
        conditions.append(f"created_at >= {params.add(params.dialect.timestamp(start))}")
        conditions.append(f"created_at < {params.add(params.dialect.timestamp(end))}")
    return " AND ".join(conditions)


def _extent_sql(body: TimeseriesBody, org_id: str, params: Params) -> str:
    where = _conditions(body, org_id, params)
    return f"SELECT min(created_at) AS first, max(created_at) AS last FROM requests WHERE {where}"


_SUMS: Final = (
    "count(*) AS requests,"
    " coalesce(sum(CASE WHEN status < 200 OR status >= 300 THEN 1 ELSE 0 END), 0) AS errors,"
    " coalesce(sum(cost), 0) AS cost,"
    " coalesce(sum(prompt_tokens), 0) AS prompt_tokens,"
    " coalesce(sum(completion_tokens), 0) AS completion_tokens,"
    " coalesce(sum(CASE WHEN cache_hit THEN 1 ELSE 0 END), 0) AS cache_hits"
)


def _series_sql(body: TimeseriesBody, org_id: str, params: Params, origin: int, width: int) -> str:
    """One row per non-empty bucket: its index from ``origin`` in ``width`` steps, sums and percentiles."""
    # Rows are at or after ``origin`` (it is at or before the range's start), so the integer division
    # is never of a negative number, where the two databases would round differently. Bound before the
    # conditions: SQLite's placeholders are positional, and the bucket comes first in the text.
    bucket = f"({_epoch_ms(params)} - {params.add(origin)}) / {params.add(width)}"
    conditions = _conditions(body, org_id, params)
    if params.dialect.name == "postgres":
        return (
            f"WITH scoped AS (SELECT {bucket} AS b, status, cost, prompt_tokens, completion_tokens, cache_hit,"
            f" delay_ms, time_to_first_token FROM requests WHERE {conditions})"
            # Both percentiles of a column from one sort: percentile_cont over an array of fractions.
            f", grouped AS (SELECT b, {_SUMS},"
            " percentile_cont(ARRAY[0.5, 0.95]::double precision[]) WITHIN GROUP (ORDER BY delay_ms) AS latency,"
            " percentile_cont(ARRAY[0.5, 0.95]::double precision[]) WITHIN GROUP (ORDER BY time_to_first_token)"
            " AS ttft FROM scoped GROUP BY b)"
            " SELECT b, requests, errors, cost, prompt_tokens, completion_tokens, cache_hits,"
            " latency[1] AS latency_p50, latency[2] AS latency_p95, ttft[1] AS ttft_p50, ttft[2] AS ttft_p95"
            " FROM grouped ORDER BY b"
        )

    def at(p: float) -> str:
        # percentile_cont: the value at rank p * (n - 1), between the two ranks around it. A rank is
        # never negative, so CAST (truncation) is floor.
        pos = f"({p!r} * (n - 1))"
        low = f"max(CASE WHEN i = CAST({pos} AS INTEGER) THEN v END)"
        high = f"max(CASE WHEN i = CAST({pos} AS INTEGER) + 1 THEN v END)"
        return f"({low} + coalesce({high} - {low}, 0) * max({pos} - CAST({pos} AS INTEGER)))"

    return (
        f"WITH scoped AS (SELECT {bucket} AS b, status, CAST(cost AS REAL) AS cost, prompt_tokens,"
        f" completion_tokens, cache_hit, delay_ms, time_to_first_token FROM requests WHERE {conditions}),"
        f" sums AS (SELECT b, {_SUMS} FROM scoped GROUP BY b),"
        " vals AS (SELECT b, 'latency' AS metric, delay_ms AS v FROM scoped WHERE delay_ms IS NOT NULL"
        " UNION ALL SELECT b, 'ttft', time_to_first_token FROM scoped WHERE time_to_first_token IS NOT NULL),"
        " ranked AS (SELECT b, metric, v, row_number() OVER (PARTITION BY b, metric ORDER BY v) - 1 AS i,"
        " count(*) OVER (PARTITION BY b, metric) AS n FROM vals),"
        f" pct AS (SELECT b, metric, {at(0.5)} AS p50, {at(0.95)} AS p95 FROM ranked GROUP BY b, metric)"
        " SELECT s.*, l.p50 AS latency_p50, l.p95 AS latency_p95, t.p50 AS ttft_p50, t.p95 AS ttft_p95"
        " FROM sums s LEFT JOIN pct l ON l.b = s.b AND l.metric = 'latency'"
        " LEFT JOIN pct t ON t.b = s.b AND t.metric = 'ttft' ORDER BY s.b"
    )


def _ms(value: Any) -> int:
    """A stored instant (asyncpg datetime or SQLite UTC text) as whole Unix milliseconds, truncated."""
    instant = datetime.fromisoformat(value) if isinstance(value, str) else value
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    delta = instant - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _instant(ms: int) -> str:
    """Unix ms as an ISO instant; a bucket edge beyond the instants a datetime holds (a range at year 1
    or 9999 with a long increment) is written as the first or last one."""
    return js_iso(_EPOCH + timedelta(milliseconds=min(max(ms, FIRST_INSTANT_MS), LAST_INSTANT_MS)))


def _optional(value: Any) -> float | None:
    return None if value is None else float(value)


# --- handler (registered in api/app.py's ENDPOINTS) -------------------------------------------------


async def timeseries(api: Reader, call: Call) -> dict[str, Any]:
    body = call.parsed(TimeseriesBody)
    org = call.org_id
    if body.timeFilter is not None:
        start = math.floor(body.timeFilter.startTimeUnixMs)
        end = math.ceil(body.timeFilter.endTimeUnixMs)  # exclusive
    else:
        params = Params(api.db.dialect)
        extent = (await api.db.fetch(org, _extent_sql(body, org, params), params.values))[0]
        if extent["first"] is None:
            label, width = _LADDER[0]
            return {"increment": label, "increment_ms": width, "start": None, "end": None, "buckets": []}
        start, end = _ms(extent["first"]), _ms(extent["last"]) + 1
    label, width = increment_for(end - start)
    anchor = _anchor(width, round(body.timeZoneDifference * _MINUTE))
    origin = anchor + (start - anchor) // width * width
    count = (end - 1 - origin) // width + 1

    params = Params(api.db.dialect)
    rows = await api.db.fetch(org, _series_sql(body, org, params, origin, width), params.values)
    found = {int(row["b"]): row for row in rows}
    buckets = []
    for index in range(count):
        row = found.get(index)
        buckets.append(
            {
                "time": _instant(origin + index * width),
                "requests": int(row["requests"]) if row else 0,
                "errors": int(row["errors"]) if row else 0,
                "cost": float(row["cost"]) if row else 0.0,
                "prompt_tokens": int(row["prompt_tokens"]) if row else 0,
                "completion_tokens": int(row["completion_tokens"]) if row else 0,
                "cache_hits": int(row["cache_hits"]) if row else 0,
                "latency_p50": _optional(row["latency_p50"]) if row else None,
                "latency_p95": _optional(row["latency_p95"]) if row else None,
                "ttft_p50": _optional(row["ttft_p50"]) if row else None,
                "ttft_p95": _optional(row["ttft_p95"]) if row else None,
            }
        )
    return {
        "increment": label,
        "increment_ms": width,
        "start": _instant(origin),
        "end": _instant(origin + count * width),
        "buckets": buckets,
    }
