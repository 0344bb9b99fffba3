"""The aggregate statement on SQLite and PostgreSQL: every metric and aggregation, grouped and not,
against the same numbers computed in Python from the rows the log writer stored."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from heliport.alerts import AlertQuery
from heliport.alerts.metrics import measure
from heliport.api.filters import FilterError
from tests.alerts.conftest import Database
from tests.alerts.seeds import AGGREGATIONS, METRICS, ORG, OTHER, expected_groups, rows

pytestmark = pytest.mark.anyio

GROUPINGS = (None, "model", "user", "provider", "property:team")


def _close(got: float | None, want: float | None) -> bool:
    if got is None or want is None:
        return got is want
    return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12)


async def test_every_metric_and_aggregation_grouped_and_not(database: Database) -> None:
    now = datetime.now(UTC)
    seeded = rows(ORG, now)
    # Another organisation's rows, twice over: any leak would show in every count and sum.
    await database.seed([*seeded, *rows(OTHER, now), *rows(OTHER, now)])
    checked = 0
    for metric in METRICS:
        for aggregation in AGGREGATIONS:
            for group_by in GROUPINGS:
                query = AlertQuery(metric=metric, window_minutes=10, aggregation=aggregation, group_by=group_by)
                measured = await measure(database.queries, ORG, query, now)
                got = {("*" if g.group is None else g.group): (g.requests, g.value) for g in measured.groups}
                want = expected_groups(seeded, metric, aggregation, group_by)
                assert got.keys() == want.keys(), (metric, aggregation, group_by)
                for key, (requests, value) in want.items():
                    assert got[key][0] == requests, (metric, aggregation, group_by, key)
                    assert _close(got[key][1], value), (metric, aggregation, group_by, key, got[key][1], value)
                checked += 1
    assert checked == len(METRICS) * len(AGGREGATIONS) * len(GROUPINGS)


async def test_the_window_and_the_filter_narrow_the_rows(database: Database) -> None:
    now = datetime.now(UTC)
    seeded = rows(ORG, now)
    await database.seed(seeded)
    only_a = {"request_response_rmt": {"model": {"equals": "a"}}}
    query = AlertQuery(metric="count", window_minutes=10, filter=only_a)
    (group,) = (await measure(database.queries, ORG, query, now)).groups
    assert (group.group, group.requests, group.value) == (None, 3, 3.0)
    # An hour later the rows are out of a 10-minute window: no request, a count of 0.
    later = await measure(database.queries, ORG, query, now + timedelta(hours=1))
    assert [(g.group, g.requests, g.value) for g in later.groups] == [(None, 0, 0.0)]
    # A rate has no value without requests; a grouped alert has no group at all.
    rate = AlertQuery(metric="error_rate", window_minutes=10)
    assert [
        (g.requests, g.value) for g in (await measure(database.queries, ORG, rate, now + timedelta(hours=1))).groups
    ] == [(0, None)]
    grouped = AlertQuery(metric="count", window_minutes=10, group_by="model")
    assert (await measure(database.queries, ORG, grouped, now + timedelta(hours=1))).groups == ()


async def test_a_bad_filter_is_a_filter_error_naming_its_path(database: Database) -> None:
    query = AlertQuery(metric="count", window_minutes=10, filter={"request_response_rmt": {"nope": {"equals": 1}}})
    with pytest.raises(FilterError) as caught:
        await measure(database.queries, ORG, query, datetime.now(UTC))
    assert caught.value.path.startswith("filter.request_response_rmt.nope")
