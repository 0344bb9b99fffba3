"""Evals and scores: Helicone's ``/v1/evals`` routes and the dashboard's scores over time.

::

    POST /v1/evals/{requestId}                 add_eval              {name, score} -> null
    POST /v1/evals/query                       query_evals           -> Eval[]
    GET  /v1/evals/scores                      eval_scores           -> string[]
    POST /v1/evals/score-distributions/query   score_distributions   -> ScoreDistribution[]
    POST /v1/dashboard/scores/query            scores_over_time      -> {score_key, score_sum, created_at_trunc}[]

Shapes are Helicone's (``seeds/docs/rest__evals__*.md``, ``rest__dashboard__post-v1dashboardscoresquery.md``).
There is one score store: a request row's ``scores`` object, which ``POST /v1/request/{id}/score``
writes too (``api/requests.py``'s ``scores_sql``). An eval is a score under its name, so the two
routes write the same thing and every route here reads both. Aggregates are computed by the database
from the object's entries (PostgreSQL ``jsonb_each``, SQLite ``json_each``) over the scored rows of the
time range (migration 0011's partial index); the mappers only rename, format and fill empty buckets.

Decisions where Helicone's documentation (or its code) is silent or self-contradictory:

* ``timeFilter.start``/``end`` are ISO-8601 dates or date-times; without an offset they are UTC. A
  start after the end is a 400. Eval queries and scores over time include both ends (Helicone's
  ``getXOverTime``); score distributions exclude the end, as Helicone's does.
* ``timeZoneDifference`` is JavaScript's ``Date.getTimezoneOffset()`` (local = UTC - minutes), rounded
  to whole minutes; buckets start at local midnight, local hour, local Monday (weeks), local first of
  the month. A bucket's ``date``/``created_at_trunc`` is the instant its local start is, as
  ``toISOString`` prints it.
* ``/v1/evals/query`` lists the score names that have a score in the range (Helicone also lists names
  with none, with an infinite minimum that JSON cannot carry), sorted byte-wise; ``offset``/``limit``
  page over those names (``limit`` default and maximum 100). ``overTime`` (scores per bucket) and
  ``averageOverTime`` (their mean, 0 in an empty bucket) cover every bucket of the range: hourly, as
  Helicone's, or the first of day, week, month, year that gives at most 1,000 buckets (a range of
  more than 1,000 years is a 400). ``averageScore`` is the mean of every score in the range.
* Score distributions: 10 equal-width buckets between each name's smallest and largest score in the
  range (ClickHouse's ``histogram(10)`` is adaptive; the idea is the same), non-empty ones only.
* Scores over time: one row per score name and ``dbIncrement`` bucket that has a score (the mean, in
  ``score_sum`` as Helicone names it), in time then name order; a range of more than 10,000 buckets of
  ``dbIncrement`` is a 400 naming it.
* ``GET /v1/evals/scores``: every score name the organisation has used, any time, sorted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from heliport.api import requests
from heliport.api.database import QueryDb
from heliport.api.dialect import Params, js_iso
from heliport.api.endpoint import Call
from heliport.api.filters import compile_request_filter
from heliport.api.schemas import FilterNode, TimezoneMinutes
from heliport.errors import RequestError, RouteNotFoundError

__all__ = [
    "MAX_EVALS",
    "AddEvalBody",
    "Eval",
    "EvalQueryParams",
    "Reader",
    "ScoreDistribution",
    "ScoreOverTimeRow",
    "ScoresOverTimeBody",
    "add_eval",
    "eval_scores",
    "query_evals",
    "score_distributions",
    "scores_over_time",
]

Increment = Literal["min", "hour", "day", "week", "month", "year"]

#: Most eval names one page of ``/v1/evals/query`` or of the distributions holds (and the default).
MAX_EVALS: Final = 100
#: Most buckets an eval's ``overTime`` covers before a coarser increment is chosen.
_MAX_EVAL_BUCKETS: Final = 1000
#: Most buckets of ``dbIncrement`` a scores-over-time range may span.
_MAX_DASHBOARD_BUCKETS: Final = 10_000
_HISTOGRAM_BUCKETS: Final = 10
#: The shortest each increment can be, for counting buckets (a month is at least 28 days).
_SHORTEST: Final[dict[Increment, timedelta]] = {
    "min": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
    "month": timedelta(days=28),
    "year": timedelta(days=365),
}
#: The same, on average, for choosing an eval query's increment.
_AVERAGE: Final[dict[Increment, timedelta]] = {
    **_SHORTEST,
    "month": timedelta(days=30.436875),
    "year": timedelta(days=365.2425),
}


class Reader(Protocol):
    """What these handlers use of the API: its database (``QueryApi`` has one)."""

    @property
    def db(self) -> QueryDb: ...


# --- bodies ----------------------------------------------------------------------------------------


def _instant(text: str) -> datetime:
    """An ISO-8601 date or date-time as an aware UTC datetime (no offset: UTC)."""
    at = datetime.fromisoformat(text.strip())
    return (at.replace(tzinfo=UTC) if at.tzinfo is None else at).astimezone(UTC)


class EvalTimeFilter(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    start: Annotated[str, Field(max_length=64, description="ISO-8601 date or date-time; UTC without an offset.")]
    end: Annotated[str, Field(max_length=64, description="ISO-8601 date or date-time; UTC without an offset.")]

    @field_validator("start", "end")
    @classmethod
    def _iso(cls, value: str) -> str:
        try:
            _instant(value)
        except (ValueError, OverflowError):
            raise ValueError("not an ISO-8601 date or date-time") from None
        return value

    @model_validator(mode="after")
    def _ordered(self) -> EvalTimeFilter:
        if _instant(self.start) > _instant(self.end):
            raise ValueError("start is after end")
        return self

    def bounds(self) -> tuple[datetime, datetime]:
        return _instant(self.start), _instant(self.end)


class AddEvalBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    name: Annotated[str, Field(min_length=1, max_length=256)]
    score: Annotated[float, Field(allow_inf_nan=False)]


class EvalQueryParams(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    filter: FilterNode
    timeFilter: EvalTimeFilter
    offset: Annotated[int, Field(ge=0, le=requests.MAX_OFFSET)] = 0
    limit: Annotated[int, Field(ge=0, le=MAX_EVALS)] = MAX_EVALS
    timeZoneDifference: TimezoneMinutes = 0.0


class ScoresOverTimeBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    timeFilter: EvalTimeFilter
    userFilter: FilterNode
    dbIncrement: Increment
    timeZoneDifference: TimezoneMinutes


# --- results ---------------------------------------------------------------------------------------


class EvalCount(BaseModel):
    count: int
    date: str


class EvalAverage(BaseModel):
    value: float
    date: str


class Eval(BaseModel):
    name: str
    averageScore: float
    minScore: float
    maxScore: float
    count: int
    overTime: list[EvalCount]
    averageOverTime: list[EvalAverage]


class ScoreBucket(BaseModel):
    lower: float
    upper: float
    value: int


class ScoreDistribution(BaseModel):
    name: str
    distribution: list[ScoreBucket]


class ScoreOverTimeRow(BaseModel):
    score_key: str
    #: The mean of the bucket's scores (Helicone's name for it).
    score_sum: float
    created_at_trunc: str


# --- SQL -------------------------------------------------------------------------------------------


def _postgres(params: Params) -> bool:
    return params.dialect.name == "postgres"


def _collate(params: Params) -> str:
    """Byte-wise text order on both databases (SQLite's default)."""
    return ' COLLATE "C"' if _postgres(params) else ""


_PG_UNITS: Final[dict[Increment, str]] = {
    "min": "minute",
    "hour": "hour",
    "day": "day",
    "week": "week",
    "month": "month",
    "year": "year",
}
#: SQLite: the local bucket start of a time string shifted by a bound modifier (``{t}``, ``{m}``).
_SQLITE_TRUNC: Final[dict[Increment, str]] = {
    "min": "strftime('%Y-%m-%d %H:%M:00', {t}, {m})",
    "hour": "strftime('%Y-%m-%d %H:00:00', {t}, {m})",
    "day": "date({t}, {m})",
    # Back six days, then forward to the next Monday (or stay on one): the week's Monday.
    "week": "date({t}, {m}, '-6 days', 'weekday 1')",
    "month": "strftime('%Y-%m-01', {t}, {m})",
    "year": "strftime('%Y-01-01', {t}, {m})",
}


def _bucket(params: Params, column: str, increment: Increment, tz_minutes: int) -> str:
    """The instant at which ``column``'s local ``increment`` starts (local = UTC - ``tz_minutes``)."""
    if _postgres(params):
        shift = f"CAST({params.add(float(tz_minutes))} AS double precision) * interval '1 minute'"
        local = f"(({column} AT TIME ZONE 'UTC') - {shift})"
        return f"((date_trunc('{_PG_UNITS[increment]}', {local}) + {shift}) AT TIME ZONE 'UTC')"
    local_start = _SQLITE_TRUNC[increment].format(t=column, m=params.add(f"{-tz_minutes} minutes"))
    return f"datetime({local_start}, {params.add(f'{tz_minutes} minutes')})"


@dataclass(frozen=True, slots=True)
class _Range:
    start: datetime
    end: datetime
    #: Include rows at ``end`` itself.
    end_inclusive: bool = True


def _scored_pairs(
    org_id: str,
    params: Params,
    where: str,
    time: _Range | None,
    bucket: Callable[[Params, str], str] | None = None,
) -> str:
    """CTEs ``scoped`` (the organisation's scored rows matching ``where`` in the range) and ``pairs``
    (one row per numeric score: ``name``, ``score`` and, with ``bucket``, its ``bucket``). ``where``'s
    values must be all that ``params`` holds: it comes first in the text."""
    conditions = [f"({where})", f"org_id = {params.add(org_id)}"]
    if time is not None:
        conditions.append(f"created_at >= {params.add(params.dialect.timestamp(time.start))}")
        operator = "<=" if time.end_inclusive else "<"
        conditions.append(f"created_at {operator} {params.add(params.dialect.timestamp(time.end))}")
    # Written as migration 0011's partial index is, so PostgreSQL can use it.
    conditions.append("scores <> '{}'::jsonb" if _postgres(params) else "scores <> '{}'")
    scoped = f"scoped AS (SELECT created_at, scores FROM requests WHERE {' AND '.join(conditions)})"
    bucket_column = f"{bucket(params, 'scoped.created_at')} AS bucket, " if bucket is not None else ""
    if _postgres(params):
        pairs = (
            f"pairs AS (SELECT {bucket_column}k.key AS name,"
            " CASE WHEN jsonb_typeof(k.value) = 'number' THEN CAST(k.value AS double precision) END AS score"
            " FROM scoped CROSS JOIN LATERAL jsonb_each(scoped.scores) AS k(key, value)"
            " WHERE jsonb_typeof(k.value) = 'number')"
        )
    else:
        pairs = (
            f"pairs AS (SELECT {bucket_column}j.key AS name, CAST(j.value AS REAL) AS score"
            " FROM scoped, json_each(scoped.scores) AS j WHERE j.type IN ('integer', 'real'))"
        )
    return f"{scoped}, {pairs}"


def _names_page(params: Params, limit: int, offset: int) -> str:
    """CTE ``names``: one page of the score names in ``pairs``, byte-wise order."""
    order = f"name{_collate(params)}"
    return (
        f"names AS (SELECT name FROM pairs GROUP BY name ORDER BY {order}"
        f" LIMIT {params.add(limit)} OFFSET {params.add(offset)})"
    )


def evals_sql(org_id: str, params: Params, where: str, body: EvalQueryParams, increment: Increment) -> str:
    """Per (name, bucket): count and mean; per name (window): count, mean, min and max over the range."""
    start, end = body.timeFilter.bounds()
    tz = _whole_minutes(body.timeZoneDifference)
    pairs = _scored_pairs(org_id, params, where, _Range(start, end), lambda p, c: _bucket(p, c, increment, tz))
    names = _names_page(params, body.limit, body.offset)
    collate = _collate(params)
    return (
        f"WITH {pairs}, {names}"
        " SELECT p.name, p.bucket, count(*) AS n, avg(p.score) AS average,"
        " sum(count(*)) OVER w AS total, sum(sum(p.score)) OVER w / sum(count(*)) OVER w AS total_average,"
        " min(min(p.score)) OVER w AS low, max(max(p.score)) OVER w AS high"
        " FROM pairs p JOIN names ON names.name = p.name GROUP BY p.name, p.bucket"
        f" WINDOW w AS (PARTITION BY p.name) ORDER BY p.name{collate}, p.bucket"
    )


def names_sql(org_id: str, params: Params) -> str:
    """Every score name the organisation has used."""
    pairs = _scored_pairs(org_id, params, "TRUE", None)
    return f"WITH {pairs} SELECT name FROM pairs GROUP BY name ORDER BY name{_collate(params)}"


def distributions_sql(org_id: str, params: Params, where: str, body: EvalQueryParams) -> str:
    """Per name: equal-width buckets between its smallest and largest score, with their counts."""
    start, end = body.timeFilter.bounds()
    pairs = _scored_pairs(org_id, params, where, _Range(start, end, end_inclusive=False))
    names = _names_page(params, body.limit, body.offset)
    n = _HISTOGRAM_BUCKETS
    position = f"(p.score - s.lo) / (s.hi - s.lo) * {n}"
    if _postgres(params):
        index = f"least({n - 1}, CAST(floor({position}) AS integer))"
    else:
        index = f"min({n - 1}, CAST({position} AS INTEGER))"  # never negative: truncation is floor
    return (
        f"WITH {pairs}, {names},"
        " spans AS (SELECT p.name, min(p.score) AS lo, max(p.score) AS hi FROM pairs p"
        " JOIN names ON names.name = p.name GROUP BY p.name),"
        f" bucketed AS (SELECT p.name, s.lo, s.hi, CASE WHEN s.hi = s.lo THEN 0 ELSE {index} END AS bucket"
        " FROM pairs p JOIN spans s ON s.name = p.name)"
        f" SELECT name, bucket, lo + bucket * (hi - lo) / {n} AS lower,"
        f" CASE WHEN bucket = {n - 1} OR hi = lo THEN hi ELSE lo + (bucket + 1) * (hi - lo) / {n} END AS upper,"
        f" count(*) AS value FROM bucketed GROUP BY name, bucket, lo, hi ORDER BY name{_collate(params)}, bucket"
    )


def over_time_sql(org_id: str, params: Params, where: str, body: ScoresOverTimeBody) -> str:
    """Per (bucket, name): the mean score."""
    start, end = body.timeFilter.bounds()
    tz = _whole_minutes(body.timeZoneDifference)
    increment = body.dbIncrement
    pairs = _scored_pairs(org_id, params, where, _Range(start, end), lambda p, c: _bucket(p, c, increment, tz))
    return (
        f"WITH {pairs} SELECT bucket, name, avg(score) AS average FROM pairs"
        f" GROUP BY bucket, name ORDER BY bucket, name{_collate(params)}"
    )


# --- buckets ---------------------------------------------------------------------------------------


def _whole_minutes(tz_minutes: float) -> int:
    return round(tz_minutes)


def _floor_local(local: datetime, increment: Increment) -> datetime:
    if increment == "min":
        return local.replace(second=0, microsecond=0)
    if increment == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if increment == "day":
        return day
    if increment == "week":
        return day - timedelta(days=day.weekday())
    if increment == "month":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def _next_local(local: datetime, increment: Increment) -> datetime:
    if increment == "month":
        return local.replace(year=local.year + local.month // 12, month=local.month % 12 + 1)
    if increment == "year":
        return local.replace(year=local.year + 1)
    return local + {"min": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}.get(
        increment, timedelta(weeks=1)
    )


def bucket_starts(start: datetime, end: datetime, increment: Increment, tz_minutes: int) -> list[str]:
    """Every bucket of ``[start, end]``, as the SQL of :func:`_bucket` names them (``toISOString`` form)."""
    shift = timedelta(minutes=tz_minutes)
    try:
        local = _floor_local(start - shift, increment)
        last = _floor_local(end - shift, increment)
        starts: list[str] = []
        while local <= last:
            starts.append(js_iso(local + shift))
            local = _next_local(local, increment)
    except (OverflowError, ValueError):
        raise RequestError(
            "Invalid timeFilter: its buckets reach past the instants a timestamp can hold (years 1 to 9999).",
            param="timeFilter",
        ) from None
    return starts


def eval_increment(start: datetime, end: datetime) -> Increment:
    """Hourly (Helicone's), or the first coarser increment that gives at most 1,000 buckets."""
    span = end - start
    for increment in ("hour", "day", "week", "month", "year"):
        if span / _AVERAGE[increment] < _MAX_EVAL_BUCKETS:
            return increment
    raise RequestError(f"Invalid timeFilter: eval queries span at most {_MAX_EVAL_BUCKETS} years.", param="timeFilter")


def _float(value: Any) -> float:
    return 0.0 if value is None else float(value)


def _key(value: object) -> str:
    return js_iso(value)


# --- handlers --------------------------------------------------------------------------------------


async def add_eval(api: Reader, call: Call) -> None:
    """Store ``score`` under ``name`` in the request's scores (the one score store)."""
    body = call.parsed(AddEvalBody)
    named = call.path("requestId")
    key = requests.parse_request_id(named)
    params = Params(api.db.dialect)
    sql = requests.scores_sql(call.org_id, params, key, {body.name: float(body.score)})
    if await api.db.execute(call.org_id, sql, params.values) == 0:
        raise RouteNotFoundError(f"No request {named} in this organisation.")


async def query_evals(api: Reader, call: Call) -> list[dict[str, Any]]:
    body = call.parsed(EvalQueryParams)
    start, end = body.timeFilter.bounds()
    increment = eval_increment(start, end)
    dates = bucket_starts(start, end, increment, _whole_minutes(body.timeZoneDifference))
    params = Params(api.db.dialect)
    where = compile_request_filter(body.filter, params)
    rows = await api.db.fetch(call.org_id, evals_sql(call.org_id, params, where, body, increment), params.values)
    evals: dict[str, dict[str, Any]] = {}
    buckets: dict[str, dict[str, tuple[int, float]]] = {}
    for row in rows:
        name = row["name"]
        if name not in evals:
            evals[name] = {
                "name": name,
                "averageScore": _float(row["total_average"]),
                "minScore": _float(row["low"]),
                "maxScore": _float(row["high"]),
                "count": int(row["total"]),
            }
            buckets[name] = {}
        buckets[name][_key(row["bucket"])] = (int(row["n"]), _float(row["average"]))
    for name, item in evals.items():
        seen = buckets[name]
        item["overTime"] = [{"count": seen.get(date, (0, 0.0))[0], "date": date} for date in dates]
        item["averageOverTime"] = [{"value": seen.get(date, (0, 0.0))[1], "date": date} for date in dates]
    return list(evals.values())


async def eval_scores(api: Reader, call: Call) -> list[str]:
    params = Params(api.db.dialect)
    rows = await api.db.fetch(call.org_id, names_sql(call.org_id, params), params.values)
    return [row["name"] for row in rows]


async def score_distributions(api: Reader, call: Call) -> list[dict[str, Any]]:
    body = call.parsed(EvalQueryParams)
    params = Params(api.db.dialect)
    where = compile_request_filter(body.filter, params)
    rows = await api.db.fetch(call.org_id, distributions_sql(call.org_id, params, where, body), params.values)
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(row["name"], []).append(
            {"lower": _float(row["lower"]), "upper": _float(row["upper"]), "value": int(row["value"])}
        )
    return [{"name": name, "distribution": distribution} for name, distribution in found.items()]


async def scores_over_time(api: Reader, call: Call) -> list[dict[str, Any]]:
    body = call.parsed(ScoresOverTimeBody)
    start, end = body.timeFilter.bounds()
    if (end - start) / _SHORTEST[body.dbIncrement] > _MAX_DASHBOARD_BUCKETS:
        raise RequestError(
            f"Invalid dbIncrement: the time range spans more than {_MAX_DASHBOARD_BUCKETS} buckets of"
            f" {body.dbIncrement!r}; choose a coarser one.",
            param="dbIncrement",
        )
    params = Params(api.db.dialect)
    where = compile_request_filter(body.userFilter, params)
    rows = await api.db.fetch(call.org_id, over_time_sql(call.org_id, params, where, body), params.values)
    return [
        {"score_key": row["name"], "score_sum": _float(row["average"]), "created_at_trunc": _key(row["bucket"])}
        for row in rows
    ]
