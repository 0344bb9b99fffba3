"""The aggregate endpoints' SQL, run for real on PostgreSQL and SQLite over one hand-computed fixture.

Two organisations share the table with interleaved rows (and a session id and user ids in common);
every expected number below is worked out by hand from the rows in ``_fixture`` and must come out the
same on both dialects. The builders get their request-level filter as an already compiled fragment,
written here by hand with the same ``Params`` (as ``api/filters.py`` will produce it), and their body
as the API gives it: validated by its model (``api/schemas.py``) with the API's own ``parse_body``, so
the bodies here pass the one contract a caller's do, and the bad ones fail it with the API's 400.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel

from heliport.api import aggregates as agg
from heliport.api import filters
from heliport.api import schemas as s
from heliport.api.app import ENDPOINTS
from heliport.api.dialect import POSTGRES, SQLITE, Dialect, Params
from heliport.api.endpoint import parse_body
from heliport.api.openapi import openapi_document
from heliport.errors import InvalidBodyError, RequestError
from heliport.logs.row import RequestRow
from tests.api.databases import Db, postgres_with, sqlite_with

pytestmark = pytest.mark.anyio

ORG_A = "org-a-" + uuid.uuid4().hex[:8]
ORG_B = "org-b-" + uuid.uuid4().hex[:8]
ORG_EMPTY = "org-empty"
T0 = datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC)
EVIL_KEY = "a'b\"c; DROP TABLE requests;--"
#: Without a double quote: SQLite's JSON path (dialect.property_key) cannot address a key containing one.
EVIL_FILTER_KEY = "k'); DROP TABLE requests;--"
EVIL_NAME = "Search' OR '1'='1"
EVIL_SESSION = "s3_%x"


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def make_row(org_id: str, created_at: datetime, **fields: Any) -> RequestRow:
    """A row with the required fields filled in (as tests/store/test_logdb.py makes them)."""
    values: dict[str, Any] = {
        "request_id": str(uuid.uuid4()),
        "org_id": org_id,
        "key_id": "key-" + org_id,
        "created_at": created_at,
        "status": 200,
        "provider": "OPENAI",
        "target_url": "https://api.openai.com/v1/chat/completions",
        "path": "/v1/chat/completions",
        "model": "gpt-4o-mini",
    }
    values.update(fields)
    if isinstance(values.get("cost"), float):
        values["cost"] = Decimal(str(values["cost"]))
    return RequestRow(**values)


def _fixture() -> list[RequestRow]:
    """ORG_A and ORG_B, interleaved in time and in insertion order. The expectations in the tests:

    ORG_A sessions  s1 (a1 a2 a3): created T0, latest T0+70s, name "Checkout" (a2, latest named),
                    cost 0.75, 3 requests, prompt 35, completion 10, total 45, latency 200, users u1 u2,
                    duration 70 s.
                    s2 (a4): T0+1h, no name, cost 1.0, 1 request, 100/50/150, latency 50, no users, 0 s.
                    s3_%x (a5 a6): T0+2h .. +5s, EVIL_NAME, cost 0.25, 2 requests, 4/4/8, latency 20, u3, 5 s.
    ORG_A users     u1 (a1 a3 a7 a9): 4 requests, prompt 65, completion 25, cost 3.0, UTC days 10th 11th 13th,
                    one rate limited. u2 (a2 a8 a10): 3, 22, 8, 0.3125, days 10th 11th (a8 is 23:00 UTC on
                    the 11th: the 12th at UTC+1). u3 (a5 a6): 2, 4, 4, 0.25, one day.
    ORG_B           shares session id s1 and user u1 with ORG_A, with much larger numbers.
    """
    a = ORG_A
    b = ORG_B
    return [
        make_row(a, T0, session_id="s1", session_name="Checkout v1", user_id="u1", model="gpt-4o",
                 prompt_tokens=10, completion_tokens=5, cost=0.5, delay_ms=100.0, properties={"env": "prod"}),
        make_row(b, T0 + timedelta(seconds=5), session_id="s1", session_name="Checkout", user_id="u1",
                 prompt_tokens=1000, completion_tokens=1000, cost=100.0, delay_ms=9000.0,
                 properties={"secret_b": "1"}),
        make_row(a, T0 + timedelta(seconds=10), session_id="s1", session_name="Checkout", user_id="u2",
                 model="gpt-4o", prompt_tokens=20, completion_tokens=5, cost=0.25, delay_ms=200.0,
                 properties={"env": "prod", "team": "a"}),
        make_row(a, T0 + timedelta(seconds=70), session_id="s1", user_id="u1", model="gpt-4o",
                 prompt_tokens=5, delay_ms=300.0, rate_limited=True, status=429),
        make_row(b, T0 + timedelta(minutes=30), session_id="b-only", user_id="u-b", prompt_tokens=7,
                 completion_tokens=7, cost=50.0, delay_ms=70.0, properties={"env": "b"}),
        make_row(a, T0 + timedelta(hours=1), session_id="s2", model="claude-sonnet-4", prompt_tokens=100,
                 completion_tokens=50, cost=1.0, delay_ms=50.0),
        make_row(a, T0 + timedelta(hours=2), session_id=EVIL_SESSION, session_name=EVIL_NAME, user_id="u3",
                 prompt_tokens=1, completion_tokens=1, cost=0.125, delay_ms=10.0),
        make_row(a, T0 + timedelta(hours=2, seconds=5), session_id=EVIL_SESSION, session_name=EVIL_NAME,
                 user_id="u3", prompt_tokens=3, completion_tokens=3, cost=0.125, delay_ms=30.0),
        make_row(b, T0 + timedelta(days=1), user_id="u1", prompt_tokens=500, completion_tokens=500, cost=10.0),
        make_row(a, T0 + timedelta(days=1), user_id="u1", prompt_tokens=40, completion_tokens=10, cost=2.0,
                 delay_ms=400.0, properties={EVIL_KEY: "x", EVIL_FILTER_KEY: "y"}),
        make_row(a, T0 + timedelta(days=1, minutes=5), user_id="u2", prompt_tokens=2, completion_tokens=3,
                 cost=0.0625, delay_ms=10.0),
        make_row(a, T0 + timedelta(days=1, hours=11), user_id="u2", prompt_tokens=0, completion_tokens=0,
                 status=500, properties={"env": "dev"}),
        make_row(a, T0 + timedelta(days=3), user_id="u1", prompt_tokens=10, completion_tokens=10, cost=0.5,
                 delay_ms=100.0),
    ]  # fmt: skip


# --- databases -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Db]:
    async with sqlite_with(tmp_path_factory.mktemp("aggregates") / "logs.sqlite3", _fixture()) as db:
        yield db


@pytest.fixture(scope="module")
async def pg_db() -> AsyncIterator[Db]:
    async with postgres_with(_fixture()) as db:
        yield db


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest) -> Db:
    chosen: Db = request.getfixturevalue("sqlite_db" if request.param == "sqlite" else "pg_db")
    return chosen


Builder = Callable[..., str]
Mapper = Callable[[list[dict[str, Any]]], Any]
Fragment = Callable[[Params], str]
_T = TypeVar("_T")

#: Each builder's body model, as the route table pairs them.
MODELS: dict[Builder, type[BaseModel]] = {
    agg.session_query: s.SessionQueryBody,
    agg.session_metrics_query: s.SessionMetricsBody,
    agg.user_query: s.UserQueryBody,
    agg.user_metrics_query: s.UserMetricsBody,
    agg.user_metrics_overview_query: s.UserMetricsOverviewBody,
    agg.property_query: s.PropertyQueryBody,
}


def build(builder: Builder, org: str, body: Any, params: Params, where: str, having: Fragment | None = None) -> str:
    """``builder``'s statement for ``body``, validated first by its model as the API does."""
    return builder(org, parse_body(MODELS[builder], body), params, where, having=having)


