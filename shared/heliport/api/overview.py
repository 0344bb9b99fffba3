"""Read-only aggregates for the dashboard (``/dashboard``), computed in SQL on PostgreSQL and SQLite.

::

    POST /v1/dashboard/overview        overview      -> Overview
    POST /v1/dashboard/session-tree    session_tree  -> SessionTreeRow[]

Helicone's documented REST API has no single call for a dashboard's headline numbers, and the
request row it documents (``HeliconeRequest``) does not carry ``Helicone-Session-Path``; these two
endpoints fill exactly those gaps and nothing else. Like every other statement of the query API,
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

from collections.abc import Callable
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from heliport.api.database import QueryDb
from heliport.api.dialect import Params, js_iso
from heliport.api.endpoint import Call
from heliport.api.filters import compile_request_filter
from heliport.api.schemas import FilterNode, MsTimeFilter

__all__ = [
    "Overview",
    "OverviewBody",
    "Reader",
    "SessionTreeBody",
    "SessionTreeRow",
    "overview",
    "session_tree",
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
