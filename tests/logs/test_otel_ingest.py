"""OpenTelemetry ingest: Helicone's async integration (``helicone-async``, OpenLLMetry) and OTLP JSON.

The ``helicone-async`` test runs the real package in a child process (Traceloop instruments the openai
SDK process-wide and exports every span synchronously, which must not reach the rest of the suite):
the official ``openai`` SDK calls the mock provider directly and the logger exports the span to
heliport's ``/v1/trace/log-python``; the row is then read back through the query API, on SQLite and
PostgreSQL. The OTLP JSON route is driven with Helicone's ``OTELTrace`` shape; bad input answers 400.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Status
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

from heliport.auth import create_key
from heliport.logs.otel_ingest import MAX_SPANS
from heliport.logs.record import LogRecord
from heliport.store.keys import Organisation
from tests.harness import Gateway, start_gateway
from tests.mock_provider import MockProvider

ROOT = Path(__file__).resolve().parents[2]
T0_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
#: The child process: helicone-async's logger exporting to heliport, openai calling the mock provider.
HELICONE_ASYNC_SCRIPT = """
import json, sys
from helicone_async import HeliconeAsyncLogger
import openai

heliport, key, upstream, properties = sys.argv[1:5]
logger = HeliconeAsyncLogger(api_key=key, base_url=heliport + "/v1/trace/log-python")
logger.init()
logger.set_properties(json.loads(properties))
client = openai.OpenAI(base_url=upstream + "/v1", api_key="sk-provider-secret", max_retries=0)
completion = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Who won the world series in 2020?"},
    ],
)
print(completion.model_dump_json())
"""


@pytest.fixture(params=["sqlite", "postgres"])
def served(
    request: pytest.FixtureRequest, tmp_path: Path, mock_provider: MockProvider, pg_dsn_sync: str
) -> Iterator[Gateway]:
    database_url = pg_dsn_sync if request.param == "postgres" else None
    gw = start_gateway(tmp_path, mock_provider.url, pipeline=True, database_url=database_url)
    yield gw
    gw.stop()


def _second_key(gw: Gateway) -> str:
    async def make() -> str:
        org = Organisation(id=f"org-b-{uuid.uuid4().hex[:6]}", name="b", created_at=datetime.now(UTC))
        await gw.store.put_org(org)
        plain, _ = await create_key(gw.store, org.id, "b")
        return plain

    return asyncio.run(make())


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _query(gw: Gateway, key: str, where: dict[str, Any]) -> list[dict[str, Any]]:
    response = httpx.post(
        f"{gw.url}/v1/request/query", json={"filter": {"request_response_rmt": where}}, headers=_auth(key)
    )
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def _wait_rows(gw: Gateway, key: str, where: dict[str, Any], count: int = 1) -> list[dict[str, Any]]:
    """The rows matching ``where``, once the consumer has written ``count`` of them."""
    deadline = time.monotonic() + 15
    rows = _query(gw, key, where)
    while len(rows) < count and time.monotonic() < deadline:
        time.sleep(0.05)
        rows = _query(gw, key, where)
    assert len(rows) == count, rows
    return rows


def _one(gw: Gateway, key: str, request_id: str) -> dict[str, Any]:
    response = httpx.get(f"{gw.url}/v1/request/{request_id}", params={"includeBody": "true"}, headers=_auth(key))
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _sessions(gw: Gateway, key: str) -> list[tuple[str, int]]:
    body = {
        "search": "",
        "timeFilter": {"startTimeUnixMs": 0, "endTimeUnixMs": 4102444800000},
        "timezoneDifference": 0,
        "filter": "all",
    }
    response = httpx.post(f"{gw.url}/v1/session/query", json=body, headers=_auth(key))
    assert response.status_code == 200, response.text
    return [(s["session_id"], s["total_requests"]) for s in response.json()["data"]]


# -- helicone-async (OpenLLMetry) -> /v1/trace/log-python -----------------------------------------


def test_helicone_async_logs_an_openai_call_read_back_through_the_query_api(
    served: Gateway, mock_provider: MockProvider
) -> None:
    gw = served
    ticket = f"T-{uuid.uuid4().hex[:8]}"
    properties = {
        "Helicone-Session-Id": "course-plan-1",
        "Helicone-Session-Path": "/abstract",
        "Helicone-Session-Name": "Course Plan",
        "Helicone-User-Id": "alice",
        "Helicone-Property-Ticket": ticket,
    }
    env = {**os.environ, "TRACELOOP_TELEMETRY": "false", "PYTHONPATH": str(ROOT)}
    child = subprocess.run(
        [sys.executable, "-c", HELICONE_ASYNC_SCRIPT, gw.url, gw.key, mock_provider.url, json.dumps(properties)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    completion = json.loads(child.stdout.strip().splitlines()[-1])
    assert "Failed to export" not in child.stderr, child.stderr

    (row,) = _wait_rows(gw, gw.key, {"properties": {"ticket": {"equals": ticket}}})
    assert row["request_user_id"] == "alice" and row["properties"] == {"ticket": ticket}
    assert row["provider"] == "OPENAI" and row["model"] == completion["model"]
    assert row["request_path"] == "/v1/trace/log-python"
    assert row["target_url"] == f"{mock_provider.url}/v1/chat/completions"
    usage = completion["usage"]
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (
        usage["prompt_tokens"],
        usage["completion_tokens"],
        usage["total_tokens"],
    )
    assert row["cost"] > 0 and row["response_status"] == 200 and row["delay_ms"] >= 0
    one = _one(gw, gw.key, row["request_id"])
    assert one["request_body"]["messages"] == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Who won the world series in 2020?"},
    ]
    choice = one["response_body"]["choices"][0]
    assert choice["message"]["content"] == completion["choices"][0]["message"]["content"]
    assert choice["finish_reason"] == "stop"
    assert ("course-plan-1", 1) in _sessions(gw, gw.key)
    # Another organisation sees none of it.
    other = _second_key(gw)
    assert _query(gw, other, {"properties": {"ticket": {"equals": ticket}}}) == []
    assert _sessions(gw, other) == []


# -- OTLP JSON -> /v1/trace/log ---------------------------------------------------------------------


def _attr(key: str, value: str | int | float | bool) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}  # OTLP/JSON's 64-bit integers are strings
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": value}}


def _span(attributes: dict[str, Any], *, name: str = "openai.chat", start: int = T0_NS, end: int | None = None) -> dict:
    return {
        "traceId": uuid.uuid4().hex,
        "spanId": uuid.uuid4().hex[:16],
        "name": name,
        "kind": 3,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(end if end is not None else start + 1_250_000_000),
        "attributes": [_attr(k, v) for k, v in attributes.items()],
        "droppedAttributesCount": 0,
        "events": [],
        "droppedEventsCount": 0,
        "status": {"code": 1},
        "links": [],
        "droppedLinksCount": 0,
    }


def _trace(*spans: dict[str, Any]) -> dict[str, Any]:
    """Helicone's ``OTELTrace``: one resource, one scope, the spans."""
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "tests"}}],
                    "droppedAttributesCount": 0,
                },
                "scopeSpans": [
                    {"scope": {"name": "opentelemetry.instrumentation.openai.v1", "version": "0.33.12"}, "spans": spans}
                ],
            }
        ]
    }


