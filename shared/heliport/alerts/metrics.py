"""Measuring an alert: one aggregate SQL statement over an organisation's rows in [now - window, now].

The statement reads ``requests`` by ``org_id`` and ``created_at`` (index ``requests_org_created``),
narrowed by the alert's filter, compiled by the query API's own compiler (``api/filters.py``: the same
AST and meaning as ``/v1/request/query``), and grouped by the alert's grouping. It returns, per group,
the number of requests and the metric's value:

* ``error_rate``: 100 * rows with status >= 400 / rows; ``count``: rows (their aggregation is ignored);
* every other metric is a column of the row (``cost``, ``delay_ms`` for latency, the token columns),
  aggregated by ``sum`` (0 when no row has a value), ``avg``, ``min``, ``max`` or ``pN``; rows without a
  value count as requests but not in the value (``avg`` of the known values, as SQL's aggregates do).

Percentiles are continuous (linear interpolation between the two nearest ranks, PostgreSQL's
``percentile_cont``). SQLite has no percentile aggregate; rather than pull every value into Python, the
SQLite statement ranks each group's values with window functions and interpolates between the two ranks
around ``N/100 * (n - 1)``, which is ``percentile_cont``'s definition, so both databases give the same
value and it is still one statement that returns one row per group.

Groups: ``user`` (``user_id``), ``model``, ``provider`` or ``property:<name>`` (the property's text, read
as the filters read properties: ``Dialect.property``, the name bound as a parameter). Rows without a value
for the grouping (no user id, no such property) belong to no group and are left out of a grouped alert.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from heliport.alerts import AGGREGATED_METRICS, AlertQuery
from heliport.api.database import QueryDb
from heliport.api.dialect import Params
from heliport.api.filters import compile_request_filter

__all__ = ["GROUPINGS", "GroupValue", "Measurement", "measure", "percentile_of", "statement"]

#: Groupings other than ``property:<name>``, and the column each reads.
GROUPINGS: Final = {"user": "user_id", "model": "model", "provider": "provider"}
_PROPERTY: Final = "property:"
#: Columns of the per-row metrics (cost is special: exact text on SQLite, numeric on PostgreSQL).
_COLUMNS: Final = {
    "latency": "delay_ms",
    "total_tokens": "total_tokens",
    "prompt_tokens": "prompt_tokens",
    "completion_tokens": "completion_tokens",
    "prompt_cache_read_tokens": "prompt_cache_read_tokens",
    "prompt_cache_write_tokens": "prompt_cache_write_tokens",
}


@dataclass(frozen=True, slots=True)
class GroupValue:
    #: The group's value of the grouping; None for an ungrouped alert.
    group: str | None
    requests: int
    #: None when no row of the group has a value for the metric (e.g. no priced row for ``avg`` cost).
    value: float | None

    def over(self, threshold: float, minimum_requests: int) -> bool:
        return self.value is not None and self.requests >= minimum_requests and self.value >= threshold


@dataclass(frozen=True, slots=True)
class Measurement:
    start: datetime
    end: datetime
    groups: tuple[GroupValue, ...]


def percentile_of(aggregation: str) -> float | None:
    """``p95`` -> 0.95; None for sum/avg/min/max."""
    return int(aggregation[1:]) / 100 if aggregation.startswith("p") else None


def statement(org_id: str, query: AlertQuery, params: Params, start: datetime, end: datetime) -> str:
    """The aggregate statement (columns ``grp``, ``requests``, ``value``), values bound into ``params``
    in the order their placeholders appear. Raises :class:`~heliport.api.filters.FilterError` for a bad
    filter (before anything is bound)."""
    dialect = params.dialect
    postgres = dialect.name == "postgres"
    real = "double precision" if postgres else "REAL"
    grouped = query.group_by is not None
    if query.group_by is None:
        group_expr = "NULL"
    elif query.group_by.startswith(_PROPERTY):
        name = query.group_by[len(_PROPERTY) :]
        group_expr = dialect.property("properties", params.add(dialect.property_key(name)))
    else:
        group_expr = GROUPINGS[query.group_by]
    if query.metric == "cost":
        value_expr = f"CAST(cost AS {real})"
    elif query.metric in _COLUMNS:
        value_expr = f"CAST({_COLUMNS[query.metric]} AS {real})"
    else:
        value_expr = "NULL"
    # The filter is parsed and checked whole before it binds anything, so a FilterError leaves params as
    # they were; its values follow the window's in the text, and are bound in that order.
    scoped = (
        f"SELECT {group_expr} AS grp, status, {value_expr} AS v FROM requests "
        f"WHERE org_id = {params.add(org_id)} AND created_at >= {params.add(dialect.timestamp(start))} "
        f"AND created_at <= {params.add(dialect.timestamp(end))}"
    )
    scoped += f" AND {compile_request_filter(query.filter, params)}"
    kept = " WHERE grp IS NOT NULL" if grouped else ""
    head = f"WITH scoped AS ({scoped})"
    if query.metric == "count":
        value = f"CAST(count(*) AS {real})"
    elif query.metric == "error_rate":
        value = f"CAST(100.0 * sum(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS {real}) / count(*)"
    else:
        assert query.metric in AGGREGATED_METRICS
        fraction = percentile_of(query.aggregation)
        if fraction is not None:
            q = params.add(fraction)
            if postgres:
                value = f"percentile_cont(CAST({q} AS double precision)) WITHIN GROUP (ORDER BY v)"
            else:
                # percentile_cont by hand: rank the group's known values (i from 0), take the two ranks
                # around pos = fraction * (n - 1) and interpolate; see the module docstring.
                return (
                    f"{head}, counted AS (SELECT grp, count(*) AS requests FROM scoped{kept} GROUP BY grp), "
                    "ranked AS (SELECT grp, v, row_number() OVER (PARTITION BY grp ORDER BY v) - 1 AS i, "
                    f"{q} * (count(*) OVER (PARTITION BY grp) - 1) AS pos FROM scoped "
                    f"WHERE v IS NOT NULL{' AND grp IS NOT NULL' if grouped else ''}), "
                    "bounds AS (SELECT grp, max(CASE WHEN i = CAST(pos AS INTEGER) THEN v END) AS lo, "
                    "max(CASE WHEN i = CAST(pos AS INTEGER) + 1 THEN v END) AS hi, "
                    "max(pos - CAST(pos AS INTEGER)) AS frac FROM ranked GROUP BY grp) "
                    "SELECT c.grp AS grp, c.requests AS requests, "
                    "b.lo + coalesce(b.hi - b.lo, 0) * b.frac AS value "
                    "FROM counted AS c LEFT JOIN bounds AS b ON b.grp IS c.grp"
                )
        elif query.aggregation == "sum":
            value = "coalesce(sum(v), 0)"
        elif query.aggregation in ("avg", "min", "max"):
            value = f"{query.aggregation}(v)"  # a name from this fixed list, never the caller's text
        else:
            raise ValueError(f"unknown aggregation {query.aggregation!r}")
    return f"{head} SELECT grp, count(*) AS requests, {value} AS value FROM scoped{kept} GROUP BY grp"


async def measure(db: QueryDb, org_id: str, query: AlertQuery, now: datetime) -> Measurement:
    """The alert's value per group over [now - window, now], groups ordered by name."""
    start = now - timedelta(minutes=query.window_minutes)
    params = Params(db.dialect)
    sql = statement(org_id, query, params, start, now)
    groups: list[GroupValue] = []
    for row in await db.fetch(org_id, sql, params.values):
        value = row["value"]
        number = None if value is None else float(value)
        if number is not None and not math.isfinite(number):
            number = None
        group = row["grp"]
        groups.append(GroupValue(None if group is None else str(group), int(row["requests"]), number))
    if not groups and query.group_by is None:
        # No row in the window: the count (and a sum) is 0; a rate, mean or extreme has no value.
        nothing = (
            0.0 if query.metric == "count" or (query.metric != "error_rate" and query.aggregation == "sum") else None
        )
        groups.append(GroupValue(None, 0, nothing))
    groups.sort(key=lambda g: (g.group is None, g.group or ""))
    return Measurement(start, now, tuple(groups))
