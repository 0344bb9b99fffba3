"""``POST /custom/v1/log`` (Helicone's manual logger) with deeply nested JSON: a 400 in the endpoint's
``{"error": {...}}`` shape naming the field, never a 500."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from heliport.config import Settings
from tests.harness import Gateway

LIMIT = Settings.max_json_depth
DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def payload(**response: Any) -> dict[str, Any]:
    return {
        "providerRequest": {"url": "custom-model-nopath", "json": {"model": "m"}, "meta": {}},
        "providerResponse": {"status": 200, "headers": {}, **response},
    }


def deep_response_json(depth: int) -> bytes:
    """A payload whose ``providerResponse.json`` nests ``depth`` objects, written by hand (json.dumps
    gives up at ~1000 levels)."""
    head = json.dumps(payload(json="@"))
    return head.replace('"@"', '{"a":' * depth + "1" + "}" * depth).encode()


def _post(gateway: Gateway, body: bytes) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/custom/v1/log",
        content=body,
        headers={"Authorization": f"Bearer {gateway.key}", "Content-Type": "application/json"},
        timeout=30,
    )


def test_a_body_of_100000_nested_arrays_is_a_400_as_it_is_not_an_object(gateway: Gateway) -> None:
    response = _post(gateway, DEEP_ARRAY)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["message"] == "Invalid log payload: Expected `object`, got `array`"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (deep_response_json(2000), "$.providerResponse"),
        # Decodable, but past the limit (the field sits two levels down: payload > providerResponse > json).
        (json.dumps(payload(json=nested(LIMIT - 1))).encode(), "$.providerResponse.json"),
        (
            json.dumps({**payload(json={}), "providerRequest": {"json": nested(LIMIT - 1)}}).encode(),
            "$.providerRequest.json",
        ),
        (
            json.dumps({**payload(json={}), "providerRequest": {"meta": nested(LIMIT - 1)}}).encode(),
            "$.providerRequest.meta",
        ),
    ],
    ids=["response-json-2000", "response-json-limit+1", "request-json-limit+1", "meta-limit+1"],
)
def test_deep_json_is_a_400_naming_the_field(gateway: Gateway, body: bytes, param: str) -> None:
    response = _post(gateway, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "json_too_deep" and error["param"] == param
    assert f"more than {LIMIT} levels deep" in error["message"]


def test_json_at_the_limit_is_logged(gateway: Gateway) -> None:
    response = _post(gateway, json.dumps(payload(json=nested(LIMIT - 2))).encode())
    assert response.status_code == 200, response.text
    record = gateway.record(response.json()["id"])
    assert record.response_body == json.dumps(nested(LIMIT - 2), separators=(",", ":"))


@pytest.mark.parametrize(
    ("timing", "param"),
    [
        ({"startTime": {"seconds": 10**15}, "endTime": {"seconds": 10**15}}, "$.timing.startTime"),
        ({"startTime": {"seconds": 1_700_000_000}, "endTime": {"seconds": 2**63 - 1}}, "$.timing.endTime"),
        ({"startTime": {"seconds": -(2**63)}, "endTime": {"seconds": 1}}, "$.timing.startTime"),
        ({"startTime": {"seconds": 0, "milliseconds": 10**18}, "endTime": {"seconds": 0}}, "$.timing.startTime"),
    ],
)
def test_a_time_beyond_what_a_datetime_holds_is_a_400_naming_it(
    gateway: Gateway, timing: dict[str, Any], param: str
) -> None:
    """Found by the fuzz suite: datetime.fromtimestamp raised ValueError/OverflowError/OSError, a 500."""
    response = _post(gateway, json.dumps({**payload(json={"usage": {}}), "timing": timing}).encode())
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
