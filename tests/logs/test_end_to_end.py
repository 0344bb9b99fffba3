"""From an SDK call to a stored row, through heliport as ``heliport serve`` runs it."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from helicone_helpers import HeliconeManualLogger

from heliport.auth import create_key
from heliport.logs.consumer import REUSED_ID_PROPERTY
from heliport.logs.row import RequestRow
from heliport.store.keys import Organisation
from heliport.store.logdb import LogDb
from heliport.store.logdb_postgres import PostgresLogDb
from heliport.store.logdb_sqlite import SqliteLogDb
from tests.harness import Gateway, start_gateway, wait_for
from tests.mock_provider import MockProvider


def wait_for_row(db: LogDb, org_id: str, request_id: str, timeout: float = 10) -> RequestRow:
    async def poll() -> RequestRow:
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                row = await db.get_request(org_id, request_id)
                if row is not None:
                    return row
                await asyncio.sleep(0.05)
        finally:
            await db.aclose()
        raise AssertionError(f"no row for {request_id}")

    return asyncio.run(poll())


@pytest.fixture(params=["sqlite", "postgres"])
def served(
    request: pytest.FixtureRequest, tmp_path: Path, mock_provider: MockProvider, pg_dsn_sync: str
) -> Iterator[tuple[Gateway, str | None]]:
    database_url = pg_dsn_sync if request.param == "postgres" else None
    gw = start_gateway(tmp_path, mock_provider.url, pipeline=True, database_url=database_url)
    yield gw, database_url
    gw.stop()


def logdb_of(gw: Gateway, tmp_path: Path, database_url: str | None) -> LogDb:
    return PostgresLogDb(database_url) if database_url else SqliteLogDb(tmp_path / "logs.sqlite3")


def test_streamed_call_becomes_a_row_with_tokens_cost_latency_and_properties(
    served: tuple[Gateway, str | None], tmp_path: Path
) -> None:
    gw, database_url = served
    request_id = str(uuid.uuid4())
    stream = gw.openai().chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Plan a trip"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={
            "Helicone-Request-Id": request_id,
            "Helicone-Property-Team": "search",
            "Helicone-User-Id": "alice",
            "Helicone-Session-Id": "trip-1",
        },
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    row = wait_for_row(logdb_of(gw, tmp_path, database_url), gw.org_id, request_id)
    assert row.status == 200 and row.is_stream
    assert row.prompt_tokens and row.completion_tokens and row.total_tokens
    assert row.usage_source == "stream"
    assert row.cost is not None and row.cost > 0
    assert row.delay_ms is not None and row.delay_ms > 0
    assert row.time_to_first_token is not None and 0 < row.time_to_first_token <= row.delay_ms
    assert row.properties == {"team": "search"}
    assert (row.user_id, row.session_id) == ("alice", "trip-1")
    assert row.model and row.model.startswith("gpt-4o-mini")
    assert row.response_preview == text


def test_helicone_manual_logger_works_end_to_end(served: tuple[Gateway, str | None], tmp_path: Path) -> None:
    gw, database_url = served
    request_id = str(uuid.uuid4())
    logger = HeliconeManualLogger(api_key=gw.key, logging_endpoint=gw.url)
    request = {"model": "my-local-llama", "messages": [{"role": "user", "content": "Hello"}]}

    def operation(result_recorder):  # type: ignore[no-untyped-def]  # the helper's own callback signature
        response = {"id": "r1", "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}}
        result_recorder.append_results(response)
        return response

    logger.log_request(
        provider=None,
        request=request,
        operation=operation,
        additional_headers={
            "Helicone-Request-Id": request_id,
            "Helicone-Property-Source": "manual",
            "Helicone-User-Id": "bob",
        },
    )
    row = wait_for_row(logdb_of(gw, tmp_path, database_url), gw.org_id, request_id)
    assert row.provider == "CUSTOM" and row.status == 200
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == (11, 7, 18)
    assert row.usage_source == "manual"
    assert row.properties == {"source": "manual"}
    assert row.user_id == "bob" and row.request_model == "my-local-llama"
    assert row.request_preview == "Hello"


def test_async_log_payload_errors_name_the_field(gateway: Gateway) -> None:
    good = {"providerRequest": {"url": "custom-model-nopath", "json": {}, "meta": {}}, "providerResponse": {}}
    headers = {"Authorization": f"Bearer {gateway.key}"}
    bad_status = {**good, "providerResponse": {"status": "ok"}}
    response = httpx.post(f"{gateway.url}/custom/v1/log", json=bad_status, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "$.providerResponse.status"

    response = httpx.post(f"{gateway.url}/custom/v1/log", json={"providerResponse": {}}, headers=headers)
    assert response.status_code == 400 and "providerRequest" in response.json()["error"]["message"]

    response = httpx.post(f"{gateway.url}/custom/v1/log", content=b"{nope", headers=headers)
    assert response.status_code == 400

    timing = {"startTime": {"seconds": 20, "milliseconds": 0}, "endTime": {"seconds": 10, "milliseconds": 0}}
    response = httpx.post(f"{gateway.url}/custom/v1/log", json={**good, "timing": timing}, headers=headers)
    assert response.status_code == 400 and response.json()["error"]["param"] == "$.timing.endTime"

    assert httpx.post(f"{gateway.url}/custom/v1/log", json=good).status_code == 401
    response = httpx.post(f"{gateway.url}/oai/v1/log", json=good, headers=headers)
    assert response.status_code == 200 and response.headers["helicone-id"] == response.json()["id"]
    record = gateway.record(response.json()["id"])
    assert record.provider == "OPENAI"
    assert json.loads(record.request_body or "") == {}


def test_secrets_in_logged_headers_are_never_stored(gateway: Gateway) -> None:
    payload = {
        "providerRequest": {"url": "custom-model-nopath", "json": {"model": "m"}, "meta": {}},
        "providerResponse": {
            "status": 200,
            "json": {"ok": True},
            "headers": {"Authorization": "Bearer sk-live", "X-Api-Key": "k", "Set-Cookie": "s=1", "X-Request-Id": "r"},
        },
    }
    response = httpx.post(
        f"{gateway.url}/custom/v1/log", json=payload, headers={"Helicone-Auth": f"Bearer {gateway.key}"}
    )
    record = gateway.record(response.json()["id"])
    assert record.response_headers == {"x-request-id": "r"}


def second_tenant(gw: Gateway) -> tuple[str, str]:
    """Another organisation in the same heliport, with a key of its own: (org id, key)."""

    async def make() -> tuple[str, str]:
        org = Organisation(id=str(uuid.uuid4()), name="tenant-b", created_at=datetime.now(UTC))
        await gw.store.put_org(org)
        plain, _ = await create_key(gw.store, org.id, "tenant-b")
        return org.id, plain

    return asyncio.run(make())


def test_a_deeply_nested_body_does_not_stop_logging(served: tuple[Gateway, str | None], tmp_path: Path) -> None:
    gw, database_url = served
    other_org, other_key = second_tenant(gw)
    deep_id, after_id = str(uuid.uuid4()), str(uuid.uuid4())
    answer = httpx.post(
        f"{gw.oai_base}/chat/completions",
        content="[" * 100_000 + "]" * 100_000,
        headers={"Helicone-Auth": f"Bearer {gw.key}", "Helicone-Request-Id": deep_id, "Authorization": "Bearer sk-x"},
        timeout=30,
    )
    # the mock provider's own answer to such a body (its JSON parser gives up), relayed as it is
    gw.openai(other_key).chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "after"}],
        extra_headers={"Helicone-Request-Id": after_id},
    )
    assert wait_for_row(logdb_of(gw, tmp_path, database_url), other_org, after_id).status == 200
    deep = wait_for_row(logdb_of(gw, tmp_path, database_url), gw.org_id, deep_id)
    assert deep.status == answer.status_code and deep.body_key is not None


def test_another_tenant_reusing_a_request_id_is_logged_too(served: tuple[Gateway, str | None], tmp_path: Path) -> None:
    gw, database_url = served
    other_org, other_key = second_tenant(gw)
    taken = str(uuid.uuid4())
    message = [{"role": "user", "content": "hi"}]
    gw.openai().chat.completions.create(
        model="gpt-4o-mini", messages=message, extra_headers={"Helicone-Request-Id": taken}
    )
    assert wait_for_row(logdb_of(gw, tmp_path, database_url), gw.org_id, taken).status == 200
    # tenant B picks the same id, through the proxy and through the manual logger: both are B's rows
    gw.openai(other_key).chat.completions.create(
        model="gpt-4o-mini", messages=message, extra_headers={"Helicone-Request-Id": taken}
    )
    row = wait_for_row(logdb_of(gw, tmp_path, database_url), other_org, taken)
    assert row.org_id == other_org and row.errors == []
    logged = str(uuid.uuid4())
    gw.openai().chat.completions.create(
        model="gpt-4o-mini", messages=message, extra_headers={"Helicone-Request-Id": logged}
    )
    wait_for_row(logdb_of(gw, tmp_path, database_url), gw.org_id, logged)
    HeliconeManualLogger(api_key=other_key, logging_endpoint=gw.url).send_log(
        provider=None,
        request={"model": "m", "messages": message},
        response={"usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}},
        options={
            "start_time": time.time() - 1,
            "end_time": time.time(),
            "additional_headers": {"Helicone-Request-Id": logged},
        },
    )
    assert wait_for_row(logdb_of(gw, tmp_path, database_url), other_org, logged).provider == "CUSTOM"


def test_a_request_id_repeated_by_its_own_tenant_is_kept_under_a_fresh_id(
    served: tuple[Gateway, str | None], tmp_path: Path
) -> None:
    gw, _ = served
    given = str(uuid.uuid4())
    for text in ("first", "second"):
        gw.openai().chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": text}],
            extra_headers={"Helicone-Request-Id": given},
        )

    def rows() -> list[dict[str, object]]:
        found = httpx.post(
            f"{gw.url}/v1/request/query",
            json={"filter": "all", "limit": 10, "sort": {"created_at": "asc"}},
            headers={"Authorization": f"Bearer {gw.key}"},
        ).json()["data"]
        return [r for r in found if given in (r["request_id"], r["properties"].get(REUSED_ID_PROPERTY))]

    def two() -> list[dict[str, object]] | None:
        found = rows()
        return found if len(found) == 2 else None

    both = wait_for(two, timeout=10)
    assert both[0]["request_id"] == given and REUSED_ID_PROPERTY not in both[0]["properties"]
    assert both[1]["request_id"] != given and both[1]["properties"][REUSED_ID_PROPERTY] == given
