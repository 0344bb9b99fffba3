"""Webhook deliveries end to end: the official ``openai`` SDK through a live heliport running the local
log pipeline (queue, consumer, SQLite) as ``heliport serve`` does, webhooks made through the query API,
and a receiver on 127.0.0.1 (a trusted origin) that checks every signature against the raw bytes."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from heliport.webhooks.delivery import BODY_LIMIT
from heliport.webhooks.signing import verify
from tests.harness import Gateway
from tests.webhooks.receiver import Delivery, Receiver

QUESTION = "What is the capital of France?"


def _api(gw: Gateway) -> httpx.Client:
    return httpx.Client(base_url=gw.url, headers={"Authorization": f"Bearer {gw.key}"}, timeout=10)


def _create(gw: Gateway, destination: str, **body: Any) -> dict[str, Any]:
    with _api(gw) as api:
        answer = api.post("/v1/webhooks", json={"destination": destination, **body})
    assert answer.status_code == 200, answer.text
    made: dict[str, Any] = answer.json()["data"]
    return made


def _listed(gw: Gateway) -> dict[str, dict[str, Any]]:
    with _api(gw) as api:
        answer = api.get("/v1/webhooks")
    assert answer.status_code == 200, answer.text
    return {w["id"]: w for w in answer.json()["data"]}


def _ask(gw: Gateway, content: str = QUESTION, **headers: str) -> str:
    request_id = str(uuid.uuid4())
    gw.openai().chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": content}],
        extra_headers={"Helicone-Request-Id": request_id, **headers},
    )
    return request_id


def _until_logged(gw: Gateway, webhook_id: str, *, delivered: int = 0, failed: int = 0, timeout: float = 20) -> Any:
    """The webhook's listing once its delivery log holds at least these counts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hook = _listed(gw)[webhook_id]
        log = hook["delivery"]
        if log["delivered"] >= delivered and log["failed"] >= failed:
            return hook
        time.sleep(0.05)
    raise AssertionError(f"delivery log of {webhook_id}: {_listed(gw)[webhook_id]['delivery']}")


def _signed(delivery: Delivery, key: str) -> bool:
    return verify(key, delivery.raw, delivery.headers["helicone-signature"])


def test_receivers_get_exactly_what_filters_and_sample_rate_allow_signed(served: Gateway, receiver: Receiver) -> None:
    search = _create(
        served,
        f"{receiver.url}/search",
        config={"propertyFilters": [{"key": "Team", "value": "search"}]},
        includeData=True,
    )
    never = _create(served, f"{receiver.url}/never", config={"sampleRate": 0})
    everything = _create(served, f"{receiver.url}/all", config={"sampleRate": 100})
    both = _create(
        served,
        f"{receiver.url}/both",
        config={"propertyFilters": [{"key": "team", "value": "search"}, {"key": "tier", "value": "gold"}]},
    )

    first = _ask(served, **{"Helicone-Property-Team": "search", "Helicone-User-Id": "alice"})
    second = _ask(served, **{"Helicone-Property-Team": "ads"})
    third = _ask(served)

    _until_logged(served, everything["id"], delivered=3)
    _until_logged(served, search["id"], delivered=1)
    time.sleep(0.5)  # anything still on its way would arrive now

    assert sorted(d.body["request_id"] for d in receiver.received("/all")) == sorted([first, second, third])
    assert [d.body["request_id"] for d in receiver.received("/search")] == [first]
    assert receiver.received("/never") == [] and receiver.received("/both") == []
    assert all(_signed(d, everything["hmac_key"]) for d in receiver.received("/all"))
    [delivered] = receiver.received("/search")
    assert _signed(delivered, search["hmac_key"])
    assert not _signed(delivered, everything["hmac_key"])  # each webhook signs with its own key
    assert delivered.headers["helicone-signature"] == delivered.headers["helicone-signature"].lower()

    body = delivered.body
    assert body["user_id"] == "alice"
    assert QUESTION in body["request_body"] and "choices" in body["response_body"]
    assert body["model"] and body["provider"] == "OPENAI"
    metadata = body["metadata"]
    assert set(metadata) == {"cost", "promptTokens", "completionTokens", "totalTokens", "latencyMs"}
    assert (
        metadata["promptTokens"] > 0
        and metadata["totalTokens"] == metadata["promptTokens"] + metadata["completionTokens"]
    )
    # Without includeData: only the request's identity and bodies; no user_id when none was set.
    [plain] = [d.body for d in receiver.received("/all") if d.body["request_id"] == third]
    assert set(plain) == {"request_id", "request_body", "response_body"}

    # The signed link answers the full bodies without a key; altered, it answers nothing.
    link = body["request_response_url"]
    bodies = httpx.get(link, timeout=10)
    assert bodies.status_code == 200, bodies.text
    assert bodies.json()["request"]["messages"][0]["content"] == QUESTION
    assert bodies.json()["response"]["choices"]
    assert httpx.get(link.replace("signature=", "signature=0"), timeout=10).status_code == 404
    assert httpx.get(link.replace(first, third), timeout=10).status_code == 404

    hooks = _listed(served)
    assert hooks[search["id"]]["delivery"]["delivered"] == 1
    assert hooks[never["id"]]["delivery"] == {
        "delivered": 0,
        "failed": 0,
        "last_status": None,
        "last_error": None,
        "last_attempt_at": None,
    }
    assert hooks[everything["id"]]["delivery"]["last_status"] == 200
    assert hooks[both["id"]]["delivery"]["delivered"] == 0


