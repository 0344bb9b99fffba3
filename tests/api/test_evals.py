"""Evals and scores (``api/evals.py``) through a live heliport on SQLite and PostgreSQL.

Scores are written through both routes (``/v1/evals/{id}`` and ``/v1/request/{id}/score``) and read back
by every eval route and by the request itself: one store. Organisation B has a score name of its own
and a score under a shared name, so any leak would show in A's answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from heliport.logs.row import RequestRow
from tests.api.test_http import row
from tests.api.two_orgs import TwoOrgs, failed, ok, serve

HOUR = timedelta(hours=1)
#: T0 is Friday 2026-05-01 09:00 UTC.
RANGE = {"start": "2026-05-01T09:00:00Z", "end": "2026-05-01T12:00:00.000Z"}
EVALS = "/v1/evals/query"
DISTRIBUTIONS = "/v1/evals/score-distributions/query"
OVER_TIME = "/v1/dashboard/scores/query"


def _rows(org_a: str, org_b: str) -> list[RequestRow]:
    return [
        row(org_a, 0),  # 0: accuracy 0.5 (evals), helpful 0 (evals)
        row(org_a, 60, model="gpt-4o"),  # 1: accuracy 1, helpful true (score route)
        row(org_a, 90),  # 2: accuracy 0.75 (evals)
        row(org_a, 180),  # 3: no score
        row(org_a, 2 * 24 * 60),  # 4: accuracy 0.1, two days later
        row(org_b, 0, scores={"accuracy": 100.0}),  # 5: B's
    ]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoOrgs]:
    for served in serve(request.param, tmp_path_factory.mktemp(f"evals-{request.param}"), _rows):
        ids = [r.request_id for r in served.rows]
        ok(served.a.post(f"/v1/evals/{ids[0]}", json={"name": "accuracy", "score": 0.5}))
        ok(served.a.post(f"/v1/request/{ids[1]}/score", json={"scores": {"accuracy": 1, "helpful": True}}))
        ok(served.a.post(f"/v1/evals/{ids[2]}", json={"name": "accuracy", "score": 0.75}))
        ok(served.a.post(f"/v1/evals/{ids[4]}", json={"name": "accuracy", "score": 0.1}))
        ok(served.a.post(f"/v1/evals/{ids[0]}", json={"name": "helpful", "score": 0}))
        ok(served.b.post(f"/v1/evals/{ids[5]}", json={"name": "b-secret", "score": 7}))
        yield served


def _ids(api: TwoOrgs) -> list[str]:
    return [r.request_id for r in api.rows]


def _evals(api: TwoOrgs, **body: Any) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = ok(
        api.a.post("/v1/evals/query", json={"filter": "all", "timeFilter": RANGE, **body})
    )
    return result


# --- one score store -------------------------------------------------------------------------------


def test_evals_and_the_score_route_write_the_same_scores(api: TwoOrgs) -> None:
    ids = _ids(api)
    assert ok(api.a.get(f"/v1/request/{ids[0]}"))["scores"] == {"accuracy": 0.5, "helpful": 0}
    assert ok(api.a.get(f"/v1/request/{ids[1]}"))["scores"] == {"accuracy": 1, "helpful": 1}
    scored = ok(
        api.a.post(
            "/v1/request/query", json={"filter": {"request_response_rmt": {"scores": {"accuracy": {"gte": 0.7}}}}}
        )
    )
    assert {r["request_id"] for r in scored} == {ids[1], ids[2]}


def test_score_names_in_use_are_the_organisations_own(api: TwoOrgs) -> None:
    assert ok(api.a.get("/v1/evals/scores")) == ["accuracy", "helpful"]
    assert ok(api.b.get("/v1/evals/scores")) == ["accuracy", "b-secret"]


# --- /v1/evals/query -------------------------------------------------------------------------------


def test_eval_query_aggregates_each_name_hour_by_hour(api: TwoOrgs) -> None:
    accuracy, helpful = _evals(api)
    hours = [
        "2026-05-01T09:00:00.000Z",
        "2026-05-01T10:00:00.000Z",
        "2026-05-01T11:00:00.000Z",
        "2026-05-01T12:00:00.000Z",
    ]
    assert accuracy == {
        "name": "accuracy",
        "averageScore": pytest.approx(0.75),
        "minScore": 0.5,
        "maxScore": 1.0,
        "count": 3,
        "overTime": [{"count": n, "date": d} for n, d in zip([1, 2, 0, 0], hours, strict=True)],
        "averageOverTime": [
            {"value": pytest.approx(v), "date": d} for v, d in zip([0.5, 0.875, 0, 0], hours, strict=True)
        ],
    }
    assert helpful["name"] == "helpful"
    assert (helpful["count"], helpful["averageScore"], helpful["minScore"], helpful["maxScore"]) == (2, 0.5, 0, 1)
    assert [p["count"] for p in helpful["overTime"]] == [1, 1, 0, 0]


def test_eval_query_filters_pages_and_leaves_other_organisations_out(api: TwoOrgs) -> None:
    only_gpt4o = _evals(api, filter={"request_response_rmt": {"model": {"equals": "gpt-4o"}}})
    assert [(e["name"], e["count"], e["averageScore"]) for e in only_gpt4o] == [
        ("accuracy", 1, 1.0),
        ("helpful", 1, 1.0),
    ]
    assert [e["name"] for e in _evals(api, limit=1)] == ["accuracy"]
    assert [e["name"] for e in _evals(api, offset=1, limit=5)] == ["helpful"]
    assert _evals(api, timeFilter={"start": "2020-01-01", "end": "2020-01-02"}) == []
    # B's only scores are at T0 too: its own name and its own values, nothing of A's.
    theirs = ok(api.b.post("/v1/evals/query", json={"filter": "all", "timeFilter": RANGE}))
    assert [(e["name"], e["count"], e["maxScore"]) for e in theirs] == [("accuracy", 1, 100.0), ("b-secret", 1, 7.0)]


def test_a_long_range_is_bucketed_by_local_day(api: TwoOrgs) -> None:
    # 61 days is more than 1,000 hours, so days; UTC-10 (getTimezoneOffset 600): local days start at 10:00Z.
    (accuracy, _) = _evals(api, timeFilter={"start": "2026-05-01", "end": "2026-07-01"}, timeZoneDifference=600)
    assert accuracy["overTime"][0]["date"] == "2026-04-30T10:00:00.000Z"
    counts = {p["date"]: p["count"] for p in accuracy["overTime"] if p["count"]}
    assert counts == {"2026-04-30T10:00:00.000Z": 1, "2026-05-01T10:00:00.000Z": 2, "2026-05-02T10:00:00.000Z": 1}
    assert accuracy["count"] == 4 and accuracy["minScore"] == pytest.approx(0.1)
    assert len(accuracy["overTime"]) == len(accuracy["averageOverTime"]) == 62


# --- /v1/evals/score-distributions/query ---------------------------------------------------------


def test_score_distributions_split_each_names_range_in_ten(api: TwoOrgs) -> None:
    found = ok(api.a.post("/v1/evals/score-distributions/query", json={"filter": "all", "timeFilter": RANGE}))
    assert [d["name"] for d in found] == ["accuracy", "helpful"]
    accuracy = [(b["lower"], b["upper"], b["value"]) for b in found[0]["distribution"]]
    assert accuracy == [
        (0.5, pytest.approx(0.55), 1),
        (pytest.approx(0.75), pytest.approx(0.8), 1),
        (pytest.approx(0.95), 1.0, 1),
    ]
    helpful = [(b["lower"], b["upper"], b["value"]) for b in found[1]["distribution"]]
    assert helpful == [(0, pytest.approx(0.1), 1), (pytest.approx(0.9), 1, 1)]
    theirs = ok(api.b.post("/v1/evals/score-distributions/query", json={"filter": "all", "timeFilter": RANGE}))
    assert [(d["name"], d["distribution"]) for d in theirs] == [
        ("accuracy", [{"lower": 100.0, "upper": 100.0, "value": 1}]),
        ("b-secret", [{"lower": 7.0, "upper": 7.0, "value": 1}]),
    ]


# --- /v1/dashboard/scores/query ------------------------------------------------------------------


def _over_time(api: TwoOrgs, increment: str, **body: Any) -> list[tuple[str, str, Any]]:
    request = {"timeFilter": RANGE, "userFilter": "all", "dbIncrement": increment, "timeZoneDifference": 0, **body}
    rows = ok(api.a.post("/v1/dashboard/scores/query", json=request))
    return [(r["created_at_trunc"], r["score_key"], r["score_sum"]) for r in rows]


def test_scores_over_time_by_increment(api: TwoOrgs) -> None:
    assert _over_time(api, "hour") == [
        ("2026-05-01T09:00:00.000Z", "accuracy", 0.5),
        ("2026-05-01T09:00:00.000Z", "helpful", 0),
        ("2026-05-01T10:00:00.000Z", "accuracy", pytest.approx(0.875)),
        ("2026-05-01T10:00:00.000Z", "helpful", 1),
    ]
    assert _over_time(api, "day") == [
        ("2026-05-01T00:00:00.000Z", "accuracy", pytest.approx(0.75)),
        ("2026-05-01T00:00:00.000Z", "helpful", 0.5),
    ]
    week = {"start": "2026-05-01", "end": "2026-05-04"}
    # Weeks start on Monday: 2026-04-27. Row 4 (Sunday 2026-05-03) is in the same week.
    assert _over_time(api, "week", timeFilter=week)[0] == (
        "2026-04-27T00:00:00.000Z",
        "accuracy",
        pytest.approx(0.5875),
    )
    assert _over_time(api, "month", timeFilter=week)[0][0] == "2026-05-01T00:00:00.000Z"
    assert _over_time(api, "year", timeFilter=week)[0][0] == "2026-01-01T00:00:00.000Z"
    # UTC+2 (getTimezoneOffset -120): the local day starts at 22:00Z the day before.
    assert _over_time(api, "day", timeZoneDifference=-120)[0][0] == "2026-04-30T22:00:00.000Z"
    # B sees its own only.
    theirs = api.b.post(
        "/v1/dashboard/scores/query",
        json={"timeFilter": RANGE, "userFilter": "all", "dbIncrement": "hour", "timeZoneDifference": 0},
    )
    assert [(r["score_key"], r["score_sum"]) for r in ok(theirs)] == [("accuracy", 100.0), ("b-secret", 7.0)]


def test_scores_over_time_applies_the_user_filter(api: TwoOrgs) -> None:
    only = {"request_response_rmt": {"model": {"equals": "gpt-4o"}}}
    assert _over_time(api, "day", userFilter=only) == [
        ("2026-05-01T00:00:00.000Z", "accuracy", 1.0),
        ("2026-05-01T00:00:00.000Z", "helpful", 1.0),
    ]


# --- bad input, other organisations --------------------------------------------------------------


def test_an_eval_on_another_organisations_request_is_not_found(api: TwoOrgs) -> None:
    theirs = _ids(api)[5]
    assert "No request" in failed(api.a.post(f"/v1/evals/{theirs}", json={"name": "x", "score": 1}), 404)
    assert "No request" in failed(api.a.post("/v1/evals/not-a-uuid", json={"name": "x", "score": 1}), 404)
    assert ok(api.b.get(f"/v1/request/{theirs}"))["scores"] == {"accuracy": 100, "b-secret": 7}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/evals/{id}", {"name": "x"}, "score"),
        ("/v1/evals/{id}", {"name": "x", "score": "high"}, "score"),
        ("/v1/evals/{id}", '{"name": "x", "score": 1e400}', "score"),
        ("/v1/evals/{id}", {"name": "", "score": 1}, "name"),
        (EVALS, {"filter": "all"}, "timeFilter"),
        (EVALS, {"filter": "all", "timeFilter": {"start": "yesterday", "end": "2026-01-01"}}, "timeFilter.start"),
        (EVALS, {"filter": "all", "timeFilter": {"start": "2026-02-01", "end": "2026-01-01"}}, "timeFilter"),
        (EVALS, {"filter": "all", "timeFilter": RANGE, "limit": 101}, "limit"),
        (EVALS, {"filter": "all", "timeFilter": RANGE, "timeZoneDifference": 5000}, "timeZoneDifference"),
        (EVALS, {"filter": {"request_response_rmt": {"nope": {"equals": 1}}}, "timeFilter": RANGE}, "filter"),
        (EVALS, {"filter": "all", "timeFilter": {"start": "0001-01-01", "end": "9999-12-31"}}, "timeFilter"),
        (DISTRIBUTIONS, {"filter": "all", "timeFilter": {"start": "x", "end": "y"}}, "timeFilter.start"),
        (OVER_TIME, {"timeFilter": RANGE, "userFilter": "all", "dbIncrement": "decade", "timeZoneDifference": 0},
         "dbIncrement"),
        (OVER_TIME, {"timeFilter": {"start": "2026-01-01", "end": "2026-03-01"}, "userFilter": "all",
                     "dbIncrement": "min", "timeZoneDifference": 0}, "dbIncrement"),
        (OVER_TIME, {"timeFilter": RANGE, "dbIncrement": "day", "timeZoneDifference": 0}, "userFilter"),
    ],
)  # fmt: skip
def test_bad_input_is_a_400_naming_the_field(api: TwoOrgs, path: str, body: dict[str, Any] | str, field: str) -> None:
    url = path.format(id=_ids(api)[3])
    # A str is sent as it is: JSON that Python's encoder would not write (1e400 reads as infinity).
    sent = (
        api.a.post(url, content=body, headers={"content-type": "application/json"})
        if isinstance(body, str)
        else (api.a.post(url, json=body))
    )
    message = failed(sent, 400)
    assert field in message
    assert ok(api.a.get(f"/v1/request/{_ids(api)[3]}"))["scores"] == {}


def test_a_method_the_path_does_not_take_is_a_405(api: TwoOrgs) -> None:
    assert failed(api.a.post("/v1/evals/scores", json={"name": "x", "score": 1}), 405)
    assert failed(api.a.get("/v1/evals/query"), 405)
