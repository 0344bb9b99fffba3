"""Rows as Helicone returns them (issue 23, item 7), through a live heliport on SQLite and PostgreSQL.

``request_properties`` carries the session and prompt headers under their header names, as Helicone's
sessions cookbook (``seeds/docs/guides__cookbooks__getting-sessions.md``) reads them; ``properties``
stays the stored object. Property filters find a header-sent name in any letter case: headers are
stored lower-case and Helicone's docs filter on ``"Environment"``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from heliport.logs.row import RequestRow
from tests.api.test_http import row
from tests.api.two_orgs import TwoOrgs, failed, ok, serve

WINDOW = {"startTimeUnixMs": 0, "endTimeUnixMs": 4102444800000}


def _rows(org_a: str, org_b: str) -> list[RequestRow]:
    return [
        row(org_a, 0, session_id="s-1", session_path="/trip/plan", session_name="Trip", prompt_id="p-1",
            properties={"environment": "production", "team": "red"}),
        row(org_a, 10, session_id="s-1", properties={"Environment": "staging"}),
        row(org_a, 20, properties={"env": "dev"}),
        row(org_a, 30, properties={"Env-X": "exact", "env-x": "lower", "ENV-x": "upper"}),
        row(org_b, 5, session_id="s-1", session_name="B", properties={"environment": "production"}),
    ]  # fmt: skip


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoOrgs]:
    yield from serve(request.param, tmp_path_factory.mktemp(f"rows-{request.param}"), _rows)


def _ids(api: TwoOrgs, *indexes: int) -> set[str]:
    return {api.rows[i].request_id for i in indexes}


def _found(api: TwoOrgs, filter: Any, client: str = "a") -> set[str]:
    answer = ok(getattr(api, client).post("/v1/request/query", json={"filter": filter}))
    return {r["request_id"] for r in answer}


def test_request_properties_carry_the_session_and_prompt_headers(api: TwoOrgs) -> None:
    by_id = {r["request_id"]: r for r in ok(api.a.post("/v1/request/query", json={"filter": "all"}))}
    first = by_id[api.rows[0].request_id]
    assert first["request_properties"] == {
        "environment": "production",
        "team": "red",
        "Helicone-Session-Id": "s-1",
        "Helicone-Session-Path": "/trip/plan",
        "Helicone-Session-Name": "Trip",
        "Helicone-Prompt-Id": "p-1",
    }
    # properties is the stored object, names as stored.
    assert first["properties"] == {"environment": "production", "team": "red"}
    assert by_id[api.rows[1].request_id]["request_properties"] == {
        "Environment": "staging",
        "Helicone-Session-Id": "s-1",
    }
    assert by_id[api.rows[2].request_id]["request_properties"] == {"env": "dev"}
    one = ok(api.a.get(f"/v1/request/{api.rows[0].request_id}"))
    assert one["request_properties"]["Helicone-Session-Path"] == "/trip/plan"


def test_the_sessions_cookbook_filter_finds_the_sessions_requests(api: TwoOrgs) -> None:
    cookbook = {"properties": {"Helicone-Session-Id": {"equals": "s-1"}}}
    assert _found(api, cookbook) == _ids(api, 0, 1)
    assert _found(api, cookbook, "b") == _ids(api, 4)
    assert _found(api, {"properties": {"Helicone-Prompt-Id": {"equals": "p-1"}}}) == _ids(api, 0)
    assert _found(api, {"properties": {"helicone-session-path": {"like": "/trip/%"}}}) == _ids(api, 0)


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ({"properties": {"Environment": {"equals": "production"}}}, {0}),
        ({"request_response_rmt": {"properties": {"ENVIRONMENT": {"equals": "production"}}}}, {0}),
        # A name stored mixed-case (PUT /v1/request/{id}/property keeps it) is found by that name.
        ({"properties": {"Environment": {"equals": "staging"}}}, {1}),
        ({"properties": {"environment": {"equals": "staging"}}}, set()),
        ({"properties": {"Environment": {"not-equals": "production"}}}, {1, 2, 3}),
        ({"request_response_rmt": {"search_properties": {"Environment": {"contains": "PROD"}}}}, {0}),
        ({"properties": {"TEAM": {"ilike": "r%"}}}, {0}),
        # A property of exactly the given name wins, then the one named the lower-case form.
        ({"properties": {"Env-X": {"equals": "exact"}}}, {3}),
        ({"properties": {"ENV-x": {"equals": "upper"}}}, {3}),
        ({"properties": {"eNV-X": {"equals": "lower"}}}, {3}),
        ({"properties": {"Missing": {"equals": "x"}}}, set()),
    ],
)
def test_property_filters_find_header_names_in_any_case(api: TwoOrgs, filter: Any, expected: set[int]) -> None:
    assert _found(api, filter) == _ids(api, *expected)


def test_such_filters_work_in_aggregates_and_stay_in_the_organisation(api: TwoOrgs) -> None:
    body = {"search": "", "timeFilter": WINDOW, "timezoneDifference": 0,
            "filter": {"properties": {"Environment": {"equals": "production"}}}}  # fmt: skip
    assert [(s["session_id"], s["total_requests"]) for s in ok(api.a.post("/v1/session/query", json=body))] == [
        ("s-1", 1)
    ]
    assert [(s["session_name"], s["total_requests"]) for s in ok(api.b.post("/v1/session/query", json=body))] == [
        ("B", 1)
    ]
    assert _found(api, {"properties": {"Environment": {"equals": "production"}}}, "b") == _ids(api, 4)


def test_a_bad_property_filter_is_still_a_400(api: TwoOrgs) -> None:
    assert "filter.properties.Environment" in failed(
        api.a.post("/v1/request/query", json={"filter": {"properties": {"Environment": {"equals": 1}}}}), 400
    )