def test_a_receiver_that_fails_twice_then_succeeds_gets_one_delivery(served: Gateway, receiver: Receiver) -> None:
    receiver.script("/flaky", [503, 500, 200])
    hook = _create(served, f"{receiver.url}/flaky")
    request_id = _ask(served)

    logged = _until_logged(served, hook["id"], delivered=1)
    attempts = receiver.received("/flaky")
    assert [d.status for d in attempts] == [503, 500, 200]
    # The same signed bytes each time: one delivery, tried three times.
    assert len({d.raw for d in attempts}) == 1 and all(_signed(d, hook["hmac_key"]) for d in attempts)
    assert attempts[0].body["request_id"] == request_id
    assert logged["delivery"]["delivered"] == 1 and logged["delivery"]["failed"] == 0
    with _api(served) as api:
        assert api.get(f"/v1/webhooks/{hook['id']}/dead-letters").json()["data"] == []


def test_a_refused_delivery_is_a_dead_letter_the_api_lists(served: Gateway, receiver: Receiver) -> None:
    receiver.script("/gone", [410])
    hook = _create(served, f"{receiver.url}/gone")
    request_id = _ask(served)

    logged = _until_logged(served, hook["id"], failed=1)
    assert len(receiver.received("/gone")) == 1  # a 4xx other than 429 is final: not retried
    assert logged["delivery"]["last_status"] == 410 and "410" in logged["delivery"]["last_error"]
    with _api(served) as api:
        [letter] = api.get(f"/v1/webhooks/{hook['id']}/dead-letters").json()["data"]
    assert letter["request_id"] == request_id and letter["status"] == 410 and letter["attempts"] == 1
    assert letter["payload"].encode() == receiver.received("/gone")[0].raw


def test_bodies_over_10_kb_are_replaced_by_a_note_and_stay_behind_the_link(served: Gateway, receiver: Receiver) -> None:
    hook = _create(served, f"{receiver.url}/big", includeData=True)
    long = "x" * (BODY_LIMIT + 100)
    _ask(served, long)
    [delivery] = receiver.wait_for("/big", 1)
    body = delivery.body
    assert long not in body["request_body"] and "over the webhook limit" in body["request_body"]
    assert "choices" in body["response_body"]  # the short one is sent whole
    assert _signed(delivery, hook["hmac_key"])
    full = httpx.get(body["request_response_url"], timeout=10).json()
    assert full["request"]["messages"][0]["content"] == long


def test_deleting_a_webhook_stops_its_deliveries(served: Gateway, receiver: Receiver) -> None:
    gone = _create(served, f"{receiver.url}/deleted")
    kept = _create(served, f"{receiver.url}/kept")
    with _api(served) as api:
        answer = api.delete(f"/v1/webhooks/{gone['id']}")
    assert answer.status_code == 200 and answer.json() == {"data": None, "error": None}
    _ask(served)
    _until_logged(served, kept["id"], delivered=1)
    time.sleep(0.3)
    assert receiver.received("/deleted") == []
    assert set(_listed(served)) == {kept["id"]}


def test_a_slow_receiver_never_slows_logging(served: Gateway, receiver: Receiver) -> None:
    receiver.script("/slow", [200], delay=4.0)
    hook = _create(served, f"{receiver.url}/slow")
    started = time.monotonic()
    first, second = _ask(served), _ask(served)
    with _api(served) as api:
        for request_id in (first, second):
            while api.get(f"/v1/request/{request_id}").status_code != 200:
                assert time.monotonic() - started < 3.0, "logging waited for the receiver"
                time.sleep(0.02)
    assert time.monotonic() - started < 3.0
    assert _listed(served)[hook["id"]]["delivery"]["delivered"] == 0  # still on its way
    _until_logged(served, hook["id"], delivered=2)
