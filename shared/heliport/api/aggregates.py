"""Aggregate endpoints of the query API: sessions, users and property keys, computed in SQL.

One builder and one mapper per documented endpoint (the shapes are Helicone's, in
``seeds/docs/rest__{session,user,property}__*.md``)::

    POST /v1/session/query                 session_query           to_session_query_result
    POST /v1/session/metrics/query         session_metrics_query   to_session_metrics_result
    POST /v1/user/query                    user_query              to_user_query_result
    POST /v1/user/metrics/query            user_metrics_query      to_user_metrics_result
    POST /v1/user/metrics-overview/query   user_metrics_overview_query  to_user_metrics_overview_result
    POST /v1/property/query                property_query          to_property_query_result

A builder takes the body already validated as its model (``api/schemas.py``: types, required fields
and every range are checked there, once, and stated in ``/openapi.json``), binds every value into the
caller's :class:`Params` and returns one SQL statement; the mapper turns that statement's rows into
the documented ``data`` value. Every sum, count, average, percentile and histogram bucket is computed
by the database: the mappers only rename and format.

Parameter order matters. The request-level filter arrives already compiled (``where``), its values
already in ``params``; SQLite's ``?`` placeholders are positional, so every builder writes ``where``
first and then adds its own values in the order their placeholders appear in the text. For the same
reason a post-aggregation filter (Helicone's ``sessions_request_response_rmt`` and ``users_view``
leaves) is passed as a callable, ``having(params) -> str``, which the builder calls at the point
where that fragment is written; it may name only the columns in
:data:`~heliport.api.filters.SESSION_COLUMNS` or :data:`~heliport.api.filters.USER_COLUMNS`, which
the aggregated rows below must therefore have. The organisation scope is always the builder's own
``org_id = <param>``.

Decisions where the documentation is silent:

* Sessions are the rows with a ``session_id``; users the rows with a ``user_id``. Rows without one
  are not a session or a user and are left out (Helicone's ClickHouse groups them under ``''``).
* ``total_tokens`` is prompt plus completion tokens, as Helicone computes it, so the three token
  figures always add up; ``average_tokens_per_request`` uses the same sum.
* A session's name is the name on its most recent named request ("" when it has none), so a renamed
  session shows one row under its current name.
* ``feedback_rating`` (not in Helicone's ``SessionResult``, whose web client reads the rating from the
  ``Helicone-Session-Feedback`` property of the session's first request): the rating given with
  ``POST /v1/session/{id}/feedback`` (``api/session_feedback.py``), null when none was.
* Timestamps are returned as UTC instants in JavaScript's ``toISOString`` form
  (``2026-05-14T09:30:15.123Z``). ``timezoneDifference``/``timeZoneDifferenceMinutes`` use the
  JavaScript ``Date.getTimezoneOffset()`` convention (local = UTC - minutes), which is what Helicone's
  own web client sends; they are validated everywhere (within a day either way) and change only what
  depends on a calendar day: a user's ``active_for`` counts the distinct local days with a request.
* ``search`` is a case-insensitive substring of the session id or name, matched literally (``%``
  and ``_`` are escaped, unlike Helicone's); ``nameEquals`` and ``nameContains`` (case-insensitive,
  literal) test the session name. All three pick whole sessions, tested on the aggregated row, so a
  session's totals never depend on them (Helicone filters the requests, which drops a session's
  unnamed requests from its totals while searching by name).
* Histograms (``pSize``/``useInterquartile``): per session or user, the values up to the ``pSize``
  percentile (or between the lower and upper percentile for the interquartile form) are kept, as
  Helicone does, then split into 10 equal-width buckets between the smallest and largest kept value;
  only non-empty buckets are returned, in order. ClickHouse's ``histogram(10)`` is adaptive, so its
  bucket edges differ; the counts and the cut-off are the same idea. Percentiles are linear
  interpolation: PostgreSQL ``percentile_cont``; SQLite, which has none, the same formula from
  ``row_number()`` over the ordered values. ``average`` is over all sessions/users, untrimmed, and is
  0 when there are none. ``range_start``/``range_end`` are strings as documented, numbers written as
  JavaScript would.
* ``limit`` defaults to 50 for sessions and may be at most 1000 (Helicone rejects more for users);
  ``/v1/user/query`` returns at most 100 users, most requests first, as Helicone does.
* Time filters name instants a datetime can hold (years 1 to 9999); anything else is a 400.
* Unknown body fields are ignored (tsoa's default); a missing documented-required field is a 400.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Protocol, TypeVar

from heliport.api.dialect import Params, js_iso
from heliport.api.filters import Having
from heliport.api.schemas import (
    SESSION_DEFAULT_LIMIT,
    PropertyQueryBody,
    PSize,
    SessionMetricsBody,
    SessionQueryBody,
    UserMetricsBody,
    UserMetricsOverviewBody,
    UserQueryBody,
    UserSort,
)

__all__ = [
    "USER_SORT_COLUMNS",
    "Builder",
    "property_query",
    "session_metrics_query",
    "session_query",
    "to_property_query_result",
    "to_session_metrics_result",
    "to_session_query_result",
    "to_user_metrics_overview_result",
    "to_user_metrics_result",
    "to_user_query_result",
    "user_metrics_overview_query",
    "user_metrics_query",
    "user_query",
]

_Body = TypeVar("_Body", contravariant=True)


class Builder(Protocol[_Body]):
    """One endpoint's statement: the organisation, the validated body, the Params already holding the
    values of ``where`` (the compiled request-level filter), and the post-aggregation filter if the
    body had one. Every builder takes ``having``; one whose endpoint has no aggregate leaves refuses a
    non-None one (the filter compiler never makes one there)."""

    def __call__(
        self, org_id: str, body: _Body, params: Params, where: str, *, having: Having | None = None
    ) -> str: ...


#: ``SortLeafUsers`` keys (:class:`~heliport.api.schemas.UserSort`) -> the aggregated user column they order by.
USER_SORT_COLUMNS: Final[Mapping[str, str]] = {
    "id": "user_id",
    "user_id": "user_id",
    "active_for": "active_for",
    "first_active": "first_active",
    "last_active": "last_active",
    "total_requests": "total_requests",
    "average_requests_per_day_active": "average_requests_per_day_active",
    "average_tokens_per_request": "average_tokens_per_request",
    "total_prompt_tokens": "total_prompt_tokens",
    "total_completion_tokens": "total_completion_tokens",
    "cost": "cost",
    "rate_limited_count": "rate_limited_count",
}

_PERCENTILES: Final[Mapping[PSize, float]] = {"p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99, "p99.9": 0.999}
_DEFAULT_PSIZE: Final[PSize] = "p75"
#: Helicone's /v1/user/query answers at most this many users.
_USER_QUERY_LIMIT = 100
_BUCKETS = 10


# --- SQL that differs between the dialects -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Sql:
    """The few expressions PostgreSQL and SQLite spell differently; everything else is shared SQL."""

    postgres: bool
    #: Cost as a number: PostgreSQL numeric (exact sums), SQLite stores the exact decimal as text.
    cost: str
    #: A double-precision float type for CAST (SQLite's REAL is a double; PostgreSQL's is not).
    double: str
    #: Text ordering independent of the database's locale, so both dialects order ids alike.
    collate: str
    ilike: str

    def floor(self, expr: str) -> str:
        # SQLite's floor() needs the optional math functions; the argument is never negative here,
        # so truncation is floor.
        return f"floor({expr})" if self.postgres else f"CAST({expr} AS INTEGER)"

    def least(self, a: str, b: str) -> str:
        return f"least({a}, {b})" if self.postgres else f"min({a}, {b})"

    def seconds_between(self, later: str, earlier: str) -> str:
        """Seconds from ``earlier`` to ``later``, to the millisecond (SQLite's julianday resolution)."""
        if self.postgres:
            return f"CAST(round(extract(epoch FROM ({later} - {earlier})) * 1000) / 1000 AS double precision)"
        return f"(round((julianday({later}) - julianday({earlier})) * 86400000.0) / 1000.0)"

    def local_day(self, column: str, shift: str) -> str:
        """The calendar day of ``column`` in the caller's zone; ``shift`` is the bound offset argument."""
        if self.postgres:
            return f"CAST(({column} AT TIME ZONE 'UTC') - {shift} * interval '1 minute' AS date)"
        return f"date({column}, {shift})"

    def local_day_shift(self, tz_minutes: float) -> object:
        """The value bound for :meth:`local_day`'s ``shift``: local = UTC - minutes (JavaScript's convention)."""
        if self.postgres:
            return float(tz_minutes)
        return f"{-float(tz_minutes)!r} minutes"

    def distinct_users(self) -> str:
        if self.postgres:
            return "array_agg(DISTINCT user_id) FILTER (WHERE user_id IS NOT NULL)"
        return "json_group_array(DISTINCT user_id) FILTER (WHERE user_id IS NOT NULL)"


_POSTGRES_SQL = _Sql(postgres=True, cost="cost", double="double precision", collate=' COLLATE "C"', ilike="ILIKE")
_SQLITE_SQL = _Sql(postgres=False, cost="CAST(cost AS REAL)", double="REAL", collate="", ilike="LIKE")


def _sql_for(params: Params, where: str) -> _Sql:
    if params.dialect.name == "postgres":
        return _POSTGRES_SQL
    # SQLite placeholders are positional: the builder appends after ``where``'s values, so they must
    # be all that ``params`` holds. A mismatch is a wiring bug, not the caller's input.
    if where.count("?") != len(params.values):
        raise ValueError("params must hold exactly the values of the where fragment before an aggregate is built")
    return _SQLITE_SQL


# --- from the validated body ------------------------------------------------------------------------


def _percentile_bounds(size: PSize | None, interquartile: bool | None) -> tuple[float, float]:
    """(lower, upper) fractions: upper is ``pSize`` (p75 when absent); lower is 1 - upper for the
    interquartile form, else 0."""
    upper = _PERCENTILES[size or _DEFAULT_PSIZE]
    # round: 1 - 0.999 is 0.0010000000000000009 in binary floating point.
    lower = round(1.0 - upper, 6) if interquartile else 0.0
    return min(lower, upper), upper


def _no_having(having: Having | None, endpoint: str) -> None:
    """A wiring check: the filter compiler makes no ``having`` for an endpoint without aggregate leaves."""
    if having is not None:
        raise ValueError(f"{endpoint} has no post-aggregation filter")


def _like_pattern(text: str) -> str:
    """``%text%`` with the caller's own ``%``, ``_`` and ``\\`` matched literally (ESCAPE '\\')."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# --- shared SQL pieces ---------------------------------------------------------------------------


def _conditions(parts: Iterable[str]) -> str:
    return " AND ".join(parts)


def _histogram_tail(sql: _Sql, params: Params, lower: float, upper: float) -> str:
    """CTEs and final SELECT over ``vals(metric, v)``: percentile cut, equal-width buckets, averages.

    Output rows: (metric, kind 'histogram'|'average', bucket, range_start, range_end, value).
    """
    if sql.postgres:
        bounds = (
            "bounds AS (SELECT metric,"
            f" percentile_cont({params.add(lower)}) WITHIN GROUP (ORDER BY v) AS lower_v,"
            f" percentile_cont({params.add(upper)}) WITHIN GROUP (ORDER BY v) AS upper_v,"
            " avg(v) AS average FROM vals GROUP BY metric)"
        )
    else:
        # percentile_cont by hand, PostgreSQL's formula: pos = p * (n - 1); the value at floor(pos)
        # plus (pos - floor(pos)) times the step to the next value.
        def interpolated(pos: str) -> str:
            at = f"max(CASE WHEN i = CAST({pos} AS INTEGER) THEN v END)"
            after = f"max(CASE WHEN i = CAST({pos} AS INTEGER) + 1 THEN v END)"
            return f"({at} + coalesce({after} - {at}, 0) * (max({pos}) - CAST(max({pos}) AS INTEGER)))"

        bounds = (
            "ranked AS (SELECT metric, v, row_number() OVER (PARTITION BY metric ORDER BY v) - 1 AS i,"
            f" {params.add(lower)} * (count(*) OVER (PARTITION BY metric) - 1) AS lower_pos,"
            f" {params.add(upper)} * (count(*) OVER (PARTITION BY metric) - 1) AS upper_pos FROM vals),"
            f" bounds AS (SELECT metric, {interpolated('lower_pos')} AS lower_v,"
            f" {interpolated('upper_pos')} AS upper_v, avg(v) AS average FROM ranked GROUP BY metric)"
        )
    position = sql.floor(f"(k.v - s.lo) / (s.hi - s.lo) * {_BUCKETS}")
    last = _BUCKETS - 1
    return (
        f"{bounds},"
        " kept AS (SELECT x.metric, x.v FROM vals x JOIN bounds b ON b.metric = x.metric"
        " WHERE x.v >= b.lower_v AND x.v <= b.upper_v),"
        " spans AS (SELECT metric, min(v) AS lo, max(v) AS hi FROM kept GROUP BY metric),"
        " bucketed AS (SELECT k.metric, s.lo, s.hi,"
        f" CASE WHEN s.hi = s.lo THEN 0 ELSE {sql.least(str(last), position)} END AS bucket"
        " FROM kept k JOIN spans s ON s.metric = k.metric)"
        " SELECT metric, 'histogram' AS kind, bucket,"
        f" lo + bucket * (hi - lo) / {_BUCKETS} AS range_start,"
        f" CASE WHEN bucket = {last} OR hi = lo THEN hi ELSE lo + (bucket + 1) * (hi - lo) / {_BUCKETS} END"
        " AS range_end,"
        f" CAST(count(*) AS {sql.double}) AS value"
        " FROM bucketed GROUP BY metric, bucket, lo, hi"
        " UNION ALL"
        f" SELECT metric, 'average' AS kind, NULL, NULL, NULL, CAST(average AS {sql.double}) FROM bounds"
        " ORDER BY metric, kind, bucket"
    )


def _sessions_ctes(sql: _Sql, scope: list[str]) -> str:
    """``scoped`` (the matching requests) and ``sessions`` (one row per session_id, :data:`SESSION_COLUMNS`)."""
    tokens = "coalesce(sum(prompt_tokens), 0) + coalesce(sum(completion_tokens), 0)"
    return (
        "scoped AS (SELECT session_id, user_id, created_at, delay_ms, prompt_tokens, completion_tokens,"
        f" {sql.cost} AS cost,"
        # The name on the latest named request; computed after WHERE, so over the matching requests.
        " first_value(session_name) OVER (PARTITION BY session_id ORDER BY"
        " CASE WHEN session_name IS NULL THEN 1 ELSE 0 END, created_at DESC, request_id DESC) AS latest_name"
        f" FROM requests WHERE {_conditions(scope)}),"
        " sessions AS (SELECT session_id, max(latest_name) AS session_name,"
        " min(created_at) AS created_at, max(created_at) AS latest_request_created_at,"
        f" {sql.seconds_between('max(created_at)', 'min(created_at)')} AS duration,"
        " coalesce(sum(cost), 0) AS total_cost, count(*) AS total_requests,"
        " coalesce(sum(prompt_tokens), 0) AS prompt_tokens, coalesce(sum(completion_tokens), 0) AS completion_tokens,"
        f" {tokens} AS total_tokens, coalesce(avg(delay_ms), 0) AS avg_latency,"
        f" {sql.distinct_users()} AS user_ids"
        " FROM scoped GROUP BY session_id)"
    )


# --- POST /v1/session/query ----------------------------------------------------------------------


def session_query(
    org_id: str, body: SessionQueryBody, params: Params, where: str, *, having: Having | None = None
) -> str:
    """Sessions (by ``session_id``) of the requests matching the body, newest first, one page."""
    sql = _sql_for(params, where)
    search = body.search
    name = body.nameEquals
    # An explicit null is the default, as an absent field (the model's own defaults).
    offset = body.offset or 0
    limit = SESSION_DEFAULT_LIMIT if body.limit is None else body.limit
    # timezoneDifference is validated but changes nothing here: no session figure depends on a local day.
    start, end = body.timeFilter.bounds()

    scope = [f"({where})", f"org_id = {params.add(org_id)}", "session_id IS NOT NULL"]
    scope.append(f"created_at > {params.add(params.dialect.timestamp(start))}")
    scope.append(f"created_at < {params.add(params.dialect.timestamp(end))}")
    statement = f"WITH {_sessions_ctes(sql, scope)}"
    # The session's feedback (api/session_feedback.py), renamed so no column of ``sessions`` that a
    # condition below names becomes ambiguous. Bound here: it comes next in the text.
    statement += (
        ", feedback AS (SELECT session_id AS feedback_session_id, rating AS feedback_rating"
        f" FROM session_feedback WHERE org_id = {params.add(org_id)})"
    )
    # Name and search select whole sessions (a session's totals never depend on them), so they are
    # tested on the aggregated row, after the request-level scope.
    chosen: list[str] = []
    if name is not None:
        chosen.append(f"session_name = {params.add(name)}")
    if search:
        pattern = _like_pattern(search)
        chosen.append(
            f"(session_id {sql.ilike} {params.add(pattern)} ESCAPE '\\'"
            f" OR session_name {sql.ilike} {params.add(pattern)} ESCAPE '\\')"
        )
    if having is not None:
        chosen.append(f"({having(params)})")
    statement += (
        " SELECT session_id, session_name, created_at, latest_request_created_at, total_cost, total_requests,"
        " prompt_tokens, completion_tokens, total_tokens, avg_latency, user_ids, feedback_rating"
        " FROM sessions LEFT JOIN feedback ON feedback_session_id = session_id"
    )
    if chosen:
        statement += f" WHERE {_conditions(chosen)}"
    statement += f" ORDER BY created_at DESC, session_id{sql.collate}"
    statement += f" LIMIT {params.add(limit)} OFFSET {params.add(offset)}"
    return statement


def to_session_query_result(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``SessionResult[]``."""
    return [
        {
            "created_at": js_iso(row["created_at"]),
            "latest_request_created_at": js_iso(row["latest_request_created_at"]),
            "session_id": row["session_id"],
            "session_name": row["session_name"] or "",
            "total_cost": _float(row["total_cost"]),
            "total_requests": _int(row["total_requests"]),
            "prompt_tokens": _int(row["prompt_tokens"]),
            "completion_tokens": _int(row["completion_tokens"]),
            "total_tokens": _int(row["total_tokens"]),
            "avg_latency": _float(row["avg_latency"]),
            "user_ids": _user_ids(row["user_ids"]),
            "feedback_rating": None if row["feedback_rating"] is None else bool(row["feedback_rating"]),
        }
        for row in rows
    ]


# --- POST /v1/session/metrics/query ----------------------------------------------------------------


def session_metrics_query(
    org_id: str, body: SessionMetricsBody, params: Params, where: str, *, having: Having | None = None
) -> str:
    """Per-session request count, duration (s) and cost: percentile-cut histograms and averages."""
    sql = _sql_for(params, where)
    name_contains = body.nameContains
    lower, upper = _percentile_bounds(body.pSize, body.useInterquartile)

    scope = [f"({where})", f"org_id = {params.add(org_id)}", "session_id IS NOT NULL"]
    if body.timeFilter is not None:
        start, end = body.timeFilter.bounds()
        scope.append(f"created_at > {params.add(params.dialect.timestamp(start))}")
        scope.append(f"created_at < {params.add(params.dialect.timestamp(end))}")
    sessions = _sessions_ctes(sql, scope)
    chosen: list[str] = []
    if name_contains:
        chosen.append(f"session_name {sql.ilike} {params.add(_like_pattern(name_contains))} ESCAPE '\\'")
    if having is not None:
        chosen.append(f"({having(params)})")
    per_session = "SELECT total_requests, duration, total_cost FROM sessions"
    if chosen:
        per_session += f" WHERE {_conditions(chosen)}"
    return (
        f"WITH {sessions},"
        f" per_session AS ({per_session}),"
        f" vals AS (SELECT 'session_count' AS metric, CAST(total_requests AS {sql.double}) AS v FROM per_session"
        f" UNION ALL SELECT 'session_duration', CAST(duration AS {sql.double}) FROM per_session"
        f" UNION ALL SELECT 'session_cost', CAST(total_cost AS {sql.double}) FROM per_session), "
        + _histogram_tail(sql, params, lower, upper)
    )


def to_session_metrics_result(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``SessionMetrics``."""
    histograms, averages = _histograms(rows, ("session_count", "session_duration", "session_cost"))
    return {
        "session_count": histograms["session_count"],
        "session_duration": histograms["session_duration"],
        "session_cost": histograms["session_cost"],
        "average": {
            "session_cost": averages["session_cost"],
            "session_duration": averages["session_duration"],
            "session_count": averages["session_count"],
        },
    }


# --- POST /v1/user/query ---------------------------------------------------------------------------


def user_query(org_id: str, body: UserQueryBody, params: Params, where: str, *, having: Having | None = None) -> str:
    """Requests, tokens and cost per user: the listed ``userIds`` (all when absent or empty), at most 100."""
    _no_having(having, "/v1/user/query")
    sql = _sql_for(params, where)
    user_ids = body.userIds

    scope = [f"({where})", f"org_id = {params.add(org_id)}", "user_id IS NOT NULL"]
    if body.timeFilter is not None:
        start, end = body.timeFilter.bounds()
        scope.append(f"created_at >= {params.add(params.dialect.timestamp(start))}")
        scope.append(f"created_at <= {params.add(params.dialect.timestamp(end))}")
    if user_ids:
        scope.append(f"user_id IN ({', '.join(params.add(u) for u in user_ids)})")
    return (
        f"WITH scoped AS (SELECT user_id, prompt_tokens, completion_tokens, {sql.cost} AS cost FROM requests"
        f" WHERE {_conditions(scope)})"
        " SELECT user_id, count(*) AS count, coalesce(sum(prompt_tokens), 0) AS prompt_tokens,"
        " coalesce(sum(completion_tokens), 0) AS completion_tokens, coalesce(sum(cost), 0) AS cost"
        f" FROM scoped GROUP BY user_id ORDER BY count(*) DESC, user_id{sql.collate} LIMIT {_USER_QUERY_LIMIT}"
    )


def to_user_query_result(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``{count, prompt_tokens, completion_tokens, user_id, cost}[]``."""
    return [
        {
            "count": _int(row["count"]),
            "prompt_tokens": _int(row["prompt_tokens"]),
            "completion_tokens": _int(row["completion_tokens"]),
            "user_id": row["user_id"],
            "cost": _float(row["cost"]),
        }
        for row in rows
    ]


# --- POST /v1/user/metrics/query -------------------------------------------------------------------


def _user_order(sort: UserSort | None, sql: _Sql, prefix: str) -> str:
    """ORDER BY for ``sort`` (SortLeafUsers, keys and directions already checked by its model); keys
    apply in the order given; user_id breaks ties. Absent, the most recently active first."""
    given: UserSort = {"last_active": "desc"} if sort is None else sort
    terms: list[str] = []
    seen: set[str] = set()
    for key, direction in given.items():
        column = USER_SORT_COLUMNS[key]
        if column in seen:
            continue
        seen.add(column)
        collate = sql.collate if column == "user_id" else ""
        terms.append(f"{prefix}{column}{collate} {'DESC' if direction == 'desc' else 'ASC'}")
    if "user_id" not in seen:
        terms.append(f"{prefix}user_id{sql.collate} ASC")
    return ", ".join(terms)


def _users_ctes(sql: _Sql, params: Params, scope: list[str], tz_minutes: float) -> str:
    """``scoped``, ``dated`` and ``users`` (one row per user_id, :data:`USER_COLUMNS` plus rate_limited_count)."""
    local_day = sql.local_day("s.created_at", params.add(sql.local_day_shift(tz_minutes)))
    return (
        "scoped AS (SELECT user_id, created_at, prompt_tokens, completion_tokens,"
        f" {sql.cost} AS cost, rate_limited FROM requests WHERE {_conditions(scope)}),"
        " dated AS (SELECT s.user_id, s.created_at, s.prompt_tokens, s.completion_tokens, s.cost, s.rate_limited,"
        f" {local_day} AS local_day FROM scoped s),"
        " users AS (SELECT user_id, count(DISTINCT local_day) AS active_for,"
        " min(created_at) AS first_active, max(created_at) AS last_active, count(*) AS total_requests,"
        f" CAST(count(*) AS {sql.double}) / count(DISTINCT local_day) AS average_requests_per_day_active,"
        f" CAST(coalesce(sum(prompt_tokens), 0) + coalesce(sum(completion_tokens), 0) AS {sql.double}) / count(*)"
        " AS average_tokens_per_request,"
        " coalesce(sum(completion_tokens), 0) AS total_completion_tokens,"
        " coalesce(sum(prompt_tokens), 0) AS total_prompt_tokens, coalesce(sum(cost), 0) AS cost,"
        " sum(CASE WHEN rate_limited THEN 1 ELSE 0 END) AS rate_limited_count"
        " FROM dated GROUP BY user_id)"
    )


def user_metrics_query(
    org_id: str, body: UserMetricsBody, params: Params, where: str, *, having: Having | None = None
) -> str:
    """One page of per-user metrics, with the number of matching users and whether the org has any."""
    sql = _sql_for(params, where)
    offset = body.offset
    limit = body.limit
    tz_minutes = body.timeZoneDifferenceMinutes or 0.0
    order = _user_order(body.sort, sql, "")
    outer_order = _user_order(body.sort, sql, "p.")

    scope = [f"({where})", f"org_id = {params.add(org_id)}", "user_id IS NOT NULL"]
    if body.timeFilter is not None:
        start, end = body.timeFilter.bounds()
        scope.append(f"created_at > {params.add(params.dialect.timestamp(start))}")
        scope.append(f"created_at < {params.add(params.dialect.timestamp(end))}")
    statement = f"WITH {_users_ctes(sql, params, scope, tz_minutes)}, filtered AS (SELECT * FROM users"
    if having is not None:
        statement += f" WHERE ({having(params)})"
    statement += (
        f"), page AS (SELECT * FROM filtered ORDER BY {order} LIMIT {params.add(limit)} OFFSET {params.add(offset)}),"
        " totals AS (SELECT (SELECT count(*) FROM filtered) AS total_count,"
        f" EXISTS (SELECT 1 FROM requests WHERE org_id = {params.add(org_id)} AND user_id IS NOT NULL) AS has_users)"
        # LEFT JOIN: the totals row comes back even when the page is empty.
        " SELECT t.total_count, t.has_users, p.user_id, p.active_for, p.first_active, p.last_active,"
        " p.total_requests, p.average_requests_per_day_active, p.average_tokens_per_request,"
        " p.total_completion_tokens, p.total_prompt_tokens, p.cost"
        f" FROM totals t LEFT JOIN page p ON TRUE ORDER BY {outer_order}"
    )
    return statement


def to_user_metrics_result(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``{users: UserMetricsResult[], count, hasUsers}``."""
    users = [
        {
            "id": row["user_id"],
            "user_id": row["user_id"],
            "active_for": _int(row["active_for"]),
            "first_active": js_iso(row["first_active"]),
            "last_active": js_iso(row["last_active"]),
            "total_requests": _int(row["total_requests"]),
            "average_requests_per_day_active": _float(row["average_requests_per_day_active"]),
            "average_tokens_per_request": _float(row["average_tokens_per_request"]),
            "total_completion_tokens": _int(row["total_completion_tokens"]),
            "total_prompt_tokens": _int(row["total_prompt_tokens"]),
            "cost": _float(row["cost"]),
        }
        for row in rows
        if row["user_id"] is not None
    ]
    first = rows[0] if rows else {}
    return {
        "users": users,
        "count": _int(first.get("total_count") or 0),
        "hasUsers": bool(first.get("has_users")),
    }


# --- POST /v1/user/metrics-overview/query ------------------------------------------------------------


def user_metrics_overview_query(
    org_id: str, body: UserMetricsOverviewBody, params: Params, where: str, *, having: Having | None = None
) -> str:
    """Per-user request count and cost: percentile-cut histograms."""
    sql = _sql_for(params, where)
    lower, upper = _percentile_bounds(body.pSize, body.useInterquartile)
    scope = [f"({where})", f"org_id = {params.add(org_id)}", "user_id IS NOT NULL"]
    users = _users_ctes(sql, params, scope, 0.0)  # binds before ``having``: it comes first in the text
    per_user = "SELECT total_requests, cost FROM users"
    if having is not None:
        per_user += f" WHERE ({having(params)})"
    return (
        f"WITH {users},"
        f" per_user AS ({per_user}),"
        f" vals AS (SELECT 'request_count' AS metric, CAST(total_requests AS {sql.double}) AS v FROM per_user"
        f" UNION ALL SELECT 'user_cost', CAST(cost AS {sql.double}) FROM per_user), "
        + _histogram_tail(sql, params, lower, upper)
    )


def to_user_metrics_overview_result(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``{request_count: HistogramRow[], user_cost: HistogramRow[]}``."""
    histograms, _ = _histograms(rows, ("request_count", "user_cost"))
    return {"user_cost": histograms["user_cost"], "request_count": histograms["request_count"]}


# --- POST /v1/property/query -------------------------------------------------------------------------


def property_query(
    org_id: str, body: PropertyQueryBody, params: Params, where: str, *, having: Having | None = None
) -> str:
    """The distinct custom property keys of the organisation's requests, sorted (the body's only field,
    its filter, arrives compiled as ``where``)."""
    _no_having(having, "/v1/property/query")
    sql = _sql_for(params, where)
    scope = f"({where}) AND org_id = {params.add(org_id)}"
    if sql.postgres:
        return (
            f"WITH scoped AS (SELECT properties FROM requests WHERE {scope})"
            " SELECT property FROM (SELECT DISTINCT k.key AS property"
            " FROM scoped, jsonb_object_keys(scoped.properties) AS k(key)) d"
            f" ORDER BY property{sql.collate}"
        )
    # json_each's own columns (key, value, path, ...) would clash with requests' in ``where``; the
    # CTE applies the filter before the join.
    return (
        f"WITH scoped AS (SELECT properties FROM requests WHERE {scope})"
        " SELECT DISTINCT j.key AS property FROM scoped, json_each(scoped.properties) AS j ORDER BY property"
    )


def to_property_query_result(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """``Property[]``."""
    return [{"property": row["property"]} for row in rows]


# --- row formatting --------------------------------------------------------------------------------


# A column value is whatever the driver returns (int, float, Decimal; None for an empty aggregate).
def _float(value: Any) -> float:
    if value is None:
        return 0.0
    return float(value)


def _int(value: Any) -> int:
    if value is None:
        return 0
    return int(value)


def _user_ids(value: object) -> list[str]:
    """PostgreSQL gives an array (None when empty), SQLite JSON text; sorted so both read alike."""
    if value is None:
        return []
    ids = json.loads(value) if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    return sorted(ids)


def _js_number(value: float) -> str:
    """A number as JavaScript's ``String(n)`` writes it (Helicone's ranges are ``toString()``-ed).

    Both languages print the shortest digits that round-trip; they differ only in where they switch to
    exponent form (JavaScript: below 1e-6 and from 1e21), so the digits come from ``repr``.
    """
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    shortest = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(map(str, shortest.digits))
    k = len(digits)
    n = int(shortest.exponent) + k  # value = 0.<digits> x 10^n
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        exponent = f"e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"
        text = (digits if k == 1 else f"{digits[0]}.{digits[1:]}") + exponent
    return sign + text


def _histograms(
    rows: list[dict[str, Any]], metrics: tuple[str, ...]
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, float]]]]:
    histograms: dict[str, list[dict[str, Any]]] = {metric: [] for metric in metrics}
    averages: dict[str, list[dict[str, float]]] = {metric: [] for metric in metrics}
    for row in rows:
        metric = row["metric"]
        if row["kind"] == "average":
            averages[metric].append({"average": _float(row["value"])})
        else:
            histograms[metric].append(
                {
                    "range_start": _js_number(float(row["range_start"])),
                    "range_end": _js_number(float(row["range_end"])),
                    "value": _int(row["value"]),
                }
            )
    for metric in metrics:
        if not averages[metric]:
            averages[metric].append({"average": 0.0})  # no sessions/users: Helicone's avg() of nothing
    return histograms, averages