def _chat_attributes(ticket: str, **extra: Any) -> dict[str, Any]:
    return {
        "llm.request.type": "chat",
        "gen_ai.system": "Anthropic",
        "gen_ai.request.model": "claude-3-5-haiku-20241022",
        "gen_ai.response.model": "claude-3-5-haiku-20241022",
        "gen_ai.request.max_tokens": 256,
        "gen_ai.request.temperature": 0.5,
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": "Be brief.",
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.1.content": "What is the weather in Paris?",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": "",
        "gen_ai.completion.0.finish_reason": "tool_use",
        "gen_ai.completion.0.tool_calls.0.id": "call_1",
        "gen_ai.completion.0.tool_calls.0.name": "get_weather",
        "gen_ai.completion.0.tool_calls.0.arguments": '{"city": "Paris"}',
        "gen_ai.usage.prompt_tokens": 120,
        "gen_ai.usage.completion_tokens": 30,
        "gen_ai.usage.cache_read_input_tokens": 100,
        "llm.usage.total_tokens": 150,
        "traceloop.association.properties.Helicone-User-Id": "bob",
        "traceloop.association.properties.Helicone-Session-Id": "trip-1",
        "traceloop.association.properties.Helicone-Property-Ticket": ticket,
        "traceloop.association.properties.customer": "not a Helicone header: ignored",
        **extra,
    }


def _post(
    gw: Gateway, key: str, body: bytes | dict[str, Any], path: str = "/v1/trace/log", **headers: str
) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    kind = {"content-type": "application/json"} if path == "/v1/trace/log" else {}
    return httpx.post(f"{gw.url}{path}", content=content, headers={**kind, **_auth(key), **headers})


