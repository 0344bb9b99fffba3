"""An OpenAI SDK call through heliport, then the same request read back through the query API.

heliport runs as ``heliport serve`` does (proxy, local queue, in-process consumer, log database); the
query API answers from the database the consumer wrote, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import Gateway, start_gateway
from tests.mock_provider import MockProvider


@pytest.fixture(params=["sqlite", "postgres"])
def served(
    request: pytest.FixtureRequest, tmp_path: Path, mock_provider: MockProvider, pg_dsn_sync: str
) -> Iterator[Gateway]:
    database_url = pg_dsn_sync if request.param == "postgres" else None
    gw = start_gateway(tmp_path, mock_provider.url, pipeline=True, database_url=database_url)
    yield gw
    gw.stop()


def _query(gw: Gateway, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = httpx.post(f"{gw.url}/v1/request/query", json=body, headers={"Authorization": f"Bearer {gw.key}"})
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def test_a_proxied_call_is_found_by_its_property_with_tokens_cost_and_bodies(served: Gateway) -> None:
    gw = served
    request_id = str(uuid.uuid4())
    completion = gw.openai().chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Name a colour"}],
        extra_headers={
            "Helicone-Request-Id": request_id,
            "Helicone-Property-Ticket": "T-1",
            "Helicone-User-Id": "alice",
            "Helicone-Session-Id": "support-1",
        },
    )
    # Header names carry no case, so Helicone-Property-Ticket is stored (and filtered) as "ticket".
    by_property = {"request_response_rmt": {"properties": {"ticket": {"equals": "T-1"}}}}
    deadline = time.monotonic() + 10
    found: list[dict[str, Any]] = []
    while not found and time.monotonic() < deadline:  # the consumer writes shortly after the answer
        found = _query(gw, {"filter": by_property})
        time.sleep(0.05)
    assert [r["request_id"] for r in found] == [request_id]
    row = found[0]
    assert row["request_user_id"] == "alice" and row["properties"] == {"ticket": "T-1"}
    assert row["prompt_tokens"] == completion.usage.prompt_tokens and row["cost"] > 0
    assert row["response_status"] == 200 and row["model"].startswith("gpt-4o-mini")
    one = httpx.get(
        f"{gw.url}/v1/request/{request_id}",
        params={"includeBody": "true"},
        headers={"Authorization": f"Bearer {gw.key}"},
    ).json()["data"]
    assert one["request_body"]["messages"] == [{"role": "user", "content": "Name a colour"}]
    assert one["response_body"]["choices"][0]["message"]["content"] == completion.choices[0].message.content
    sessions = httpx.post(
        f"{gw.url}/v1/session/query",
        json={"search": "", "timeFilter": {"startTimeUnixMs": 0, "endTimeUnixMs": 4102444800000},
              "timezoneDifference": 0, "filter": "all"},
        headers={"Authorization": f"Bearer {gw.key}"},
    ).json()["data"]  # fmt: skip
    assert [(s["session_id"], s["total_requests"]) for s in sessions] == [("support-1", 1)]