async def ask(
    db: Db,
    builder: Builder,
    mapper: Callable[[list[dict[str, Any]]], _T],
    body: Any,
    *,
    org: str = ORG_A,
    where: Fragment | None = None,
    having: Fragment | None = None,
) -> _T:
    """Compile ``where`` first (as the API does), validate the body, build, run, map."""
    params = Params(db.dialect)
    where_sql = where(params) if where is not None else "TRUE"
    sql = build(builder, org, body, params, where_sql, having)
    rows = await db.fetch(sql, params.values)
    return mapper(rows)


async def sessions(db: Db, body: Mapping[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    full = {
        "search": "",
        "timeFilter": {"startTimeUnixMs": ms(T0 - timedelta(days=1)), "endTimeUnixMs": ms(T0 + timedelta(days=30))},
        "timezoneDifference": 0,
        "filter": "all",
        **(body or {}),
    }
    return await ask(db, agg.session_query, agg.to_session_query_result, full, **kwargs)


async def user_metrics(db: Db, body: Mapping[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    full = {"filter": "all", "offset": 0, "limit": 100, **(body or {})}
    return await ask(db, agg.user_metrics_query, agg.to_user_metrics_result, full, **kwargs)


# --- documented shapes (from the OpenAPI schemas embedded in the seed pages) -----------------------

SESSION_RESULT = {
    "created_at": str,
    "latest_request_created_at": str,
    "session_id": str,
    "session_name": str,
    "total_cost": float,
    "total_requests": int,
    "prompt_tokens": int,
    "completion_tokens": int,
    "total_tokens": int,
    "avg_latency": float,
    "user_ids": list,
    # heliport's own (api/session_feedback.py); no session here has feedback (tests/api/test_session_feedback.py).
    "feedback_rating": type(None),
}
USER_METRICS_RESULT = {
    "id": str,
    "user_id": str,
    "active_for": int,
    "first_active": str,
    "last_active": str,
    "total_requests": int,
    "average_requests_per_day_active": float,
    "average_tokens_per_request": float,
    "total_completion_tokens": int,
    "total_prompt_tokens": int,
    "cost": float,
}
USER_QUERY_RESULT = {"count": int, "prompt_tokens": int, "completion_tokens": int, "user_id": str, "cost": float}
HISTOGRAM_ROW = {"range_start": str, "range_end": str, "value": int}


def assert_shape(value: Mapping[str, Any], shape: Mapping[str, type]) -> None:
    """Exactly the documented keys (additionalProperties: false), each of the documented JSON type."""
    assert set(value) == set(shape)
    for key, kind in shape.items():
        assert isinstance(value[key], kind), (key, value[key])
        assert not isinstance(value[key], bool) or kind is bool


def assert_histogram(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        assert_shape(row, HISTOGRAM_ROW)
        float(row["range_start"]), float(row["range_end"])


def assert_session_metrics_shape(data: Mapping[str, Any]) -> None:
    assert set(data) == {"session_count", "session_duration", "session_cost", "average"}
    for key in ("session_count", "session_duration", "session_cost"):
        assert_histogram(data[key])
    assert set(data["average"]) == {"session_cost", "session_duration", "session_count"}
    for rows in data["average"].values():
        for row in rows:
            assert_shape(row, {"average": float})


def js(lo: float, hi: float, bucket: int) -> tuple[str, str]:
    """A bucket's edges, computed as the SQL does, written as JavaScript would (for non-round edges)."""
    start = lo + bucket * (hi - lo) / 10
    end = hi if bucket == 9 or hi == lo else lo + (bucket + 1) * (hi - lo) / 10
    return agg._js_number(start), agg._js_number(end)


# --- POST /v1/session/query ------------------------------------------------------------------------


async def test_sessions_are_aggregated_exactly(db: Db) -> None:
    data = await sessions(db)
    assert [s["session_id"] for s in data] == [EVIL_SESSION, "s2", "s1"]  # newest first
    s3, s2, s1 = data
    assert s1 == {
        "created_at": iso(T0),
        "latest_request_created_at": iso(T0 + timedelta(seconds=70)),
        "session_id": "s1",
        "session_name": "Checkout",
        "total_cost": 0.75,
        "total_requests": 3,
        "prompt_tokens": 35,
        "completion_tokens": 10,
        "total_tokens": 45,
        "avg_latency": 200.0,
        "user_ids": ["u1", "u2"],
        "feedback_rating": None,
    }
    assert s2 == {
        "created_at": iso(T0 + timedelta(hours=1)),
        "latest_request_created_at": iso(T0 + timedelta(hours=1)),
        "session_id": "s2",
        "session_name": "",
        "total_cost": 1.0,
        "total_requests": 1,
        "prompt_tokens": 100,
        "completion_tokens": 50,
        "total_tokens": 150,
        "avg_latency": 50.0,
        "user_ids": [],
        "feedback_rating": None,
    }
    assert s3["session_name"] == EVIL_NAME
    assert (s3["total_cost"], s3["total_requests"], s3["total_tokens"], s3["avg_latency"]) == (0.25, 2, 8, 20.0)
    assert s3["latest_request_created_at"] == iso(T0 + timedelta(hours=2, seconds=5))
    for session in data:
        assert_shape(session, SESSION_RESULT)


async def test_sessions_never_mix_organisations(db: Db) -> None:
    data = await sessions(db, org=ORG_B)
    assert [s["session_id"] for s in data] == ["b-only", "s1"]
    b_s1 = data[1]
    assert (b_s1["total_cost"], b_s1["total_requests"], b_s1["total_tokens"], b_s1["user_ids"]) == (
        100.0,
        1,
        2000,
        ["u1"],
    )
    assert b_s1["created_at"] == iso(T0 + timedelta(seconds=5))
    assert await sessions(db, org=ORG_EMPTY) == []
    assert await sessions(db, org="' OR '1'='1") == []


async def test_session_time_filter_is_exclusive_and_bound(db: Db) -> None:
    window = {"startTimeUnixMs": ms(T0), "endTimeUnixMs": ms(T0 + timedelta(hours=2))}
    data = await sessions(db, {"timeFilter": window})
    # Both ends exclusive (Helicone's gt/lt): a1 at T0 and a5 at T0+2h drop out.
    by_id = {s["session_id"]: s for s in data}
    assert set(by_id) == {"s1", "s2"}
    s1 = by_id["s1"]
    assert (s1["created_at"], s1["total_requests"], s1["total_cost"], s1["user_ids"]) == (
        iso(T0 + timedelta(seconds=10)),
        2,
        0.25,
        ["u1", "u2"],
    )
    # Fractional milliseconds are fine; a window ending before it starts is empty, not an error.
    fractional = {"startTimeUnixMs": ms(T0) + 0.5, "endTimeUnixMs": ms(T0) + 60_000.25}
    assert [s["total_requests"] for s in await sessions(db, {"timeFilter": fractional})] == [1]
    backwards = {"startTimeUnixMs": ms(T0 + timedelta(days=1)), "endTimeUnixMs": ms(T0)}
    assert await sessions(db, {"timeFilter": backwards}) == []


async def test_session_search_is_a_literal_case_insensitive_substring(db: Db) -> None:
    async def found(text: str) -> list[str]:
        return [s["session_id"] for s in await sessions(db, {"search": text})]

    assert await found("CHECK") == ["s1"]  # by name, any case
    assert await found("S2") == ["s2"]  # by id
    # Whole sessions: s1's unnamed request a3 still counts although only a1/a2 carry the name.
    assert (await sessions(db, {"search": "checkout"}))[0]["total_requests"] == 3
    # Wildcards and quotes are text.
    assert await found("%") == [EVIL_SESSION]
    assert await found("_") == [EVIL_SESSION]
    assert await found("s%") == []
    assert await found("' OR '1'='1") == [EVIL_SESSION]
    assert await found("x' OR 1=1 --") == []
    assert await found("'; DROP TABLE requests; --") == []
    assert await found("\\") == []
    assert await db.count() == 13


async def test_session_name_equals(db: Db) -> None:
    assert [s["session_id"] for s in await sessions(db, {"nameEquals": "Checkout"})] == ["s1"]
    assert await sessions(db, {"nameEquals": "checkout"}) == []  # equals is exact
    assert [s["session_id"] for s in await sessions(db, {"nameEquals": EVIL_NAME})] == [EVIL_SESSION]
    assert await sessions(db, {"nameEquals": "' OR ''='"}) == []


async def test_session_paging(db: Db) -> None:
    assert [s["session_id"] for s in await sessions(db, {"limit": 2})] == [EVIL_SESSION, "s2"]
    assert [s["session_id"] for s in await sessions(db, {"offset": 1, "limit": 1})] == ["s2"]
    assert [s["session_id"] for s in await sessions(db, {"offset": None, "limit": None})] == [EVIL_SESSION, "s2", "s1"]
    assert await sessions(db, {"offset": 3}) == []
    assert await sessions(db, {"limit": 0}) == []


async def test_session_filter_fragment_and_having_bind_in_order(db: Db) -> None:
    """A compiled filter (its values already bound), then the builder's values, then a session-level
    filter: the positional SQLite placeholders must line up."""

    def model_is_gpt4o(p: Params) -> str:
        return f"model = {p.add('gpt-4o')}"

    def many_requests(p: Params) -> str:
        return f"total_requests >= {p.add(2)} AND total_cost > {p.add(0.1)}"

    window = {"startTimeUnixMs": ms(T0 - timedelta(seconds=1)), "endTimeUnixMs": ms(T0 + timedelta(days=1))}
    data = await sessions(
        db,
        {"search": "check", "nameEquals": "Checkout", "timeFilter": window, "limit": 5, "offset": 0},
        where=model_is_gpt4o,
        having=many_requests,
    )
    assert [(s["session_id"], s["total_requests"], s["total_cost"]) for s in data] == [("s1", 3, 0.75)]
    # The filter is request level: only the gpt-4o-mini requests of s3 are left for it, none of s1.
    mini = await sessions(db, where=lambda p: f"model = {p.add('gpt-4o-mini')}")
    assert [s["session_id"] for s in mini] == [EVIL_SESSION]
    # A having over every documented session column runs on both dialects.
    columns = " AND ".join(f"({c} IS NULL OR {c} IS NOT NULL)" for c in filters.SESSION_COLUMNS.values())
    assert len(await sessions(db, having=lambda p: columns)) == 3
    late = await sessions(db, having=lambda p: f"created_at > {p.add(timestamp(db, T0 + timedelta(minutes=1)))}")
    assert [s["session_id"] for s in late] == [EVIL_SESSION, "s2"]


def timestamp(db: Db, at: datetime) -> object:
    """A timestamp bound the way the filter compiler binds one, for a hand-written having fragment."""
    return at if db.dialect is POSTGRES else at.isoformat(timespec="microseconds")


# --- POST /v1/session/metrics/query ------------------------------------------------------------------


async def session_metrics(db: Db, body: Mapping[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    full = {"nameContains": "", "timezoneDifference": 0, **(body or {})}
    return await ask(db, agg.session_metrics_query, agg.to_session_metrics_result, full, **kwargs)


async def test_session_metrics_p75_histograms(db: Db) -> None:
    data = await session_metrics(db)
    assert_session_metrics_shape(data)
    # Requests per session [1, 2, 3]: p75 = 2.5 keeps 1 and 2, in the first and last of 10 buckets.
    assert data["session_count"] == [
        {"range_start": "1", "range_end": "1.1", "value": 1},
        {"range_start": "1.9", "range_end": "2", "value": 1},
    ]
    # Durations [0, 5, 70] s: p75 = 37.5 keeps 0 and 5.
    assert data["session_duration"] == [
        {"range_start": "0", "range_end": "0.5", "value": 1},
        {"range_start": "4.5", "range_end": "5", "value": 1},
    ]
    # Costs [0.25, 0.75, 1.0]: p75 = 0.875 keeps 0.25 and 0.75.
    low, high = js(0.25, 0.75, 0), js(0.25, 0.75, 9)
    assert data["session_cost"] == [
        {"range_start": low[0], "range_end": low[1], "value": 1},
        {"range_start": high[0], "range_end": "0.75", "value": 1},
    ]
    assert low == ("0.25", "0.3")
    # Averages are over every session, untrimmed.
    assert data["average"] == {
        "session_cost": [{"average": 2.0 / 3}],
        "session_duration": [{"average": 25.0}],
        "session_count": [{"average": 2.0}],
    }


async def test_session_metrics_percentile_sizes(db: Db) -> None:
    def counts(data: dict[str, Any]) -> list[tuple[str, str, int]]:
        return [(r["range_start"], r["range_end"], r["value"]) for r in data["session_count"]]

    # Interquartile p75: between p25 = 1.5 and p75 = 2.5, so only the session with 2 requests.
    assert counts(await session_metrics(db, {"pSize": "p75", "useInterquartile": True})) == [("2", "2", 1)]
    # p50 = 2 exactly (kept, inclusive); p99 = 2.98; p99.9 = 2.998: the 3 stays out each time.
    for size in ("p50", "p99", "p99.9"):
        assert counts(await session_metrics(db, {"pSize": size})) == [("1", "1.1", 1), ("1.9", "2", 1)], size
    # Interquartile p50 is the median alone.
    assert counts(await session_metrics(db, {"pSize": "p50", "useInterquartile": True})) == [("2", "2", 1)]


async def test_session_metrics_filters_and_isolation(db: Db) -> None:
    named = await session_metrics(db, {"nameContains": "CHECK"})
    assert named["session_count"] == [{"range_start": "3", "range_end": "3", "value": 1}]
    assert named["average"]["session_duration"] == [{"average": 70.0}]
    literal = await session_metrics(db, {"nameContains": "' OR '1'='1"})
    assert literal["average"]["session_count"] == [{"average": 2.0}]  # EVIL_NAME, literally
    window = {
        "startTimeUnixMs": ms(T0 + timedelta(minutes=59)),
        "endTimeUnixMs": ms(T0 + timedelta(hours=1, seconds=1)),
    }
    only_s2 = await session_metrics(db, {"timeFilter": window, "filter": "all", "pSize": "p95"})
    assert only_s2["session_cost"] == [{"range_start": "1", "range_end": "1", "value": 1}]
    having = await session_metrics(
        db, where=lambda p: f"status < {p.add(500)}", having=lambda p: f"total_cost >= {p.add(0.5)}"
    )
    assert having["average"]["session_cost"] == [{"average": 0.875}]  # s1 0.75 and s2 1.0
    other = await session_metrics(db, org=ORG_B)
    assert other["average"]["session_cost"] == [{"average": 75.0}]  # (100 + 50) / 2: none of ORG_A's
    empty = await session_metrics(db, org=ORG_EMPTY)
    assert empty == {
        "session_count": [],
        "session_duration": [],
        "session_cost": [],
        "average": {"session_cost": [{"average": 0.0}], "session_duration": [{"average": 0.0}],
                    "session_count": [{"average": 0.0}]},
    }  # fmt: skip


# --- POST /v1/user/query -----------------------------------------------------------------------------


async def users(db: Db, body: Mapping[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
    return await ask(db, agg.user_query, agg.to_user_query_result, body, **kwargs)


async def test_user_query_totals(db: Db) -> None:
    data = await users(db, {})
    assert data == [
        {"count": 4, "prompt_tokens": 65, "completion_tokens": 25, "user_id": "u1", "cost": 3.0},
        {"count": 3, "prompt_tokens": 22, "completion_tokens": 8, "user_id": "u2", "cost": 0.3125},
        {"count": 2, "prompt_tokens": 4, "completion_tokens": 4, "user_id": "u3", "cost": 0.25},
    ]
    for user in data:
        assert_shape(user, USER_QUERY_RESULT)
    assert await users(db, {}, org=ORG_B) == [
        {"count": 2, "prompt_tokens": 1500, "completion_tokens": 1500, "user_id": "u1", "cost": 110.0},
        {"count": 1, "prompt_tokens": 7, "completion_tokens": 7, "user_id": "u-b", "cost": 50.0},
    ]
    assert await users(db, {}, org=ORG_EMPTY) == []


async def test_user_query_ids_and_seconds_window(db: Db) -> None:
    picked = await users(db, {"userIds": ["u3", "u2", "nobody"]})
    assert [u["user_id"] for u in picked] == ["u2", "u3"]
    assert await users(db, {"userIds": ["u1' OR '1'='1"]}) == []
    assert [u["user_id"] for u in await users(db, {"userIds": []})] == ["u1", "u2", "u3"]
    # Seconds, both ends inclusive (Helicone's gte/lte): a1 at T0 and a2 at T0+10s.
    window = {"startTimeUnixSeconds": T0.timestamp(), "endTimeUnixSeconds": T0.timestamp() + 10}
    assert await users(db, {"timeFilter": window}) == [
        {"count": 1, "prompt_tokens": 10, "completion_tokens": 5, "user_id": "u1", "cost": 0.5},
        {"count": 1, "prompt_tokens": 20, "completion_tokens": 5, "user_id": "u2", "cost": 0.25},
    ]
    assert await users(db, {"userIds": ["u1"], "timeFilter": window}, where=lambda p: f"status = {p.add(200)}") == [
        {"count": 1, "prompt_tokens": 10, "completion_tokens": 5, "user_id": "u1", "cost": 0.5}
    ]


# --- POST /v1/user/metrics/query ---------------------------------------------------------------------

U1 = {
    "id": "u1",
    "user_id": "u1",
    "active_for": 3,
    "first_active": iso(T0),
    "last_active": iso(T0 + timedelta(days=3)),
    "total_requests": 4,
    "average_requests_per_day_active": 4 / 3,
    "average_tokens_per_request": 22.5,
    "total_completion_tokens": 25,
    "total_prompt_tokens": 65,
    "cost": 3.0,
}
U2 = {
    "id": "u2",
    "user_id": "u2",
    "active_for": 2,
    "first_active": iso(T0 + timedelta(seconds=10)),
    "last_active": iso(T0 + timedelta(days=1, hours=11)),
    "total_requests": 3,
    "average_requests_per_day_active": 1.5,
    "average_tokens_per_request": 10.0,
    "total_completion_tokens": 8,
    "total_prompt_tokens": 22,
    "cost": 0.3125,
}
U3 = {
    "id": "u3",
    "user_id": "u3",
    "active_for": 1,
    "first_active": iso(T0 + timedelta(hours=2)),
    "last_active": iso(T0 + timedelta(hours=2, seconds=5)),
    "total_requests": 2,
    "average_requests_per_day_active": 2.0,
    "average_tokens_per_request": 4.0,
    "total_completion_tokens": 4,
    "total_prompt_tokens": 4,
    "cost": 0.25,
}


async def test_user_metrics_exact(db: Db) -> None:
    data = await user_metrics(db)
    assert data == {"users": [U1, U2, U3], "count": 3, "hasUsers": True}  # last_active desc by default
    assert set(data) == {"users", "count", "hasUsers"}
    for user in data["users"]:
        assert_shape(user, USER_METRICS_RESULT)


async def test_user_metrics_sorting(db: Db) -> None:
    async def order(sort: Any) -> list[str]:
        return [u["user_id"] for u in (await user_metrics(db, {"sort": sort}))["users"]]

    assert await order({"cost": "asc"}) == ["u3", "u2", "u1"]
    assert await order({"total_requests": "desc"}) == ["u1", "u2", "u3"]
    assert await order({"rate_limited_count": "desc"}) == ["u1", "u2", "u3"]  # ties by user_id
    assert await order({"first_active": "desc"}) == ["u3", "u2", "u1"]
    assert await order({"id": "desc"}) == ["u3", "u2", "u1"]
    assert await order({"active_for": "asc", "cost": "desc"}) == ["u3", "u2", "u1"]
    # Keys apply in the order given, not in the order the model declares them.
    assert await order({"cost": "desc", "active_for": "asc"}) == ["u1", "u2", "u3"]
    assert await order({"average_tokens_per_request": "asc"}) == ["u3", "u2", "u1"]
    assert await order({}) == ["u1", "u2", "u3"]
    for key in agg.USER_SORT_COLUMNS:
        assert len(await order({key: "asc"})) == 3


async def test_user_metrics_paging_and_counts(db: Db) -> None:
    assert await user_metrics(db, {"offset": 1, "limit": 1}) == {"users": [U2], "count": 3, "hasUsers": True}
    assert await user_metrics(db, {"offset": 10, "limit": 5}) == {"users": [], "count": 3, "hasUsers": True}
    assert await user_metrics(db, org=ORG_EMPTY) == {"users": [], "count": 0, "hasUsers": False}
    # A filter that matches no one still says the organisation has users.
    none = await user_metrics(db, where=lambda p: f"model = {p.add('no-such-model')}")
    assert none == {"users": [], "count": 0, "hasUsers": True}


async def test_user_metrics_never_mix_organisations(db: Db) -> None:
    data = await user_metrics(db, org=ORG_B)
    assert [(u["user_id"], u["total_requests"], u["cost"], u["active_for"]) for u in data["users"]] == [
        ("u1", 2, 110.0, 2),
        ("u-b", 1, 50.0, 1),
    ]
    assert data["count"] == 2


async def test_user_metrics_timezone_counts_local_days(db: Db) -> None:
    # a8 is 23:00 UTC on the 11th: at UTC+1 (getTimezoneOffset() = -60) it is the 12th.
    plus_one = await user_metrics(db, {"timeZoneDifferenceMinutes": -60, "sort": {"user_id": "asc"}})
    assert [u["active_for"] for u in plus_one["users"]] == [3, 3, 1]
    assert plus_one["users"][1]["average_requests_per_day_active"] == 1.0
    # UTC-12: a1 (12:00 UTC on the 10th) is midnight of the 10th, a7 midnight of the 11th: still distinct.
    minus_twelve = await user_metrics(db, {"timeZoneDifferenceMinutes": 720, "sort": {"user_id": "asc"}})
    assert [u["active_for"] for u in minus_twelve["users"]] == [3, 2, 1]
    # The instants themselves are never shifted.
    assert plus_one["users"][0]["first_active"] == iso(T0)


async def test_user_metrics_window_filter_and_having(db: Db) -> None:
    window = {
        "startTimeUnixSeconds": (T0 + timedelta(hours=1)).timestamp(),
        "endTimeUnixSeconds": (T0 + timedelta(days=2)).timestamp(),
    }
    data = await user_metrics(db, {"timeFilter": window, "sort": {"user_id": "asc"}})
    assert [(u["user_id"], u["total_requests"], u["cost"]) for u in data["users"]] == [
        ("u1", 1, 2.0),
        ("u2", 2, 0.0625),
        ("u3", 2, 0.25),
    ]
    heavy = await user_metrics(
        db,
        {"timeFilter": window},
        where=lambda p: f"status <> {p.add(429)}",
        having=lambda p: f"total_requests >= {p.add(2)} AND cost < {p.add(0.1)}",
    )
    assert [u["user_id"] for u in heavy["users"]] == ["u2"]
    assert heavy["count"] == 1
    columns = " AND ".join(f"{column} IS NOT NULL" for column in filters.USER_COLUMNS.values())
    assert (await user_metrics(db, having=lambda p: columns))["count"] == 3


# --- POST /v1/user/metrics-overview/query ------------------------------------------------------------


async def overview(db: Db, body: Mapping[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    full = {"useInterquartile": False, "pSize": "p75", "filter": "all", **(body or {})}
    return await ask(db, agg.user_metrics_overview_query, agg.to_user_metrics_overview_result, full, **kwargs)


async def test_user_metrics_overview(db: Db) -> None:
    data = await overview(db)
    assert set(data) == {"request_count", "user_cost"}
    # Requests per user [2, 3, 4]: p75 = 3.5 keeps 2 and 3.
    assert data["request_count"] == [
        {"range_start": "2", "range_end": "2.1", "value": 1},
        {"range_start": "2.9", "range_end": "3", "value": 1},
    ]
    # Costs [0.25, 0.3125, 3.0]: p75 = 1.65625 keeps 0.25 and 0.3125.
    low, high = js(0.25, 0.3125, 0), js(0.25, 0.3125, 9)
    assert data["user_cost"] == [
        {"range_start": "0.25", "range_end": low[1], "value": 1},
        {"range_start": high[0], "range_end": "0.3125", "value": 1},
    ]
    for rows in data.values():
        assert_histogram(rows)
    everyone = await overview(db, {"pSize": "p99.9"})
    assert sum(r["value"] for r in everyone["request_count"]) == 2  # p99.9 = 3.998 < 4
    iqr = await overview(db, {"useInterquartile": True, "pSize": "p50"})
    assert iqr["request_count"] == [{"range_start": "3", "range_end": "3", "value": 1}]
    other = await overview(db, org=ORG_B, body={"pSize": "p99"})
    # ORG_B's per-user costs are [50, 110]: p99 = 109.4 keeps only u-b's 50.
    assert other["user_cost"] == [{"range_start": "50", "range_end": "50", "value": 1}]
    assert await overview(db, org=ORG_EMPTY) == {"user_cost": [], "request_count": []}
    filtered = await overview(db, where=lambda p: f"user_id = {p.add('u1')}", having=lambda p: f"cost > {p.add(1)}")
    assert filtered["user_cost"] == [{"range_start": "3", "range_end": "3", "value": 1}]


# --- POST /v1/property/query -------------------------------------------------------------------------


async def properties(db: Db, **kwargs: Any) -> list[dict[str, str]]:
    return await ask(db, agg.property_query, agg.to_property_query_result, {}, **kwargs)


async def test_property_keys(db: Db) -> None:
    assert await properties(db) == [
        {"property": EVIL_KEY},
        {"property": "env"},
        {"property": EVIL_FILTER_KEY},
        {"property": "team"},
    ]
    assert await properties(db, org=ORG_B) == [{"property": "env"}, {"property": "secret_b"}]
    assert await properties(db, org=ORG_EMPTY) == []
    assert await properties(db, where=lambda p: f"status = {p.add(500)}") == [{"property": "env"}]


async def test_property_names_are_bound_never_spliced(db: Db) -> None:
    """The hostile key, used as a property filter the way the filter compiler writes one."""
    dialect = db.dialect

    def has_evil_key(p: Params) -> str:
        return f"{dialect.property('properties', p.add(dialect.property_key(EVIL_FILTER_KEY)))} = {p.add('y')}"

    assert await properties(db, where=has_evil_key) == [{"property": EVIL_KEY}, {"property": EVIL_FILTER_KEY}]
    assert await properties(db, where=has_evil_key, org=ORG_B) == []
    assert [u["user_id"] for u in await users(db, {}, where=has_evil_key)] == ["u1"]
    # ``path`` is a requests column and a json_each column: the filter must see the request's.
    on_path = await properties(db, where=lambda p: f"path = {p.add('/v1/chat/completions')}")
    assert len(on_path) == 4
    assert await db.count() == 13


# --- validation: a 400 naming the field ----------------------------------------------------------


USERS_BODY = {"filter": "all", "offset": 0, "limit": 1}
SESSION_BODY = {"search": "", "timeFilter": {"startTimeUnixMs": 0, "endTimeUnixMs": 1}, "timezoneDifference": 0,
                "filter": "all"}  # fmt: skip


@pytest.mark.parametrize(
    ("builder", "body", "field"),
    [
        (agg.session_query, [], "body"),
        (agg.session_query, {**SESSION_BODY, "search": 5}, "search"),
        (agg.session_query, {k: v for k, v in SESSION_BODY.items() if k != "search"}, "search"),
        (agg.session_query, {k: v for k, v in SESSION_BODY.items() if k != "filter"}, "filter"),
        (agg.session_query, {**SESSION_BODY, "timeFilter": "yesterday"}, "timeFilter"),
        (agg.session_query, {**SESSION_BODY, "timeFilter": {"startTimeUnixMs": 0}}, "timeFilter.endTimeUnixMs"),
        (agg.session_query, {**SESSION_BODY, "timeFilter": {"startTimeUnixMs": "0", "endTimeUnixMs": 1}},
         "timeFilter.startTimeUnixMs"),
        (agg.session_query, {**SESSION_BODY, "timeFilter": {"startTimeUnixMs": True, "endTimeUnixMs": 1}},
         "timeFilter.startTimeUnixMs"),
        (agg.session_query, {**SESSION_BODY, "timeFilter": {"startTimeUnixMs": 0, "endTimeUnixMs": 1e300}},
         "timeFilter.endTimeUnixMs"),
        (agg.session_query, {**SESSION_BODY, "timeFilter": {"startTimeUnixMs": float("-inf"), "endTimeUnixMs": 1}},
         "timeFilter.startTimeUnixMs"),
        (agg.session_query, {**SESSION_BODY, "timezoneDifference": "0"}, "timezoneDifference"),
        (agg.session_query, {**SESSION_BODY, "timezoneDifference": 5000}, "timezoneDifference"),
        (agg.session_query, {**SESSION_BODY, "timezoneDifference": -1441}, "timezoneDifference"),
        (agg.session_query, {**SESSION_BODY, "timezoneDifference": float("nan")}, "timezoneDifference"),
        (agg.session_query, {**SESSION_BODY, "nameEquals": ["x"]}, "nameEquals"),
        (agg.session_query, {**SESSION_BODY, "limit": -1}, "limit"),
        (agg.session_query, {**SESSION_BODY, "limit": 1.5}, "limit"),
        (agg.session_query, {**SESSION_BODY, "limit": 1001}, "limit"),
        (agg.session_query, {**SESSION_BODY, "limit": "10; DROP TABLE requests"}, "limit"),
        (agg.session_query, {**SESSION_BODY, "offset": "3"}, "offset"),
        (agg.session_metrics_query, {"timezoneDifference": 0}, "nameContains"),
        (agg.session_metrics_query, {"nameContains": "", "timezoneDifference": 0, "pSize": "p42"}, "pSize"),
        (agg.session_metrics_query, {"nameContains": "", "timezoneDifference": 0, "pSize": "p50; --"}, "pSize"),
        (agg.session_metrics_query, {"nameContains": "", "timezoneDifference": 0, "useInterquartile": "yes"},
         "useInterquartile"),
        (agg.session_metrics_query, {"nameContains": "", "timezoneDifference": 1440.5}, "timezoneDifference"),
        (agg.session_metrics_query, {"nameContains": "", "timezoneDifference": 0,
                                     "timeFilter": {"startTimeUnixMs": -1e300, "endTimeUnixMs": 0}},
         "timeFilter.startTimeUnixMs"),
        (agg.user_query, {"userIds": "u1"}, "userIds"),
        (agg.user_query, {"userIds": [1]}, "userIds.0"),
        (agg.user_query, {"userIds": ["u"] * 1001}, "userIds"),
        (agg.user_query, {"timeFilter": {"startTimeUnixSeconds": 0}}, "timeFilter.endTimeUnixSeconds"),
        (agg.user_query, {"timeFilter": {"startTimeUnixSeconds": 0, "endTimeUnixSeconds": 1e300}},
         "timeFilter.endTimeUnixSeconds"),
        (agg.user_query, {"timeFilter": {"startTimeUnixSeconds": float("nan"), "endTimeUnixSeconds": 0}},
         "timeFilter.startTimeUnixSeconds"),
        (agg.user_metrics_query, {"filter": "all", "offset": 0}, "limit"),
        (agg.user_metrics_query, {"filter": "all", "offset": 0, "limit": 5000}, "limit"),
        (agg.user_metrics_query, {"offset": 0, "limit": 1}, "filter"),
        (agg.user_metrics_query, {**USERS_BODY, "sort": ["cost"]}, "sort"),
        (agg.user_metrics_query, {**USERS_BODY, "sort": {"cost; DROP TABLE requests": "asc"}},
         "sort.cost; DROP TABLE requests"),
        (agg.user_metrics_query, {**USERS_BODY, "sort": {"session_id": "asc"}},
         "sort.session_id"),
        (agg.user_metrics_query, {**USERS_BODY, "sort": {"cost": "asc; DROP TABLE requests"}},
         "sort.cost"),
        (agg.user_metrics_query, {**USERS_BODY, "sort": {"cost": 1}}, "sort.cost"),
        (agg.user_metrics_query, {**USERS_BODY, "sort": {"cost": "ASC"}}, "sort.cost"),
        (agg.user_metrics_query, {**USERS_BODY, "timeZoneDifferenceMinutes": "x"},
         "timeZoneDifferenceMinutes"),
        (agg.user_metrics_query, {**USERS_BODY, "timeZoneDifferenceMinutes": 1441},
         "timeZoneDifferenceMinutes"),
        (agg.user_metrics_query, {**USERS_BODY, "timeZoneDifferenceMinutes": float("inf")},
         "timeZoneDifferenceMinutes"),
        (agg.user_metrics_overview_query, {"pSize": "p75", "filter": "all"}, "useInterquartile"),
        (agg.user_metrics_overview_query, {"useInterquartile": False, "filter": "all"}, "pSize"),
        (agg.user_metrics_overview_query, {"useInterquartile": False, "pSize": "p75"}, "filter"),
        (agg.property_query, "{}", "body"),
    ],
)  # fmt: skip
def test_bad_bodies_are_400_naming_the_field(builder: Builder, body: Any, field: str) -> None:
    """The builder's model refuses the body, as the API does before any handler runs."""
    with pytest.raises(InvalidBodyError) as caught:
        parse_body(MODELS[builder], body)
    error = caught.value
    assert isinstance(error, RequestError)
    assert error.status == 400
    assert error.param == field
    assert error.message.startswith(f"Invalid {field}: ")
    assert b'"param"' in error.body()


@pytest.mark.parametrize(
    ("model", "start", "end"),
    [(s.MsTimeFilter, "startTimeUnixMs", "endTimeUnixMs"),
     (s.SecondsTimeFilter, "startTimeUnixSeconds", "endTimeUnixSeconds")],
)  # fmt: skip
def test_time_filters_take_every_instant_a_datetime_holds(model: type[BaseModel], start: str, end: str) -> None:
    """The schema's bounds are exactly the first and last millisecond a datetime can hold: both convert,
    and a millisecond past either is a 400 naming the end, never a failure in a handler."""
    scale = 1 if model is s.MsTimeFilter else 1000  # milliseconds per unit
    first, last, past = s.FIRST_INSTANT_MS / scale, s.LAST_INSTANT_MS / scale, 1 / scale
    window = parse_body(model, {start: first, end: last})
    assert isinstance(window, s.MsTimeFilter | s.SecondsTimeFilter)
    low, high = window.bounds()
    assert low == datetime(1, 1, 1, tzinfo=UTC)
    # Unix seconds near year 9999 are floats 61 us apart: the last millisecond, to within that.
    assert abs(high - datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)) < timedelta(microseconds=61)
    for body, field in [({start: first - past, end: 0}, start), ({start: 0, end: last + past}, end)]:
        with pytest.raises(InvalidBodyError) as caught:
            parse_body(model, body)
        assert caught.value.param == field


def test_the_openapi_document_states_the_aggregate_bounds() -> None:
    """Every range the aggregate bodies enforce is in /openapi.json, where clients and schemathesis see it."""
    document = openapi_document(ENDPOINTS)
    schemas = document["components"]["schemas"]

    def body(path: str) -> dict[str, Any]:
        properties: dict[str, Any] = document["paths"][path]["post"]["requestBody"]["content"]["application/json"][
            "schema"
        ]["properties"]
        return properties

    tz = body("/v1/session/query")["timezoneDifference"]
    assert (tz["minimum"], tz["maximum"]) == (-s.MAX_TIMEZONE_MINUTES, s.MAX_TIMEZONE_MINUTES)
    tz_users = body("/v1/user/metrics/query")["timeZoneDifferenceMinutes"]["anyOf"][0]
    assert (tz_users["minimum"], tz_users["maximum"]) == (-s.MAX_TIMEZONE_MINUTES, s.MAX_TIMEZONE_MINUTES)
    ms = schemas["MsTimeFilter"]["properties"]["endTimeUnixMs"]
    assert (ms["minimum"], ms["maximum"]) == (s.FIRST_INSTANT_MS, s.LAST_INSTANT_MS)
    seconds = schemas["SecondsTimeFilter"]["properties"]["startTimeUnixSeconds"]
    assert (seconds["minimum"], seconds["maximum"]) == (s.FIRST_INSTANT_MS / 1000, s.LAST_INSTANT_MS / 1000)
    limit = body("/v1/session/query")["limit"]
    assert limit["default"] == s.SESSION_DEFAULT_LIMIT and limit["anyOf"][0]["maximum"] == 1000
    assert body("/v1/user/query")["userIds"]["anyOf"][0]["maxItems"] == s.MAX_USER_IDS
    sort = schemas["UserSort"]
    assert sort["additionalProperties"] is False
    assert set(sort["properties"]) == set(agg.USER_SORT_COLUMNS)
    assert all(p["enum"] == ["asc", "desc"] for p in sort["properties"].values())


def test_every_user_sort_key_has_a_column() -> None:
    assert set(s.UserSort.__optional_keys__) == set(agg.USER_SORT_COLUMNS)


@pytest.mark.parametrize("builder", [agg.user_query, agg.property_query])
def test_endpoints_without_aggregate_leaves_refuse_a_having(builder: Builder) -> None:
    """A wiring check: the filter compiler never makes a ``having`` for these; one given is a bug, not dropped."""
    with pytest.raises(ValueError, match="no post-aggregation filter"):
        build(builder, ORG_A, {}, Params(POSTGRES), "TRUE", having=lambda p: "TRUE")


@pytest.mark.parametrize("dialect", [POSTGRES, SQLITE], ids=["postgres", "sqlite"])
def test_caller_strings_never_reach_the_sql_text(dialect: Dialect) -> None:
    evil = "zz'); DROP TABLE requests; --"
    built = [
        build(agg.session_query, evil, {**SESSION_BODY, "search": evil, "nameEquals": evil}, Params(dialect), "TRUE"),
        build(agg.session_metrics_query, evil, {"nameContains": evil, "timezoneDifference": 0}, Params(dialect),
              "TRUE"),
        build(agg.user_query, evil, {"userIds": [evil, evil]}, Params(dialect), "TRUE"),
        build(agg.user_metrics_query, evil, {**USERS_BODY, "sort": {"cost": "desc"}}, Params(dialect), "TRUE"),
        build(agg.user_metrics_overview_query, evil, {"useInterquartile": True, "pSize": "p99", "filter": evil},
              Params(dialect), "TRUE"),
        build(agg.property_query, evil, {"anything": evil}, Params(dialect), "TRUE"),
    ]  # fmt: skip
    for sql in built:
        assert "zz" not in sql and "DROP" not in sql
        assert "org_id = " in sql


def test_sqlite_params_must_hold_only_the_filter_values() -> None:
    """Positional placeholders: a builder appended to foreign values would bind them to the wrong places."""
    params = Params(SQLITE)
    params.add("stray")
    with pytest.raises(ValueError, match="where fragment"):
        build(agg.property_query, ORG_A, {}, params, "TRUE")


# --- documented requests, as clients send them -------------------------------------------------------


async def test_documented_requests_answer_in_documented_shapes(db: Db) -> None:
    """The seed pages carry schemas, not example payloads: each endpoint with just its required fields,
    with every documented field, and as Helicone's own web client calls it."""
    now_ms = ms(T0 + timedelta(days=30))
    bodies: list[tuple[Builder, Mapper, dict[str, Any]]] = [
        # What Helicone's /v1/session/has-session sends.
        (agg.session_query, agg.to_session_query_result,
         {"filter": "all", "search": "", "timeFilter": {"startTimeUnixMs": 0, "endTimeUnixMs": now_ms},
          "timezoneDifference": 0}),
        (agg.session_query, agg.to_session_query_result,
         {"search": "s", "timeFilter": {"startTimeUnixMs": 0.0, "endTimeUnixMs": float(now_ms)},
          "nameEquals": "Checkout", "timezoneDifference": -120.0, "filter": {"left": "all", "operator": "and",
          "right": "all"}, "offset": 0, "limit": 10}),
        (agg.session_metrics_query, agg.to_session_metrics_result, {"nameContains": "", "timezoneDifference": 0}),
        (agg.session_metrics_query, agg.to_session_metrics_result,
         {"nameContains": "Check", "timezoneDifference": 60, "pSize": "p99.9", "useInterquartile": True,
          "timeFilter": {"startTimeUnixMs": 0, "endTimeUnixMs": now_ms}, "filter": "all"}),
        (agg.user_query, agg.to_user_query_result, {}),
        (agg.user_query, agg.to_user_query_result,
         {"userIds": ["u1", "u2"], "timeFilter": {"startTimeUnixSeconds": 0, "endTimeUnixSeconds": now_ms / 1000}}),
        (agg.user_metrics_query, agg.to_user_metrics_result, {"filter": "all", "offset": 0, "limit": 10}),
        # Helicone's web client (its user page) sends timeZoneDifference, an undocumented name: ignored.
        (agg.user_metrics_query, agg.to_user_metrics_result,
         {"filter": {"user_metrics": {"user_id": {"equals": "u1"}}}, "offset": 0, "limit": 1,
          "sort": {"last_active": "desc"}, "timeZoneDifference": -60}),
        (agg.user_metrics_query, agg.to_user_metrics_result,
         {"filter": "all", "offset": 0, "limit": 1000,
          "timeFilter": {"startTimeUnixSeconds": 0, "endTimeUnixSeconds": now_ms / 1000},
          "timeZoneDifferenceMinutes": 330, "sort": {"average_requests_per_day_active": "desc"}}),
        (agg.user_metrics_overview_query, agg.to_user_metrics_overview_result,
         {"useInterquartile": False, "pSize": "p75", "filter": "all"}),
        (agg.property_query, agg.to_property_query_result, {}),
    ]  # fmt: skip
    for builder, mapper, body in bodies:
        data = await ask(db, builder, mapper, body)
        if builder is agg.session_query:
            assert data
            for row in data:
                assert_shape(row, SESSION_RESULT)
        elif builder is agg.session_metrics_query:
            assert_session_metrics_shape(data)
        elif builder is agg.user_query:
            assert data
            for row in data:
                assert_shape(row, USER_QUERY_RESULT)
        elif builder is agg.user_metrics_query:
            assert set(data) == {"users", "count", "hasUsers"} and data["users"]
            assert isinstance(data["count"], int) and data["hasUsers"] is True
            for row in data["users"]:
                assert_shape(row, USER_METRICS_RESULT)
        elif builder is agg.user_metrics_overview_query:
            assert set(data) == {"request_count", "user_cost"}
            assert_histogram(data["request_count"] + data["user_cost"])
        else:
            assert data and all(set(row) == {"property"} for row in data)


async def test_both_dialects_agree(sqlite_db: Db, pg_db: Db) -> None:
    """The same bodies on both databases give identical answers, key for key."""
    cases: list[tuple[Builder, Mapper, dict[str, Any]]] = [
        (agg.session_query, agg.to_session_query_result,
         {**SESSION_BODY, "timeFilter": {"startTimeUnixMs": 0, "endTimeUnixMs": ms(T0 + timedelta(days=9))}}),
        (agg.session_metrics_query, agg.to_session_metrics_result,
         {"nameContains": "", "timezoneDifference": 0, "pSize": "p95"}),
        (agg.user_query, agg.to_user_query_result, {}),
        (agg.user_metrics_query, agg.to_user_metrics_result,
         {"filter": "all", "offset": 0, "limit": 50, "timeZoneDifferenceMinutes": -330, "sort": {"cost": "desc"}}),
        (agg.user_metrics_overview_query, agg.to_user_metrics_overview_result,
         {"useInterquartile": True, "pSize": "p95", "filter": "all"}),
        (agg.property_query, agg.to_property_query_result, {}),
    ]  # fmt: skip
    for org in (ORG_A, ORG_B):
        for builder, mapper, body in cases:
            assert await ask(sqlite_db, builder, mapper, body, org=org) == await ask(
                pg_db, builder, mapper, body, org=org
            ), builder.__name__


def test_javascript_number_strings() -> None:
    numbers = (1.0, 0.0, -3.0, 1.1, 0.30000000000000004, 0.00001, 1.5e-7, 1e-7, 1.2345678901234568e20, 2.5e21, 1e21)
    assert [agg._js_number(x) for x in numbers] == [
        "1", "0", "-3", "1.1", "0.30000000000000004", "0.00001", "1.5e-7", "1e-7", "123456789012345680000",
        "2.5e+21", "1e+21",
    ]  # fmt: skip