def test_an_otlp_json_trace_becomes_a_row_in_the_keys_organisation_only(served: Gateway) -> None:
    gw = served
    other = _second_key(gw)
    ticket = f"T-{uuid.uuid4().hex[:8]}"
    workflow = _span({"traceloop.span.kind": "workflow", "traceloop.entity.name": "plan"}, name="plan.workflow")
    response = _post(gw, gw.key, _trace(_span(_chat_attributes(ticket)), workflow))
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert response.headers["heliport-spans-logged"] == "1" and response.headers["heliport-spans-skipped"] == "1"

    (row,) = _wait_rows(gw, gw.key, {"properties": {"ticket": {"equals": ticket}}})
    assert row["provider"] == "ANTHROPIC" and row["model"] == "claude-3-5-haiku-20241022"
    assert row["request_user_id"] == "bob" and row["properties"] == {"ticket": ticket}
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (120, 30, 150)
    assert row["prompt_cache_read_tokens"] == 100 and row["cost"] > 0
    assert row["request_created_at"].startswith("2026-01-01T00:00:00") and row["delay_ms"] == 1250
    one = _one(gw, gw.key, row["request_id"])
    assert one["request_body"] == {
        "model": "claude-3-5-haiku-20241022",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is the weather in Paris?"},
        ],
        "max_tokens": 256,
        "temperature": 0.5,
    }
    (choice,) = one["response_body"]["choices"]
    assert choice["finish_reason"] == "tool_use"
    assert choice["message"]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    ]
    assert one["response_body"]["usage"] == {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}
    assert ("trip-1", 1) in _sessions(gw, gw.key)

    # The other organisation's key logs into the other organisation; neither sees the other's row.
    other_ticket = f"T-{uuid.uuid4().hex[:8]}"
    assert _post(gw, other, _trace(_span(_chat_attributes(other_ticket)))).status_code == 204
    _wait_rows(gw, other, {"properties": {"ticket": {"equals": other_ticket}}})
    assert _query(gw, other, {"properties": {"ticket": {"equals": ticket}}}) == []
    assert _query(gw, gw.key, {"properties": {"ticket": {"equals": other_ticket}}}) == []
    assert _sessions(gw, other) == [("trip-1", 1)]
    assert httpx.get(f"{gw.url}/v1/request/{row['request_id']}", headers=_auth(other)).status_code == 404


# -- single spans, on a heliport with a memory log sink ----------------------------------------------


def _records(gateway: Gateway, response: httpx.Response, count: int) -> list[LogRecord]:
    """The records one export queued (they follow each other in the sink)."""
    assert response.status_code in (200, 204), response.text
    assert response.headers["heliport-spans-logged"] == str(count)
    return gateway.queue.records[-count:]


def _proto_export(attributes: dict[str, Any], *, status: int = 1, message: str = "") -> ExportTraceServiceRequest:
    def value(item: Any) -> AnyValue:
        if isinstance(item, bool):
            return AnyValue(bool_value=item)
        if isinstance(item, int):
            return AnyValue(int_value=item)
        return AnyValue(string_value=item)

    span = ProtoSpan(
        trace_id=uuid.uuid4().bytes,
        span_id=uuid.uuid4().bytes[:8],
        name="openai.chat",
        start_time_unix_nano=T0_NS,
        end_time_unix_nano=T0_NS + 2_000_000_000,
        attributes=[KeyValue(key=k, value=value(v)) for k, v in attributes.items()],
        status=Status(code=status, message=message),  # type: ignore[arg-type]  # the enum's int value
    )
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])])


def test_a_gzip_protobuf_export_is_answered_in_otlp_and_an_errored_span_is_logged_as_failed(gateway: Gateway) -> None:
    attributes = {
        "llm.request.type": "chat",
        "gen_ai.system": "OpenAI",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.prompt.0.role": "user",
        "gen_ai.prompt.0.content": "Hi",
        "llm.user": "body-user",
        "traceloop.association.properties.Helicone-Auth": "Bearer sk-heliport-not-this-one",
    }
    export = _proto_export(attributes, status=2, message="Connection error.")
    body = gzip.compress(export.SerializeToString())
    response = _post(
        gateway,
        gateway.key,
        body,
        "/v1/trace/log-python",
        **{"content-type": "application/x-protobuf", "content-encoding": "gzip", "Helicone-Property-Env": "ci"},
    )
    assert response.status_code == 200 and response.headers["content-type"] == "application/x-protobuf"
    assert response.content == b""  # an empty ExportTraceServiceResponse: everything accepted
    (record,) = _records(gateway, response, 1)
    assert record.org_id == gateway.org_id and record.status == 500
    assert record.errors == ["span status ERROR: Connection error."]
    assert record.user_id == "body-user" and record.properties == {"env": "ci"}  # the POST's headers apply
    assert record.usage is not None and record.usage.source == "absent" and record.duration_ms == 2000
    assert json.loads(record.request_body or "")["messages"] == [{"role": "user", "content": "Hi"}]
    assert json.loads(record.response_body or "")["choices"] == []


