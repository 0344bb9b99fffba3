"""The filter compiler's SQL, run for real on PostgreSQL and SQLite over one hand-built fixture.

Two organisations share the table, interleaved in time, with ORG_B's rows built to match the same
filters as ORG_A's (same models, users, properties), so a filter that escaped the caller's
``org_id = ...`` would show. Every expected set of rows below is worked out by hand from ``_fixture``
and must come out the same on both dialects.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from heliport.api import aggregates as agg
from heliport.api.dialect import POSTGRES, SQLITE, Params
from heliport.api.endpoint import parse_body
from heliport.api.filters import (
    MAX_CONDITIONS,
    MAX_DEPTH,
    FilterError,
    compile_aggregate_filter,
    compile_having,
    compile_request_filter,
    compile_request_sort,
    split_filter,
)
from heliport.api.schemas import SessionQueryBody, UserMetricsBody
from heliport.errors import RequestError
from heliport.logs.row import RequestRow
from tests.api.databases import Db, postgres_with, sqlite_with
from tests.api.test_aggregates import make_row

pytestmark = pytest.mark.anyio

ORG_A = "org-a-" + uuid.uuid4().hex[:8]
ORG_B = "org-b-" + uuid.uuid4().hex[:8]
T0 = datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC)
EVIL_KEY = "a'b\"c; DROP TABLE requests;--"
DROP_KEY = "'); DROP TABLE requests;--"
QUOTE_KEY = 'k"q'

#: Readable labels for the fixture's request ids.
ID: dict[str, str] = {
    label: f"{label.lower()}000000-0000-4000-8000-0000000000{n:02d}"
    for n, label in enumerate(("A1", "A2", "A3", "A4", "A5", "B1", "B2", "B3"), start=1)
}
LABEL = {value: key for key, value in ID.items()}
ALL_A = {"A1", "A2", "A3", "A4", "A5"}
ROWS = 8


def at(delta: timedelta = timedelta()) -> str:
    return (T0 + delta).isoformat().replace("+00:00", "Z")


def _fixture() -> list[RequestRow]:
    """In time (and insertion) order A1 B1 A2 B2 A3 A4 B3 A5; the fields each test relies on are set."""
    a, b = ORG_A, ORG_B
    return [
        make_row(a, T0, request_id=ID["A1"], model="gpt-4o", request_model="gpt-4o",
                 response_model="gpt-4o-2024-08-06", user_id="u1", delay_ms=100.0, time_to_first_token=50.0,
                 prompt_tokens=10, completion_tokens=5, total_tokens=15, prompt_cache_read_tokens=2,
                 prompt_cache_write_tokens=0, cost=0.5, properties={"env": "prod", "team": "red"},
                 scores={"accuracy": 0.9}, request_preview="Hello World", response_preview="Hi there, 100% sure",
                 response_created_at=T0 + timedelta(seconds=1), prompt_id="p1", feedback_rating=True,
                 feedback_created_at=T0 + timedelta(hours=1), session_id="s1", session_name="Chat"),
        make_row(b, T0 + timedelta(minutes=5), request_id=ID["B1"], model="gpt-4o", user_id="u1", cost=100.0,
                 delay_ms=100.0, properties={"env": "prod", "team": "red"}, scores={"accuracy": 0.95},
                 session_id="s1", feedback_rating=True, request_preview="Hello World"),
        make_row(a, T0 + timedelta(minutes=10), request_id=ID["A2"], model="claude-3-5-sonnet",
                 provider="ANTHROPIC", target_url="https://api.anthropic.com/v1/messages", path="/v1/messages",
                 response_model="claude-3-5-sonnet-20241022", model_override="claude-override", user_id="u2",
                 status=429, delay_ms=250.0, prompt_tokens=20, completion_tokens=30, total_tokens=50,
                 prompt_cache_read_tokens=0, prompt_cache_write_tokens=8, cost=1.25,
                 properties={"env": "dev", EVIL_KEY: "v"}, scores={"accuracy": 0.4, "passed": 1.0},
                 request_preview="hello world", response_preview="50_percent", cache_hit=True,
                 cache_reference_id=ID["A1"], feedback_rating=False, feedback_created_at=T0 + timedelta(hours=2),
                 session_id="s1"),
        make_row(b, T0 + timedelta(minutes=30), request_id=ID["B2"], model="claude-3-5-sonnet", user_id="u2",
                 status=429, cache_hit=True, properties={"env": "dev"}, provider="ANTHROPIC"),
        make_row(a, T0 + timedelta(hours=1), request_id=ID["A3"], model="gpt-4o-mini", status=500,
                 delay_ms=1000.0, session_id="s2"),
        make_row(a, T0 + timedelta(days=1), request_id=ID["A4"], model="GPT-4O", user_id="u1", delay_ms=50.5,
                 time_to_first_token=20.0, prompt_tokens=5, completion_tokens=5, total_tokens=10, cost=0.0001,
                 properties={"env": "PROD", "a%b": "pct", "a_b": "under"}, prompt_id="p2",
                 response_created_at=T0 + timedelta(days=1, seconds=2), session_id="s2",
                 request_preview="Tell me about 50% of *stars*", response_preview="[citation] answer"),
        make_row(b, T0 + timedelta(days=1, minutes=1), request_id=ID["B3"], model="gpt-4o", user_id="u1",
                 session_id="s1", cost=5.0, properties={"a_b": "under"}),
        make_row(a, T0 + timedelta(days=2), request_id=ID["A5"], model="gpt-4o", user_id="o'brien", delay_ms=10.0,
                 prompt_tokens=60, completion_tokens=40, total_tokens=100, cost=2.0,
                 properties={QUOTE_KEY: "dq", DROP_KEY: "evil"}, request_preview="x' OR '1'='1",
                 path="/v1/responses"),
    ]  # fmt: skip


# --- databases -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Db]:
    async with sqlite_with(tmp_path_factory.mktemp("filters") / "logs.sqlite3", _fixture()) as db:
        yield db


@pytest.fixture(scope="module")
async def pg_db() -> AsyncIterator[Db]:
    async with postgres_with(_fixture()) as db:
        yield db


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest) -> Db:
    chosen: Db = request.getfixturevalue("sqlite_db" if request.param == "sqlite" else "pg_db")
    return chosen


def _labels(rows: list[dict[str, Any]]) -> list[str]:
    return [LABEL[str(row["request_id"])] for row in rows]


async def select(db: Db, node: object, *, org: str | None = ORG_A) -> set[str]:
    """The labels of the rows ``node`` selects, scoped as the API scopes it (org first, then the filter)."""
    params = Params(db.dialect)
    conditions = [f"org_id = {params.add(org)}"] if org is not None else []
    conditions.append(f"({compile_request_filter(node, params)})")
    rows = await db.fetch(f"SELECT request_id FROM requests WHERE {' AND '.join(conditions)}", params.values)
    return set(_labels(rows))


async def ordered(db: Db, sort: object) -> list[str]:
    params = Params(db.dialect)
    org = params.add(ORG_A)
    order = compile_request_sort(sort, params)
    return _labels(
        await db.fetch(f"SELECT request_id FROM requests WHERE org_id = {org} ORDER BY {order}", params.values)
    )


def rmt(field: str, ops: object) -> dict[str, object]:
    return {"request_response_rmt": {field: ops}}


def branch(left: object, op: str, right: object) -> dict[str, object]:
    return {"left": left, "operator": op, "right": right}


# --- every field and operator ----------------------------------------------------------------------

CASES: list[tuple[str, object, set[str]]] = [
    # numbers
    ("latency gte", rmt("latency", {"gte": 100}), {"A1", "A2", "A3"}),
    ("latency lt", rmt("latency", {"lt": 50.5}), {"A5"}),
    ("latency equals a fraction", rmt("latency", {"equals": 50.5}), {"A4"}),
    ("latency not-equals", rmt("latency", {"not-equals": 100}), {"A2", "A3", "A4", "A5"}),
    ("latency lte numeric string", rmt("latency", {"lte": "100"}), {"A1", "A4", "A5"}),
    ("latency gt", rmt("latency", {"gt": 250}), {"A3"}),
    ("cost gt", rmt("cost", {"gt": 1}), {"A2", "A5"}),
    ("cost equals exact decimal", rmt("cost", {"equals": 0.0001}), {"A4"}),
    ("cost lte", rmt("cost", {"lte": 0.5}), {"A1", "A4"}),
    ("cost not-equals keeps unpriced", rmt("cost", {"not-equals": 0.5}), {"A2", "A3", "A4", "A5"}),
    ("time_to_first_token gte", rmt("time_to_first_token", {"gte": 20}), {"A1", "A4"}),
    ("time_to_first_token lt", rmt("time_to_first_token", {"lt": 30}), {"A4"}),
    ("status equals", rmt("status", {"equals": 200}), {"A1", "A4", "A5"}),
    ("status gte", rmt("status", {"gte": 400}), {"A2", "A3"}),
    ("status not-equals", rmt("status", {"not-equals": 200}), {"A2", "A3"}),
    ("prompt_tokens gt", rmt("prompt_tokens", {"gt": 10}), {"A2", "A5"}),
    ("completion_tokens equals", rmt("completion_tokens", {"equals": 5}), {"A1", "A4"}),
    ("prompt_cache_read_tokens gte", rmt("prompt_cache_read_tokens", {"gte": 1}), {"A1"}),
    ("prompt_cache_write_tokens gt", rmt("prompt_cache_write_tokens", {"gt": 0}), {"A2"}),
    ("total_tokens lte", rmt("total_tokens", {"lte": 15}), {"A1", "A4"}),
    ("a float against an integer column", rmt("prompt_tokens", {"lt": 10.5}), {"A1", "A4"}),
    # timestamps
    ("created_at gte", rmt("request_created_at", {"gte": at(timedelta(hours=1))}), {"A3", "A4", "A5"}),
    ("created_at lt", rmt("request_created_at", {"lt": at(timedelta(minutes=10))}), {"A1"}),
    ("created_at equals across an offset", rmt("request_created_at", {"equals": "2026-03-10T13:00:00+01:00"}), {"A1"}),
    ("created_at gt", rmt("request_created_at", {"gt": at(timedelta(minutes=10))}), {"A3", "A4", "A5"}),
    ("created_at lte naive is UTC", rmt("request_created_at", {"lte": "2026-03-10T12:10:00"}), {"A1", "A2"}),
    ("created_at with milliseconds", rmt("request_created_at", {"gt": "2026-03-10T12:00:00.001Z"}),
     {"A2", "A3", "A4", "A5"}),
    ("response_created_at gt", rmt("response_created_at", {"gt": at()}), {"A1", "A4"}),
    # text
    ("model equals", rmt("model", {"equals": "gpt-4o"}), {"A1", "A5"}),
    ("model not-equals", rmt("model", {"not-equals": "gpt-4o"}), {"A2", "A3", "A4"}),
    ("model like is case-sensitive", rmt("model", {"like": "gpt%"}), {"A1", "A3", "A5"}),
    ("model like underscore", rmt("model", {"like": "gpt_4o"}), {"A1", "A5"}),
    ("model like suffix", rmt("model", {"like": "%-mini"}), {"A3"}),
    ("model like escaped underscore", rmt("model", {"like": "gpt\\_4o"}), set()),
    ("model ilike", rmt("model", {"ilike": "gpt-4o%"}), {"A1", "A3", "A4", "A5"}),
    ("model contains is case-sensitive", rmt("model", {"contains": "4o"}), {"A1", "A3", "A5"}),
    ("model contains upper", rmt("model", {"contains": "GPT"}), {"A4"}),
    ("model not-contains", rmt("model", {"not-contains": "gpt"}), {"A2", "A4"}),
    ("provider equals", rmt("provider", {"equals": "ANTHROPIC"}), {"A2"}),
    ("provider not-equals", rmt("provider", {"not-equals": "OPENAI"}), {"A2"}),
    ("provider ilike", rmt("provider", {"ilike": "anthropic"}), {"A2"}),
    ("user_id equals", rmt("user_id", {"equals": "u1"}), {"A1", "A4"}),
    ("user_id not-equals keeps rows without a user", rmt("user_id", {"not-equals": "u1"}), {"A2", "A3", "A5"}),
    ("user_id with a quote", rmt("user_id", {"equals": "o'brien"}), {"A5"}),
    ("user_id contains a quote", rmt("user_id", {"contains": "'"}), {"A5"}),
    ("user_id not-contains keeps rows without a user", rmt("user_id", {"not-contains": "u"}), {"A3", "A5"}),
    ("request_id equals", rmt("request_id", {"equals": ID["A2"]}), {"A2"}),
    ("request_id equals in upper case", rmt("request_id", {"equals": ID["A2"].upper()}), {"A2"}),
    ("request_id not-equals", rmt("request_id", {"not-equals": ID["A1"]}), {"A2", "A3", "A4", "A5"}),
    ("request_id like", rmt("request_id", {"like": "a1%"}), {"A1"}),
    ("request_id contains", rmt("request_id", {"contains": "000000000004"}), {"A4"}),
    ("request_id equals a non-uuid", rmt("request_id", {"equals": "not-a-uuid"}), set()),
    ("request_id not-equals a non-uuid", rmt("request_id", {"not-equals": "x"}), ALL_A),
    ("target_url contains", rmt("target_url", {"contains": "anthropic"}), {"A2"}),
    ("request_body equals quotes", rmt("request_body", {"equals": "x' OR '1'='1"}), {"A5"}),
    ("request_body contains a literal %", rmt("request_body", {"contains": "%"}), {"A4"}),
    ("request_body contains 50%", rmt("request_body", {"contains": "50%"}), {"A4"}),
    ("request_body like with a literal *", rmt("request_body", {"like": "%*stars*"}), {"A4"}),
    ("request_body like is case-sensitive", rmt("request_body", {"like": "hello%"}), {"A2"}),
    ("request_body ilike", rmt("request_body", {"ilike": "hello%"}), {"A1", "A2"}),
    ("response_body contains 100%", rmt("response_body", {"contains": "100%"}), {"A1"}),
    ("response_body contains a literal _", rmt("response_body", {"contains": "_"}), {"A2"}),
    ("response_body contains 0_p", rmt("response_body", {"contains": "0_p"}), {"A2"}),
    ("response_body like with brackets", rmt("response_body", {"like": "[citation]%"}), {"A4"}),
    ("response_body like with a literal %", rmt("response_body", {"like": "%100\\%%"}), {"A1"}),
    ("cache_reference_id", rmt("cache_reference_id", {"equals": ID["A1"]}), {"A2"}),
    ("prompt_id equals", rmt("prompt_id", {"equals": "p1"}), {"A1"}),
    ("prompt_id contains", rmt("prompt_id", {"contains": "p"}), {"A1", "A4"}),
    # booleans
    ("cache_enabled true", rmt("cache_enabled", {"equals": True}), {"A2"}),
    ("cached false", rmt("cached", {"equals": False}), {"A1", "A3", "A4", "A5"}),
    ("score feedback true", rmt("helicone-score-feedback", {"equals": True}), {"A1"}),
    ("score feedback false", rmt("helicone-score-feedback", {"equals": False}), {"A2"}),
    # properties
    ("property equals", rmt("properties", {"env": {"equals": "prod"}}), {"A1"}),
    ("property not-equals keeps rows without it", rmt("properties", {"env": {"not-equals": "prod"}}),
     {"A2", "A3", "A4", "A5"}),
    ("property ilike", rmt("properties", {"env": {"ilike": "prod"}}), {"A1", "A4"}),
    ("property like", rmt("properties", {"env": {"like": "pro%"}}), {"A1"}),
    ("property contains", rmt("properties", {"env": {"contains": "ro"}}), {"A1"}),
    ("property not-contains", rmt("properties", {"env": {"not-contains": "ro"}}), {"A2", "A3", "A4", "A5"}),
    ("property named with _", rmt("properties", {"a_b": {"equals": "under"}}), {"A4"}),
    ("property named with %", rmt("properties", {"a%b": {"equals": "pct"}}), {"A4"}),
    ("property named % is not a wildcard", rmt("properties", {"%": {"contains": ""}}), set()),
    ("property named _ is not a wildcard", rmt("properties", {"_": {"equals": "under"}}), set()),
    ("property with quotes in its name", rmt("properties", {EVIL_KEY: {"equals": "v"}}), {"A2"}),
    ("property named like an injection", rmt("properties", {DROP_KEY: {"equals": "evil"}}), {"A5"}),
    ("property with a double quote", rmt("properties", {QUOTE_KEY: {"equals": "dq"}}), {"A5"}),
    ("property value like an injection", rmt("properties", {"env": {"equals": "prod' OR '1'='1"}}), set()),
    ("legacy properties table", {"properties": {"env": {"equals": "dev"}}}, {"A2"}),
    ("search_properties equals ignores case", rmt("search_properties", {"env": {"equals": "prod"}}), {"A1", "A4"}),
    ("search_properties contains", rmt("search_properties", {"env": {"contains": "RO"}}), {"A1", "A4"}),
    ("search_properties not-equals", rmt("search_properties", {"env": {"not-equals": "prod"}}), {"A2", "A3", "A5"}),
    ("search_properties like", rmt("search_properties", {"env": {"like": "p%"}}), {"A1", "A4"}),
    ("search_properties literal _", rmt("search_properties", {"a_b": {"equals": "und_r"}}), set()),
    ("property_key", rmt("property_key", {"equals": "team"}), {"A1"}),
    ("property_key with %", rmt("property_key", {"equals": "a%b"}), {"A4"}),
    ("property_key % is not a wildcard", rmt("property_key", {"equals": "%"}), set()),
    ("property_key like an injection", rmt("property_key", {"equals": DROP_KEY}), {"A5"}),
    # scores
    ("score gte", rmt("scores", {"accuracy": {"gte": 0.5}}), {"A1"}),
    ("score lt as a string", rmt("scores", {"accuracy": {"lt": "0.5"}}), {"A2"}),
    ("score not-equals keeps unscored", rmt("scores", {"accuracy": {"not-equals": 0.9}}), {"A2", "A3", "A4", "A5"}),
    ("boolean score", rmt("scores", {"passed": {"equals": True}}), {"A2"}),
    # legacy request / response / feedback
    ("request.prompt", {"request": {"prompt": {"contains": "World"}}}, {"A1"}),
    ("request.created_at", {"request": {"created_at": {"gte": at(timedelta(days=1))}}}, {"A4", "A5"}),
    ("request.user_id", {"request": {"user_id": {"equals": "u2"}}}, {"A2"}),
    ("request.id", {"request": {"id": {"equals": ID["A3"]}}}, {"A3"}),
    ("request.model", {"request": {"model": {"equals": "GPT-4O"}}}, {"A4"}),
    ("request.modelOverride", {"request": {"modelOverride": {"equals": "claude-override"}}}, {"A2"}),
    ("request.path", {"request": {"path": {"equals": "/v1/messages"}}}, {"A2"}),
    ("request.prompt_id", {"request": {"prompt_id": {"equals": "p2"}}}, {"A4"}),
    ("response.body_tokens", {"response": {"body_tokens": {"gte": 30}}}, {"A2", "A5"}),
    ("response.body_model", {"response": {"body_model": {"equals": "gpt-4o-2024-08-06"}}}, {"A1"}),
    ("response.model", {"response": {"model": {"contains": "claude"}}}, {"A2"}),
    ("response.body_completion", {"response": {"body_completion": {"contains": "answer"}}}, {"A4"}),
    ("response.status", {"response": {"status": {"equals": 500}}}, {"A3"}),
    ("feedback.rating", {"feedback": {"rating": {"equals": True}}}, {"A1"}),
    ("feedback.created_at", {"feedback": {"created_at": {"gte": at(timedelta(hours=2))}}}, {"A2"}),
    # shapes
    ("all", "all", ALL_A),
    ("empty object", {}, ALL_A),
    ("empty table and field objects", {"request": {}, "response": {"status": {}}}, ALL_A),
    ("branch of alls", branch("all", "and", {}), ALL_A),
    ("or", branch(rmt("user_id", {"equals": "u1"}), "or", rmt("status", {"equals": 500})), {"A1", "A3", "A4"}),
    ("and", branch(rmt("model", {"equals": "gpt-4o"}), "and", {"request": {"user_id": {"equals": "u1"}}}), {"A1"}),
    ("nested", branch(branch(rmt("properties", {"env": {"equals": "prod"}}), "or",
                             rmt("properties", {"env": {"equals": "dev"}})),
                      "and", rmt("status", {"not-equals": 429})), {"A1"}),
    ("or of ands", branch(branch(rmt("user_id", {"equals": "u1"}), "and", rmt("latency", {"lt": 60})), "or",
                          branch(rmt("user_id", {"equals": "u2"}), "and", rmt("status", {"equals": 429}))),
     {"A2", "A4"}),
    ("several fields in a leaf", {"request_response_rmt": {"model": {"equals": "gpt-4o"}, "user_id": {"equals": "u1"}}},
     {"A1"}),
    ("several operators in a field", rmt("latency", {"gte": 50, "lte": 250}), {"A1", "A2", "A4"}),
    ("several tables in a leaf", {"request": {"user_id": {"equals": "u1"}}, "response": {"status": {"equals": 200}}},
     {"A1", "A4"}),
]  # fmt: skip


@pytest.mark.parametrize(("node", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_each_field_and_operator_selects_the_right_rows(db: Db, node: object, expected: set[str]) -> None:
    assert await select(db, node) == expected


async def test_the_fixture_really_has_matching_rows_in_the_other_org(db: Db) -> None:
    # Without the caller's org condition the same filters reach ORG_B: the isolation below is real.
    assert await select(db, rmt("properties", {"env": {"equals": "prod"}}), org=None) == {"A1", "B1"}
    assert await select(db, rmt("properties", {"env": {"equals": "prod"}}), org=ORG_B) == {"B1"}


async def test_an_or_cannot_widen_past_the_callers_org(db: Db) -> None:
    wide = branch(rmt("cost", {"gte": 100}), "or", rmt("user_id", {"equals": "u2"}))
    assert await select(db, wide, org=None) == {"A2", "B1", "B2"}
    assert await select(db, wide) == {"A2"}
    assert await select(db, branch("all", "or", rmt("user_id", {"equals": "u1"}))) == ALL_A
    # Even written without parentheses around it, the fragment binds as one term.
    params = Params(db.dialect)
    org = params.add(ORG_A)
    sql = f"SELECT request_id FROM requests WHERE org_id = {org} AND {compile_request_filter(wide, params)}"
    assert set(_labels(await db.fetch(sql, params.values))) == {"A2"}


@pytest.mark.parametrize(
    "node",
    [
        {"request": {"org_id": {"equals": "anything"}}},
        rmt("organization_id", {"equals": "anything"}),
        branch(rmt("organization_id", {"not-equals": "x"}), "or", "all"),
    ],
)
def test_organisation_fields_are_refused(node: object) -> None:
    with pytest.raises(FilterError, match="organisation"):
        compile_request_filter(node, Params(SQLITE))


# --- injection ---------------------------------------------------------------------------------------

INJECTIONS: list[object] = [
    rmt("model; DROP TABLE requests;--", {"equals": "x"}),
    rmt("model", {"= 'x' OR 1=1 --": "x"}),
    {"requests; DROP TABLE requests;--": {"model": {"equals": "x"}}},
    branch(rmt("model", {"equals": "x"}), "or 1=1 --", "all"),
    rmt("latency", {"gte": "1; DROP TABLE requests"}),
    rmt("request_created_at", {"gte": "2026-01-01'; DROP TABLE requests;--"}),
    rmt("properties", {"env": {"equals); DROP TABLE requests;--": "x"}}),
]


@pytest.mark.parametrize("node", INJECTIONS)
async def test_injection_through_names_is_a_filter_error(db: Db, node: object) -> None:
    with pytest.raises(FilterError):
        await select(db, node)
    assert await db.count() == ROWS


HARMLESS: list[tuple[object, set[str]]] = [
    (rmt("model", {"equals": "x' OR '1'='1"}), set()),
    (rmt("model", {"like": "%' OR '1'='1"}), set()),
    (rmt("model", {"contains": "'); DROP TABLE requests;--"}), set()),
    (rmt("model", {"not-contains": "'); DROP TABLE requests;--"}), ALL_A),
    (rmt("properties", {DROP_KEY: {"not-equals": "evil"}}), {"A1", "A2", "A3", "A4"}),
    (rmt("search_properties", {DROP_KEY: {"contains": "VI"}}), {"A5"}),
    (rmt("properties", {"env') OR 1=1 --": {"equals": "prod"}}), set()),
    (rmt("scores", {"accuracy' OR 1=1 --": {"gte": 0}}), set()),
    (rmt("request_body", {"equals": "x' OR '1'='1"}), {"A5"}),
]


@pytest.mark.parametrize(("node", "expected"), HARMLESS)
async def test_injection_through_values_is_a_literal(db: Db, node: object, expected: set[str]) -> None:
    assert await select(db, node) == expected
    assert await db.count() == ROWS


def test_names_and_values_never_reach_the_sql_text() -> None:
    for dialect in (POSTGRES, SQLITE):
        params = Params(dialect)
        node = branch(rmt("properties", {DROP_KEY: {"equals": "x' OR 1=1"}}), "or",
                      rmt("scores", {EVIL_KEY: {"gte": 1}}))  # fmt: skip
        sql = compile_request_filter(node, params)
        order = compile_request_sort({"properties": {DROP_KEY: "asc"}}, params)
        for text in (sql, order):
            assert "DROP" not in text and "x'" not in text and EVIL_KEY not in text
        # A property name is bound once or more (any-case lookup), then its value; the sort binds the name.
        assert params.values[0] == DROP_KEY and "x' OR 1=1" in params.values and params.values[-1] == DROP_KEY
        if dialect is SQLITE:
            assert (sql + order).count("?") == len(params.values)


# --- errors ------------------------------------------------------------------------------------------

ERRORS: list[tuple[object, str]] = [
    (rmt("foo", {"equals": "x"}), "filter.request_response_rmt.foo: unknown field 'foo'"),
    (branch(rmt("foo", {}), "and", "all"), "filter.left.request_response_rmt.foo: unknown field"),
    (branch("all", "or", {"nope": {}}), "filter.right.nope: unknown table 'nope'"),
    (rmt("model", {"startswith": "x"}), "filter.request_response_rmt.model.startswith: unknown operator"),
    (rmt("latency", {"contains": "1"}), "filter.request_response_rmt.latency.contains: unknown operator"),
    (rmt("request_created_at", {"not-equals": at()}), "request_created_at.not-equals: unknown operator"),
    (rmt("latency", {"gte": "fast"}), "filter.request_response_rmt.latency.gte: must be a number"),
    (rmt("latency", {"gte": True}), "filter.request_response_rmt.latency.gte: must be a number"),
    (rmt("latency", {"gte": None}), "latency.gte: must be a number"),
    (rmt("cost", {"lt": "NaN"}), "cost.lt: must be a finite number"),
    (rmt("cost", {"lt": 1e400}), "cost.lt: must be a finite number"),
    (rmt("model", {"equals": 4}), "filter.request_response_rmt.model.equals: must be a string"),
    (rmt("cached", {"equals": "true"}), "filter.request_response_rmt.cached.equals: must be true or false"),
    (rmt("request_created_at", {"gte": "yesterday"}), "request_created_at.gte: not an ISO-8601 timestamp: 'yesterday'"),
    (rmt("request_created_at", {"gte": 1700000000}), "request_created_at.gte: must be an ISO-8601 timestamp"),
    ({"feedback": {"created_at": {"lt": "2026-13-01"}}}, "filter.feedback.created_at.lt: not an ISO-8601"),
    (rmt("model", {"like": "abc\\"}), "model.like: a pattern cannot end with the escape character"),
    (rmt("properties", {"env": "prod"}), "filter.request_response_rmt.properties.env: must be an object"),
    (rmt("properties", {"env": {"gte": 1}}), "properties.env.gte: unknown operator"),
    (rmt("scores", {"accuracy": {"gte": "high"}}), "scores.accuracy.gte: must be a number"),
    (rmt("property_key", {"contains": "x"}), "property_key.contains: unknown operator"),
    (rmt("property_key", {"equals": 1}), "property_key.equals: must be a string"),
    (rmt("country_code", {"equals": "US"}), "country_code: is not recorded by heliport"),
    (rmt("threat", {"equals": False}), "threat: is not recorded by heliport"),
    (rmt("is_passthrough_billing", {"equals": False}), "is_passthrough_billing: is not recorded"),
    ({"request": {"auth_hash": {"equals": "x"}}}, "filter.request.auth_hash: is not recorded"),
    ({"values": {"name": {"equals": "x"}}}, "filter.values: prompt input values are not recorded"),
    ({"sessions_request_response_rmt": {"session_total_cost": {"gt": 1}}}, "not supported by this endpoint"),
    ({"users_view": {"user_total_requests": {"gt": 1}}}, "filter.users_view: users_view filters are not supported"),
    ({"left": "all", "operator": "xor", "right": "all"}, "filter.operator: must be \"and\" or \"or\""),
    ({"left": "all", "operator": "and"}, "filter.right: is required in a branch"),
    ({"left": "all", "operator": "and", "right": "all", "request": {}}, "filter.request: a branch has only"),
    ("everything", 'filter: must be a filter object or "all"'),
    (["all"], 'filter: must be a filter object or "all"'),
    (None, "filter: is required"),
    (rmt("model", ["equals", "x"]), "filter.request_response_rmt.model: must be an object of operator"),
]  # fmt: skip


@pytest.mark.parametrize(("node", "message"), ERRORS)
def test_bad_filters_are_a_400_naming_the_path(node: object, message: str) -> None:
    with pytest.raises(FilterError) as caught:
        compile_request_filter(node, Params(POSTGRES))
    error = caught.value
    assert message in error.message
    assert isinstance(error, RequestError) and error.status == 400
    assert error.param is not None and error.message.startswith(error.param + ":")


def test_a_bad_filter_binds_nothing() -> None:
    params = Params(SQLITE)
    with pytest.raises(FilterError):
        compile_request_filter(branch(rmt("model", {"equals": "x"}), "and", rmt("latency", {"gt": "x"})), params)
    assert params.values == []


def test_depth_and_size_are_capped() -> None:
    deep: object = rmt("model", {"equals": "x"})
    for _ in range(MAX_DEPTH):
        deep = branch(deep, "and", "all")
    compile_request_filter(deep, Params(SQLITE))  # exactly at the cap
    with pytest.raises(FilterError, match="nest at most"):
        compile_request_filter(branch(deep, "and", "all"), Params(SQLITE))
    wide = {"request_response_rmt": {"properties": {f"k{i}": {"equals": "v"} for i in range(MAX_CONDITIONS + 1)}}}
    with pytest.raises(FilterError, match=f"at most {MAX_CONDITIONS} conditions"):
        compile_request_filter(wide, Params(SQLITE))


def test_the_error_body_names_the_field() -> None:
    with pytest.raises(FilterError) as caught:
        compile_request_filter(branch("all", "and", rmt("foo", {"equals": 1})), Params(SQLITE))
    body = caught.value.body().decode()
    assert '"param":"filter.right.request_response_rmt.foo"' in body and "unknown field" in body


# --- sort --------------------------------------------------------------------------------------------

SORTS: list[tuple[object, list[str]]] = [
    (None, ["A5", "A4", "A3", "A2", "A1"]),
    ({}, ["A5", "A4", "A3", "A2", "A1"]),
    ({"created_at": "asc"}, ["A1", "A2", "A3", "A4", "A5"]),
    ({"latency": "asc"}, ["A5", "A4", "A1", "A2", "A3"]),
    ({"cost": "desc"}, ["A5", "A2", "A1", "A4", "A3"]),
    ({"user_id": "asc"}, ["A5", "A1", "A4", "A2", "A3"]),
    ({"body_model": "asc"}, ["A4", "A2", "A1", "A5", "A3"]),
    ({"properties": {"env": "asc"}}, ["A4", "A2", "A1", "A3", "A5"]),
    ({"total_tokens": "desc"}, ["A5", "A2", "A1", "A4", "A3"]),
    ({"prompt_tokens": "ASC"}, ["A4", "A1", "A2", "A5", "A3"]),
    ({"completion_tokens": "desc"}, ["A5", "A2", "A4", "A1", "A3"]),  # A1/A4 tie: request_id DESC
    ({"is_cached": "desc", "created_at": "asc"}, ["A2", "A1", "A3", "A4", "A5"]),
    ({"time_to_first_token": "asc"}, ["A4", "A1", "A2", "A3", "A5"]),
    ({"request_prompt": "asc"}, ["A1", "A4", "A2", "A5", "A3"]),
    ({"response_text": "desc"}, ["A4", "A1", "A2", "A5", "A3"]),  # byte order: [ > H > 5
    ({"properties": {DROP_KEY: "desc"}}, ["A5", "A4", "A3", "A2", "A1"]),
]


@pytest.mark.parametrize(("sort", "expected"), SORTS)
async def test_sort_orders_the_rows(db: Db, sort: object, expected: list[str]) -> None:
    assert await ordered(db, sort) == expected


async def test_random_sort_returns_every_row(db: Db) -> None:
    got = await ordered(db, {"random": True})
    assert sorted(got) == sorted(ALL_A)


@pytest.mark.parametrize(
    ("sort", "path"),
    [
        ({"foo": "asc"}, "sort.foo"),
        ({"created_at": "up"}, "sort.created_at"),
        ({"random": False}, "sort.random"),
        ({"properties": {"env": "sideways"}}, "sort.properties.env"),
        ({"properties": "env"}, "sort.properties"),
        ({"last_active": "asc"}, "sort.last_active"),
        ({"created_at DESC; DROP TABLE requests;--": "asc"}, "sort.created_at DESC; DROP TABLE requests;--"),
        ("created_at", "sort"),
    ],
)
def test_bad_sorts_are_a_400_naming_the_key(sort: object, path: str) -> None:
    with pytest.raises(FilterError) as caught:
        compile_request_sort(sort, Params(POSTGRES))
    assert caught.value.param == path


def test_request_id_always_breaks_ties() -> None:
    assert compile_request_sort(None, Params(POSTGRES)) == "created_at DESC, request_id DESC"
    assert compile_request_sort({"user_id": "asc"}, Params(SQLITE)).endswith(", request_id ASC")


# --- sessions and users: the aggregate part ----------------------------------------------------------


def _session_body(node: object) -> dict[str, Any]:
    window = {"startTimeUnixMs": int((T0 - timedelta(days=1)).timestamp() * 1000),
              "endTimeUnixMs": int((T0 + timedelta(days=30)).timestamp() * 1000)}  # fmt: skip
    return {"search": "", "timeFilter": window, "timezoneDifference": 0, "filter": node}


async def sessions(db: Db, node: object) -> list[str]:
    params = Params(db.dialect)
    where, having = compile_aggregate_filter(node, params, "session")
    body = parse_body(SessionQueryBody, _session_body(node))
    sql = agg.session_query(ORG_A, body, params, where, having=having)
    return [s["session_id"] for s in agg.to_session_query_result(await db.fetch(sql, params.values))]


async def users(db: Db, node: object) -> list[str]:
    params = Params(db.dialect)
    where, having = compile_aggregate_filter(node, params, "user")
    body = parse_body(UserMetricsBody, {"filter": node, "offset": 0, "limit": 10, "sort": {"user_id": "asc"}})
    sql = agg.user_metrics_query(ORG_A, body, params, where, having=having)
    return [u["user_id"] for u in agg.to_user_metrics_result(await db.fetch(sql, params.values))["users"]]


def session(field: str, ops: object) -> dict[str, object]:
    return {"sessions_request_response_rmt": {field: ops}}


def user(field: str, ops: object) -> dict[str, object]:
    return {"users_view": {field: ops}}


SESSION_CASES: list[tuple[object, list[str]]] = [
    ("all", ["s2", "s1"]),
    (session("session_total_cost", {"gt": 1}), ["s1"]),  # s1: 0.5 + 1.25; s2: 0.0001
    (session("session_total_requests", {"equals": 2}), ["s2", "s1"]),
    (session("session_session_name", {"equals": "Chat"}), ["s1"]),
    (session("session_session_id", {"like": "s%"}), ["s2", "s1"]),
    (session("session_created_at", {"gte": at(timedelta(minutes=30))}), ["s2"]),
    (session("session_latest_request_created_at", {"lt": at(timedelta(hours=1))}), ["s1"]),
    (session("session_total_tokens", {"gte": 60}), ["s1"]),  # s1: 15 + 50 (prompt + completion)
    (session("session_prompt_tokens", {"lte": 5}), ["s2"]),
    (session("session_completion_tokens", {"gt": 30}), ["s1"]),
    # The request part narrows the requests first: s1 keeps A1 (0.5), s2 keeps A3 (no cost).
    (branch(rmt("model", {"contains": "gpt"}), "and", session("session_total_cost", {"gt": 0.1})), ["s1"]),
    (branch(rmt("model", {"contains": "gpt"}), "and", session("session_total_cost", {"gt": 1})), []),
    (branch(session("session_total_cost", {"gt": 1}), "or", session("session_created_at", {"gt": at()})),
     ["s2", "s1"]),
    (branch(branch(session("session_total_requests", {"gte": 1}), "and", rmt("user_id", {"equals": "u1"})), "and",
            session("session_prompt_tokens", {"equals": 5})), ["s2"]),
]  # fmt: skip


@pytest.mark.parametrize(("node", "expected"), SESSION_CASES)
async def test_session_leaves_filter_the_aggregated_sessions(db: Db, node: object, expected: list[str]) -> None:
    assert await sessions(db, node) == expected


USER_CASES: list[tuple[object, list[str]]] = [
    ("all", ["o'brien", "u1", "u2"]),
    (user("user_total_requests", {"gte": 2}), ["u1"]),
    (user("user_last_active", {"gte": at(timedelta(days=1))}), ["o'brien", "u1"]),
    (user("user_first_active", {"lt": at(timedelta(minutes=5))}), ["u1"]),
    (user("user_user_id", {"contains": "'"}), ["o'brien"]),
    (user("user_cost", {"gt": 1}), ["o'brien", "u2"]),
    (user("user_total_prompt_tokens", {"equals": 15}), ["u1"]),
    (user("user_total_completion_tokens", {"gt": 30}), ["o'brien"]),
    (user("user_active_for", {"equals": 2}), ["u1"]),
    (user("user_average_tokens_per_request", {"equals": 12.5}), ["u1"]),
    (user("user_average_requests_per_day_active", {"gt": 0.5}), ["o'brien", "u1", "u2"]),
    (branch(rmt("status", {"equals": 200}), "and", user("user_total_requests", {"equals": 1})), ["o'brien"]),
]


@pytest.mark.parametrize(("node", "expected"), USER_CASES)
async def test_user_leaves_filter_the_aggregated_users(db: Db, node: object, expected: list[str]) -> None:
    assert await users(db, node) == expected


def test_split_filter_separates_the_two_parts() -> None:
    node = branch(branch(rmt("model", {"equals": "x"}), "and", session("session_total_cost", {"gt": 1})), "and",
                  {"properties": {"env": {"equals": "prod"}}})  # fmt: skip
    request, aggregate = split_filter(node, "session")
    assert request == branch(rmt("model", {"equals": "x"}), "and", {"properties": {"env": {"equals": "prod"}}})
    assert aggregate == session("session_total_cost", {"gt": 1})
    assert split_filter("all", "user") == ("all", "all")
    assert split_filter(rmt("scores", {"a": {"gte": 1}})) == (rmt("scores", {"a": {"gte": 1}}), "all")


def test_compile_having_is_none_without_aggregate_leaves() -> None:
    assert compile_having(rmt("model", {"equals": "x"}), Params(SQLITE), "session") is None
    params = Params(POSTGRES)
    having = compile_having(branch(rmt("model", {"equals": "x"}), "and", user("user_cost", {"gt": 1})), params, "user")
    assert having == "(cost > CAST($1 AS numeric))" and params.values == [1]


@pytest.mark.parametrize(
    ("node", "kind", "message"),
    [
        (branch(rmt("model", {"equals": "x"}), "or", session("session_total_cost", {"gt": 1})), "session",
         "filter: an or cannot mix"),
        (user("user_cost", {"gt": 1}), "session", "filter.users_view: users_view filters are not supported"),
        (session("session_total_cost", {"gt": 1}), "user", "filter.sessions_request_response_rmt"),
        (session("session_total_cost", {"gt": 1}), None, "not supported by this endpoint"),
        (session("session_tag", {"equals": "x"}), "session", "session_tag: is not recorded"),
        (session("session_created_at", {"gt": "soon"}), "session", "session_created_at.gt: not an ISO-8601"),
        (branch("all", "and", user("user_cost", {"gt": "lots"})), "user", "filter.right.users_view.user_cost.gt"),
    ],
)  # fmt: skip
def test_bad_aggregate_filters_are_refused_before_anything_is_bound(node: object, kind: Any, message: str) -> None:
    params = Params(SQLITE)
    with pytest.raises(FilterError, match=message.replace(".", r"\.")):
        compile_aggregate_filter(node, params, kind)
    assert params.values == []
