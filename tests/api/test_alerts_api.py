"""``/v1/alerts`` through a live heliport (``heliport serve``'s app, with its local pipeline and alert
timer): the contract's shapes, Slack URLs masked, bad input named, organisations kept apart, the timer
firing an alert into a Slack stand-in, the test route through a real SMTP server, and the preview."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from heliport.auth import create_key
from heliport.logs.row import RequestRow
from heliport.store.keys import Organisation
from heliport.store.logdb_sqlite import SqliteLogDb
from tests.alerts.smtp import SmtpServer
from tests.harness import Gateway, start_gateway
from tests.logs.records import chat_row
from tests.mock_provider import MockProvider
from tests.webhooks.receiver import Receiver

PUBLIC = "https://heliport.example"
SLACK_PATH = "/services/T000/B000/XXXXsecretabcd"


@pytest.fixture
def slack() -> Iterator[Receiver]:
    with Receiver() as standin:
        yield standin


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def served(tmp_path: Path, mock_provider: MockProvider, slack: Receiver, smtp: SmtpServer) -> Iterator[Gateway]:
    gw = start_gateway(
        tmp_path,
        mock_provider.url,
        pipeline=True,
        trusted_origins=frozenset({mock_provider.url, slack.url}),
        public_url=PUBLIC,
        smtp_url=smtp.url,
        alert_email_from="alerts@heliport.test",
        alert_interval=0.2,
    )
    gw.extra["data_dir"] = tmp_path
    yield gw
    gw.stop()


def _client(gw: Gateway, key: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=gw.url, headers={"Authorization": f"Bearer {key or gw.key}"}, timeout=20)


def _second_key(gw: Gateway) -> str:
    async def make() -> str:
        org = Organisation(id=f"org-b-{uuid.uuid4().hex[:6]}", name="b", created_at=datetime.now(UTC))
        await gw.store.put_org(org)
        plain, _ = await create_key(gw.store, org.id, "b")
        return plain

    return asyncio.run(make())


def _seed(gw: Gateway, rows: list[RequestRow]) -> None:
    async def write() -> None:
        db = SqliteLogDb(gw.extra["data_dir"] / "logs.sqlite3")
        await db.migrate()
        assert await db.insert_requests(rows) == len(rows)
        await db.aclose()

    asyncio.run(write())


def _ok(answer: httpx.Response) -> Any:
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["error"] is None
    return body["data"]


def _error(answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["data"] is None and isinstance(body["error"], str)
    message: str = body["error"]
    return message


def _body(slack: Receiver, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Too many requests",
        "metric": "count",
        "threshold": 3,
        "windowMinutes": 30,
        "channels": [{"type": "slack", "url": slack.url + SLACK_PATH}, {"type": "email", "address": "ops@example.com"}],
    }
    return body | overrides


def test_create_list_get_patch_delete_with_the_slack_url_masked(served: Gateway, slack: Receiver) -> None:
    with _client(served) as api:
        made = _ok(api.post("/v1/alerts", json=_body(slack, metric="latency", aggregation="p95", groupBy="model")))
        assert made["channels"][1] == {"type": "email", "address": "ops@example.com"}
        slack_answer = made["channels"][0]
        assert slack_answer == {"type": "slack", "url": "http://127.0.0.1/****abcd"}
        assert "secret" not in str(made)
        assert made["metric"] == "latency" and made["aggregation"] == "p95" and made["groupBy"] == "model"
        assert made["threshold"] == 3.0 and made["windowMinutes"] == 30 and made["minimumRequests"] == 1
        assert made["filter"] == "all" and made["enabled"] is True
        assert made["state"] == "ok" and made["triggeredGroups"] == [] and made["lastEvaluatedAt"] is None
        alert_id = made["id"]
        # count and error_rate report no aggregation.
        counted = _ok(api.post("/v1/alerts", json=_body(slack, aggregation="max")))
        assert counted["aggregation"] is None

        assert [a["id"] for a in _ok(api.get("/v1/alerts"))] == [alert_id, counted["id"]]
        assert _ok(api.get(f"/v1/alerts/{alert_id}"))["name"] == "Too many requests"

        # The masked URL sent back unchanged keeps the stored one; a new e-mail replaces the old.
        patched = _ok(
            api.patch(
                f"/v1/alerts/{alert_id}",
                json={
                    "name": "Slow",
                    "threshold": 2000.5,
                    "groupBy": None,
                    "channels": [slack_answer, {"type": "email", "address": "oncall@example.com"}],
                },
            )
        )
        assert patched["name"] == "Slow" and patched["threshold"] == 2000.5 and patched["groupBy"] is None
        assert patched["metric"] == "latency" and patched["aggregation"] == "p95"
        assert patched["channels"][0] == slack_answer and patched["channels"][1]["address"] == "oncall@example.com"
        assert patched["updated_at"] >= made["updated_at"]
        # ... which the test route proves: the stand-in gets the message at the stored path.
        results = _ok(api.post(f"/v1/alerts/{alert_id}/test"))
        assert results[0] == {
            "channel": "slack", "target": slack_answer["url"], "ok": True, "error": None, "queued": False,
        }  # fmt: skip
        assert len(slack.received(SLACK_PATH)) == 1

        assert _ok(api.delete(f"/v1/alerts/{alert_id}")) == {"deleted": True}
        _error(api.get(f"/v1/alerts/{alert_id}"), 404)
        _error(api.delete(f"/v1/alerts/{alert_id}"), 404)
        assert [a["id"] for a in _ok(api.get("/v1/alerts"))] == [counted["id"]]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"metric": "tokens"}, "metric"),
        ({"threshold": "5"}, "threshold"),
        ({"windowMinutes": 0}, "windowMinutes"),
        ({"windowMinutes": 43201}, "windowMinutes"),
        ({"minimumRequests": -1}, "minimumRequests"),
        ({"aggregation": "p100"}, "aggregation"),
        ({"aggregation": "median"}, "aggregation"),
        ({"groupBy": "team"}, "groupBy"),
        ({"groupBy": "property:"}, "groupBy"),
        ({"filter": {"request_response_rmt": {"nope": {"equals": "x"}}}}, "filter.request_response_rmt.nope"),
        ({"channels": []}, "channels"),
        ({"channels": [{"type": "pager", "to": "x"}]}, "channels.0"),
        ({"channels": [{"type": "email", "address": "not an address"}]}, "channels.0.email.address"),
        ({"channels": [{"type": "email", "address": "a@b.com\r\nBcc: x@y.com"}]}, "channels.0.email.address"),
        ({"channels": [{"type": "slack", "url": "http://hooks.slack.com/services/T/B/x"}]}, "channels[0].url"),
        ({"channels": [{"type": "slack", "url": "https://10.0.0.8/hook"}]}, "channels[0].url"),
        ({"channels": [{"type": "slack", "url": "https://169.254.169.254/latest"}]}, "channels[0].url"),
        ({"channels": [{"type": "slack", "url": "https://hooks.slack.com/****abcd"}]}, "channels[0].url"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    served: Gateway, slack: Receiver, overrides: dict[str, Any], field: str
) -> None:
    with _client(served) as api:
        message = _error(api.post("/v1/alerts", json=_body(slack, **overrides)), 400)
        assert field in message, message
        assert _ok(api.get("/v1/alerts")) == []


def test_bad_patch_preview_and_history_input_is_a_400_naming_the_field(served: Gateway, slack: Receiver) -> None:
    with _client(served) as api:
        alert_id = _ok(api.post("/v1/alerts", json=_body(slack)))["id"]
        assert "windowMinutes" in _error(api.patch(f"/v1/alerts/{alert_id}", json={"windowMinutes": "x"}), 400)
        assert "filter.bogus" in _error(api.patch(f"/v1/alerts/{alert_id}", json={"filter": {"bogus": {}}}), 400)
        assert "metric" in _error(api.post("/v1/alerts/preview", json={"windowMinutes": 5}), 400)
        assert "limit" in _error(api.get(f"/v1/alerts/{alert_id}/history?limit=0"), 400)
        assert "limit" in _error(api.get(f"/v1/alerts/{alert_id}/history?limit=x"), 400)
        # Nothing was changed by the refused patches.
        assert _ok(api.get(f"/v1/alerts/{alert_id}"))["filter"] == "all"


def test_another_organisation_sees_none_of_it(served: Gateway, slack: Receiver) -> None:
    now = datetime.now(UTC)
    _seed(served, [chat_row(served.org_id, created_at=now - timedelta(minutes=1)) for _ in range(4)])
    other = _second_key(served)
    with _client(served) as api, _client(served, other) as theirs:
        alert_id = _ok(api.post("/v1/alerts", json=_body(slack)))["id"]
        for method, path in [
            ("GET", f"/v1/alerts/{alert_id}"),
            ("PATCH", f"/v1/alerts/{alert_id}"),
            ("DELETE", f"/v1/alerts/{alert_id}"),
            ("GET", f"/v1/alerts/{alert_id}/history"),
            ("POST", f"/v1/alerts/{alert_id}/test"),
        ]:
            json_body = {"name": "mine now"} if method == "PATCH" else None
            assert alert_id in _error(theirs.request(method, path, json=json_body), 404)
        assert _ok(theirs.get("/v1/alerts")) == []
        preview = _ok(theirs.post("/v1/alerts/preview", json={"metric": "count", "windowMinutes": 30}))
        assert preview["groups"] == [{"group": None, "value": 0.0, "requests": 0, "over": False}]
        assert _ok(api.get(f"/v1/alerts/{alert_id}"))["name"] == "Too many requests"
    assert slack.received() == []


def test_preview_measures_the_window_per_group(served: Gateway) -> None:
    now = datetime.now(UTC)
    _seed(
        served,
        [chat_row(served.org_id, created_at=now - timedelta(minutes=1), model="a", delay_ms=100.0) for _ in range(3)]
        + [chat_row(served.org_id, created_at=now - timedelta(minutes=2), model="b", delay_ms=900.0)]
        + [chat_row(served.org_id, created_at=now - timedelta(hours=2), model="c", delay_ms=5.0)],
    )
    with _client(served) as api:
        body = {"metric": "latency", "aggregation": "max", "windowMinutes": 60, "groupBy": "model", "threshold": 500}
        preview = _ok(api.post("/v1/alerts/preview", json=body))
        assert preview["groups"] == [
            {"group": "b", "value": 900.0, "requests": 1, "over": True},
            {"group": "a", "value": 100.0, "requests": 3, "over": False},
        ]
        assert preview["from"] < preview["to"]
        # minimumRequests keeps b under the line; nothing is stored by a preview.
        preview = _ok(api.post("/v1/alerts/preview", json=body | {"minimumRequests": 2}))
        assert [g["over"] for g in preview["groups"]] == [False, False]
        assert _ok(api.get("/v1/alerts")) == []


def test_the_serve_timer_fires_an_alert_and_the_history_links_the_requests(
    served: Gateway, slack: Receiver, smtp: SmtpServer
) -> None:
    now = datetime.now(UTC)
    _seed(served, [chat_row(served.org_id, created_at=now - timedelta(minutes=1), model="gpt-4o") for _ in range(4)])
    with _client(served) as api:
        body = _body(slack, name="Busy model", groupBy="model", minimumRequests=4)
        alert_id = _ok(api.post("/v1/alerts", json=body))["id"]
        (delivery,) = slack.wait_for(SLACK_PATH, 1)
        assert delivery.body["text"].startswith("Triggered: Busy model")
        deadline = time.monotonic() + 20
        while not (history := _ok(api.get(f"/v1/alerts/{alert_id}/history"))) and time.monotonic() < deadline:
            time.sleep(0.05)
        (entry,) = history
        assert entry["alertId"] == alert_id and entry["state"] == "triggered" and entry["group"] == "gpt-4o"
        assert entry["value"] == 4.0 and entry["threshold"] == 3.0 and entry["requests"] == 4
        assert entry["requestsUrl"].startswith(PUBLIC + "/dashboard/#/requests?")
        assert "model=gpt-4o" in entry["requestsUrl"] and f"alert={alert_id}" in entry["requestsUrl"]
        alert = _ok(api.get(f"/v1/alerts/{alert_id}"))
        assert alert["state"] == "triggered" and alert["triggeredGroups"] == ["gpt-4o"]
        assert alert["lastEvaluatedAt"] is not None
        deadline = time.monotonic() + 20
        while not smtp.messages() and time.monotonic() < deadline:
            time.sleep(0.05)
        ((_, recipients, mail),) = smtp.messages()
        assert recipients == ["ops@example.com"] and "Busy model" in mail["Subject"]
        # Still over at the next runs: no second message.
        time.sleep(0.6)
        assert len(slack.received(SLACK_PATH)) == 1


def test_the_test_route_reports_each_channel(served: Gateway, slack: Receiver, smtp: SmtpServer) -> None:
    slack.script("/gone", [404])
    channels = [
        {"type": "slack", "url": slack.url + SLACK_PATH},
        {"type": "slack", "url": slack.url + "/gone"},
        {"type": "email", "address": "ops@example.com"},
        {"type": "email", "address": "refused@example.com"},
    ]
    with _client(served) as api:
        alert_id = _ok(api.post("/v1/alerts", json=_body(slack, channels=channels, enabled=False)))["id"]
        results = _ok(api.post(f"/v1/alerts/{alert_id}/test"))
    assert [(r["channel"], r["ok"]) for r in results] == [
        ("slack", True),
        ("slack", False),
        ("email", True),
        ("email", False),
    ]
    assert results[0]["target"].endswith("/****abcd") and results[2]["target"] == "ops@example.com"
    assert "404" in results[1]["error"] and "550" in results[3]["error"]
    assert slack.received(SLACK_PATH)[0].body["text"].startswith("Test notification: ")
    ((_, recipients, mail),) = smtp.messages()
    assert recipients == ["ops@example.com"] and mail["Subject"].startswith("[heliport] Test notification")
