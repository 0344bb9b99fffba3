"""Helicone-Fallbacks end to end: each attempt a real request to the mock provider, each one logged."""

from __future__ import annotations

import json

import httpx
import msgspec
import pytest

from tests.harness import Gateway, wait_for
from tests.mock_provider import MockProvider

MESSAGES = [{"role": "user", "content": "Say hello"}]


@pytest.fixture(autouse=True)
def _fresh_mock(mock_provider: MockProvider) -> None:
    mock_provider.clear()


def _post(gateway: Gateway, fallbacks: list[dict[str, object]], path: str = "/v1/gateway/oai/v1") -> httpx.Response:
    return httpx.post(
        f"{gateway.url}{path}/chat/completions",
        json={"model": "gpt-4o-mini", "messages": MESSAGES},
        headers={
            "Helicone-Auth": f"Bearer {gateway.key}",
            "Authorization": "Bearer sk-callers-own",
            "Helicone-Fallbacks": json.dumps(fallbacks),
        },
        timeout=10,
    )


def test_moves_on_at_an_on_code_and_says_which_answered(gateway: Gateway, mock_provider: MockProvider) -> None:
    fallbacks = [
        {"target-url": mock_provider.url, "headers": {"Authorization": "Bearer sk-first", "x-mock-status": "503"},
         "onCodes": [429, {"from": 500, "to": 599}]},
        {"target-url": mock_provider.url, "headers": {"Authorization": "Bearer sk-second"}, "onCodes": [],
         "bodyKeyOverride": {"model": "gpt-4.1-mini", "metadata": {"via": "fallback"}}},
    ]  # fmt: skip
    response = _post(gateway, fallbacks)
    assert response.status_code == 200
    assert response.headers["helicone-fallback-index"] == "1"

    first, second = mock_provider.requests
    assert first.headers["authorization"] == "Bearer sk-first"
    assert second.headers["authorization"] == "Bearer sk-second"  # replaced, never the caller's own
    assert "x-mock-status" not in second.headers
    assert second.headers["content-type"] == "application/json"
    body = msgspec.json.decode(second.body)
    assert body["model"] == "gpt-4.1-mini" and body["metadata"] == {"via": "fallback"}
    assert body["messages"] == MESSAGES

    request_id = response.headers["helicone-id"]
    final = gateway.record(request_id)
    assert final.fallback_index == 1 and final.status == 200
    attempt = wait_for(
        lambda: next(
            (r for r in gateway.queue.records if f"fallback 0 of request {request_id}" in " ".join(r.errors)), None
        )
    )
    assert attempt.status == 503 and attempt.fallback_index == 0
    assert attempt.request_id != request_id
    assert "Mock error 503" in (attempt.response_body or "") or "server_error" in (attempt.response_body or "")


def test_a_status_outside_on_codes_is_returned(gateway: Gateway, mock_provider: MockProvider) -> None:
    fallbacks = [
        {"target-url": mock_provider.url, "headers": {"x-mock-status": "400"}, "onCodes": [500]},
        {"target-url": mock_provider.url, "headers": {}, "onCodes": []},
    ]
    response = _post(gateway, fallbacks)
    assert response.status_code == 400
    assert response.headers["helicone-fallback-index"] == "0"
    assert len(mock_provider.requests) == 1


def test_the_last_fallback_answers_whatever_its_status(gateway: Gateway, mock_provider: MockProvider) -> None:
    fallbacks = [
        {"target-url": mock_provider.url, "headers": {"x-mock-status": "500"}, "onCodes": [500]},
        {"target-url": mock_provider.url, "headers": {"x-mock-status": "502"}, "onCodes": [502]},
    ]
    response = _post(gateway, fallbacks, path="/v1/gateway/v1")  # the generic route needs no Target-Url
    assert response.status_code == 502
    assert response.headers["helicone-fallback-index"] == "1"
    assert [r.path for r in mock_provider.requests] == ["/v1/chat/completions"] * 2


@pytest.mark.parametrize(
    "target",
    ["https://169.254.169.254", "http://example.com", "https://attacker.example.net"],
)
def test_fallback_targets_pass_the_same_guard_as_target_urls(
    gateway: Gateway, mock_provider: MockProvider, target: str
) -> None:
    response = _post(gateway, [{"target-url": target, "headers": {}, "onCodes": []}])
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "Helicone-Fallbacks"
    assert mock_provider.requests == []


def test_a_malformed_fallback_list_is_a_400(gateway: Gateway, mock_provider: MockProvider) -> None:
    response = _post(gateway, [{"target-url": mock_provider.url, "onCodes": [500]}])
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "Helicone-Fallbacks" and "headers" in error["message"]


@pytest.mark.parametrize(
    ("headers", "named"),
    [
        ({"x-key": "a\r\nx-injected: 1"}, "'x-key'"),  # would split the upstream request (a plain-text 500 before)
        ({"Transfer-Encoding": "chunked"}, "'Transfer-Encoding'"),  # would reach the upstream as a malformed request
        ({"Content-Length": "1"}, "'Content-Length'"),
        ({"x key": "v"}, "'x key'"),
    ],
)
def test_fallback_headers_that_cannot_go_on_the_wire_are_a_400(
    gateway: Gateway, mock_provider: MockProvider, headers: dict[str, str], named: str
) -> None:
    fallbacks = [
        {"target-url": mock_provider.url, "headers": {"x-mock-status": "503"}, "onCodes": [503]},
        {"target-url": mock_provider.url, "headers": headers, "onCodes": []},
    ]
    response = _post(gateway, fallbacks)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "invalid_header" and error["param"] == "Helicone-Fallbacks"
    assert "fallback 1" in error["message"] and named in error["message"]
    assert mock_provider.requests == []  # refused before the first attempt, not between attempts


def test_a_fallback_target_url_that_is_not_a_url_is_a_400(gateway: Gateway, mock_provider: MockProvider) -> None:
    response = _post(gateway, [{"target-url": "https://api.openai.com/\u0000", "headers": {}, "onCodes": []}])
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_header" and error["param"] == "Helicone-Fallbacks"
    assert "fallback 0" in error["message"] and "target-url" in error["message"]
    assert mock_provider.requests == []


def test_a_body_too_deep_for_a_body_key_override_is_a_400_before_any_attempt(
    gateway: Gateway, mock_provider: MockProvider
) -> None:
    fallbacks = [{"target-url": mock_provider.url, "headers": {}, "onCodes": [], "bodyKeyOverride": {"model": "m"}}]
    response = httpx.post(
        f"{gateway.oai_base}/chat/completions",
        content='{"a": ' * 5000 + "1" + "}" * 5000,  # a plain-text 500 before
        headers={"Helicone-Auth": f"Bearer {gateway.key}", "Helicone-Fallbacks": json.dumps(fallbacks)},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_body" and error["param"] == "Helicone-Fallbacks"
    assert mock_provider.requests == []
