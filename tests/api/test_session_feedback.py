"""Session feedback (``api/session_feedback.py``) through a live heliport on SQLite and PostgreSQL, read
back by the session query. Both organisations have a session ``sess-1``: a rating is per organisation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from heliport.logs.row import RequestRow
from tests.api.test_http import row
from tests.api.two_orgs import TwoOrgs, failed, ok, serve

WINDOW = {"startTimeUnixMs": 0, "endTimeUnixMs": 4102444800000}
#: Percent-encoded in the path (a "/" cannot be: the path would no longer match the route).
ODD = "sess ü?#%1"


def _rows(org_a: str, org_b: str) -> list[RequestRow]:
    return [
        row(org_a, 0, session_id="sess-1", session_name="Checkout"),
        row(org_a, 5, session_id="sess-1", session_name="Checkout"),
        row(org_a, 10, session_id="sess-2"),
        row(org_a, 15, session_id="sess-3"),
        row(org_a, 20, session_id=ODD),
        row(org_a, 25),
        row(org_b, 0, session_id="sess-1"),
        row(org_b, 5, session_id="sess-b"),
    ]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoOrgs]:
    yield from serve(request.param, tmp_path_factory.mktemp(f"feedback-{request.param}"), _rows)


def _sessions(client: httpx.Client, **body: Any) -> dict[str, bool | None]:
    query = {"search": "", "timeFilter": WINDOW, "timezoneDifference": 0, "filter": "all", **body}
    return {s["session_id"]: s["feedback_rating"] for s in ok(client.post("/v1/session/query", json=query))}


def _rate(client: httpx.Client, session_id: str, rating: object) -> httpx.Response:
    return client.post(f"/v1/session/{quote(session_id, safe='')}/feedback", json={"rating": rating})


def test_a_rating_is_shown_by_the_session_query_and_replaced_by_the_next(api: TwoOrgs) -> None:
    assert _sessions(api.a) == {"sess-1": None, "sess-2": None, "sess-3": None, ODD: None}
    assert ok(_rate(api.a, "sess-1", True)) is None
    assert ok(_rate(api.a, ODD, False)) is None
    assert _sessions(api.a) == {"sess-1": True, "sess-2": None, "sess-3": None, ODD: False}
    ok(_rate(api.a, "sess-1", False))
    assert _sessions(api.a)["sess-1"] is False
    # The same session id in the other organisation is another session.
    assert _sessions(api.b) == {"sess-1": None, "sess-b": None}
    ok(_rate(api.b, "sess-1", True))
    assert _sessions(api.b)["sess-1"] is True
    assert _sessions(api.a)["sess-1"] is False


def test_the_rating_rides_along_with_search_and_session_filters(api: TwoOrgs) -> None:
    ok(_rate(api.a, "sess-2", True))
    assert _sessions(api.a, search="sess-2") == {"sess-2": True}
    big = {"sessions_request_response_rmt": {"session_total_requests": {"gte": 2}}}
    assert list(_sessions(api.a, filter=big)) == ["sess-1"]
    assert _sessions(api.a, nameEquals="Checkout").keys() == {"sess-1"}
    # The metrics are unchanged by the join: three one-request sessions and one of two.
    metrics = ok(api.a.post("/v1/session/metrics/query", json={"nameContains": "", "timezoneDifference": 0}))
    assert metrics["average"]["session_count"] == [{"average": pytest.approx(5 / 4)}]


def test_a_session_the_organisation_does_not_have_is_not_found(api: TwoOrgs) -> None:
    assert "No session" in failed(_rate(api.a, "sess-b", True), 404)
    assert "No session" in failed(_rate(api.a, "never-seen", True), 404)
    assert "No session" in failed(api.a.post("/v1/session/%00/feedback", json={"rating": True}), 404)
    assert _sessions(api.b)["sess-b"] is None


@pytest.mark.parametrize(("body", "field"), [({}, "rating"), ({"rating": "yes"}, "rating"), ({"rating": 1}, "rating")])
def test_a_rating_must_be_a_boolean(api: TwoOrgs, body: dict[str, Any], field: str) -> None:
    assert field in failed(api.a.post("/v1/session/sess-3/feedback", json=body), 400)
    assert _sessions(api.a)["sess-3"] is None


def test_a_session_needs_a_key(api: TwoOrgs) -> None:
    anonymous = httpx.post(f"{api.a.base_url}/v1/session/sess-3/feedback", json={"rating": True})
    assert failed(anonymous, 401)