def test_otlp_json_sent_to_the_python_route_is_answered_in_json(gateway: Gateway) -> None:
    trace = _trace(_span(_chat_attributes("json-on-python-route")))
    response = _post(gateway, gateway.key, trace, "/v1/trace/log-python", **{"content-type": "application/json"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json() == {}  # an empty ExportTraceServiceResponse, in the request's encoding
    (record,) = _records(gateway, response, 1)
    assert record.provider == "ANTHROPIC" and record.properties == {"ticket": "json-on-python-route"}


def test_a_redelivered_export_keeps_its_request_ids_and_a_named_request_id_is_used(gateway: Gateway) -> None:
    named = str(uuid.uuid4())
    attributes = {"gen_ai.system": "OpenAI", "gen_ai.request.model": "gpt-4o-mini"}
    trace = _trace(
        _span(attributes),
        _span({**attributes, "traceloop.association.properties.Helicone-Request-Id": named}),
    )
    first = _records(gateway, _post(gateway, gateway.key, trace), 2)
    again = _records(gateway, _post(gateway, gateway.key, trace), 2)
    assert [r.request_id for r in first] == [r.request_id for r in again]
    assert first[1].request_id == named and first[0].request_id != named
    uuid.UUID(first[0].request_id)  # a UUID, as the log database keys rows
    # Spans without ids (Helicone's shape has them; a hand-made trace may not) never share a request id.
    anonymous = [{**_span(attributes), "traceId": "", "spanId": ""} for _ in range(2)]
    one, two = _records(gateway, _post(gateway, gateway.key, _trace(*anonymous)), 2)
    assert one.request_id != two.request_id


def test_omit_headers_set_as_association_properties_keep_the_bodies_out(gateway: Gateway) -> None:
    attributes = {
        **_chat_attributes("omitted"),
        "traceloop.association.properties.Helicone-Omit-Request": "true",
        "traceloop.association.properties.Helicone-Omit-Response": "true",
    }
    (record,) = _records(gateway, _post(gateway, gateway.key, _trace(_span(attributes))), 1)
    assert record.request_body is None and record.response_body is None
    assert record.usage is not None and record.usage.prompt_tokens == 120


def _error(response: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        (b"not json", None, "Invalid OTLP JSON"),
        ({"resourceSpans": "many"}, "$.resourceSpans", "Expected `array`"),
        ({"spans": []}, None, "resourceSpans"),
        (
            _trace({**_span({"gen_ai.system": "OpenAI"}), "startTimeUnixNano": "yesterday"}),
            "$.resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano",
            "nanoseconds",
        ),
        (
            _trace(_span({"gen_ai.system": "OpenAI"}, start=T0_NS, end=T0_NS - 1)),
            "$.resourceSpans[0].scopeSpans[0].spans[0].endTimeUnixNano",
            "ends before it starts",
        ),
        (
            _trace(_span({"gen_ai.system": "OpenAI", "traceloop.association.properties.Helicone-Request-Id": "x"})),
            "$.resourceSpans[0].scopeSpans[0].spans[0].attributes[traceloop.association.properties.Helicone-Request-Id]",
            "Helicone-Request-Id",
        ),
    ],
    ids=["not-json", "wrong-type", "missing-resourceSpans", "bad-time", "ends-before-start", "bad-association"],
)
def test_bad_otlp_json_is_a_400_naming_what_is_wrong(
    gateway: Gateway, body: bytes | dict[str, Any], param: str | None, words: str
) -> None:
    error = _error(_post(gateway, gateway.key, body))
    assert words in error["message"] and error["param"] == param


def test_bad_protobuf_too_many_spans_and_too_deep_json_are_refused(gateway: Gateway) -> None:
    garbage = _error(_post(gateway, gateway.key, b"not protobuf", "/v1/trace/log-python"))
    assert "Invalid OTLP protobuf" in garbage["message"]
    many = _trace(*[_span({"gen_ai.system": "OpenAI"}) for _ in range(MAX_SPANS + 1)])
    assert f"at most {MAX_SPANS} spans" in _error(_post(gateway, gateway.key, many))["message"]
    deep: dict[str, Any] = {"stringValue": "x"}
    for _ in range(200):
        deep = {"arrayValue": {"values": [deep]}}
    nested = _trace({**_span({}), "attributes": [{"key": "deep", "value": deep}]})
    assert _error(_post(gateway, gateway.key, nested))["code"] == "json_too_deep"
    bomb = _post(gateway, gateway.key, gzip.compress(b"x"), **{"content-encoding": "br"})
    assert _error(bomb, 415)["type"] == "invalid_body"


def test_the_key_is_required_and_only_post_is_answered(gateway: Gateway) -> None:
    trace = _trace(_span({"gen_ai.system": "OpenAI"}))
    anonymous = httpx.post(f"{gateway.url}/v1/trace/log", json=trace)
    assert anonymous.status_code == 401
    wrong = _post(gateway, "sk-heliport-" + "0" * 48, trace)
    assert wrong.status_code == 401
    assert httpx.get(f"{gateway.url}/v1/trace/log-python", headers=_auth(gateway.key)).status_code == 405
    before = len(gateway.queue.records)
    assert _post(gateway, gateway.key, _trace(_span({"traceloop.span.kind": "task"}))).status_code == 204
    assert len(gateway.queue.records) == before  # a span that is not an LLM call is skipped, not an error


# -- fuzz: whatever the body, a 4xx JSON error or an accepted export, never a 5xx -------------------

_KEYS = st.sampled_from(
    [
        "gen_ai.system",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "llm.request.type",
        "gen_ai.prompt.0.role",
        "gen_ai.prompt.1.content",
        "gen_ai.prompt.²³.content",
        "gen_ai.completion.0.tool_calls.0.name",
        "gen_ai.completion.99999999999999999999999.content",
        "gen_ai.usage.prompt_tokens",
        "llm.usage.total_tokens",
        "llm.is_streaming",
        "gen_ai.openai.api_base",
        "traceloop.association.properties.Helicone-User-Id",
        "traceloop.association.properties.Helicone-Property-X",
        "traceloop.association.properties.Helicone-Cache-Enabled",
        "traceloop.association.properties.Helicone-Fallbacks",
        "traceloop.association.properties.Helicone-Retry-Num",
    ]
)
_SCALARS = st.one_of(
    st.text(max_size=12).map(lambda t: {"stringValue": t}),
    st.integers(min_value=-(2**70), max_value=2**70).map(lambda n: {"intValue": n}),
    st.text(max_size=8).map(lambda t: {"intValue": t}),
    st.floats(allow_nan=False).map(lambda f: {"doubleValue": f}),
    st.booleans().map(lambda b: {"boolValue": b}),
    st.just({}),
    st.just({"kvlistValue": {"values": [{"key": "k", "value": {"stringValue": "v"}}]}}),
)
_TIMES = st.one_of(
    st.integers(min_value=-5, max_value=2**80),
    st.text(max_size=6),
    st.floats(allow_nan=False),
    st.just(str(T0_NS)),
)
_SPANS = st.fixed_dictionaries(
    {
        "startTimeUnixNano": _TIMES,
        "endTimeUnixNano": _TIMES,
        "attributes": st.lists(st.fixed_dictionaries({"key": _KEYS, "value": _SCALARS}), max_size=8),
    },
    optional={"status": st.fixed_dictionaries({"code": st.one_of(st.integers(), st.floats(allow_nan=False))})},
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spans=st.lists(_SPANS, max_size=3))
def test_fuzzed_otlp_json_is_never_a_5xx(gateway: Gateway, spans: list[dict[str, Any]]) -> None:
    response = _post(gateway, gateway.key, {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})
    assert response.status_code in (204, 400), response.text
    if response.status_code == 400:
        assert response.json()["error"]["message"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=200))
def test_fuzzed_protobuf_is_never_a_5xx(gateway: Gateway, body: bytes) -> None:
    response = _post(gateway, gateway.key, body, "/v1/trace/log-python", **{"content-type": "application/x-protobuf"})
    assert response.status_code in (200, 400), response.text
