"""The query API (every route of ``heliport.api.app.ENDPOINTS`` and ``/openapi.json``) and the
dashboard's API (``/v1/dashboard/overview``, ``/v1/dashboard/session-tree``), over SQLite and over
PostgreSQL.

Errors are the API's ``{"data": null, "error": "<message>"}``; a request-target that leaves the API's
routes (``//v1/...``, ``*``, ``/v1/feedback/...``) is answered by heliport's top-level router in its
own shape. The ``wire:`` cases never reach a database, so they run once, on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fuzz import corpus
from tests.fuzz.conftest import Fuzzed
from tests.fuzz.wire import Target, api_error, check, client, openai_error, send_case

FAMILIES = (
    ("query", corpus.API_ROUTES, corpus.api_cases()),
    ("dashboard", corpus.DASHBOARD_ROUTES, corpus.dashboard_cases()),
)


def _params(wire: bool) -> list[object]:
    return [
        pytest.param(route, case, id=f"{family}:{route.name}|{case.id}")
        for family, routes, cases in FAMILIES
        for route in routes
        for case in cases[route.name]
        if case.id.startswith("wire:") == wire
    ]


@pytest.fixture(scope="module")
def target(api_heliport: Fuzzed) -> Iterator[Target]:
    with client(api_heliport.url) as http:
        yield Target(api_heliport.url, http, api_heliport.markers())


@pytest.fixture(scope="module")
def sqlite_target(fuzzed: Fuzzed) -> Iterator[Target]:
    with client(fuzzed.url) as http:
        yield Target(fuzzed.url, http, fuzzed.markers())


def _check(target: Target, route: corpus.Route, case: corpus.Case) -> None:
    credential = (b"Authorization", b"Bearer @KEY@")
    reply = send_case(
        target, case, method=route.method, path=route.path, credential=credential, route_headers=route.headers
    )
    shape = openai_error if case.surface == "root" else api_error
    check(reply, shape, case.expect, wire=case.id.startswith("wire:"))


@pytest.mark.parametrize(("route", "case"), _params(wire=False))
def test_malformed_input_is_a_4xx_json_error_never_a_5xx(
    target: Target, route: corpus.Route, case: corpus.Case
) -> None:
    _check(target, route, case)


@pytest.mark.parametrize(("route", "case"), _params(wire=True))
def test_malformed_bytes_on_the_wire_are_a_4xx_never_a_5xx(
    sqlite_target: Target, route: corpus.Route, case: corpus.Case
) -> None:
    _check(sqlite_target, route, case)
