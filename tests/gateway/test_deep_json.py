"""Deeply nested JSON on the AI gateway's routes: a 400 in OpenAI's error shape, never a 500.

msgspec (like every JSON decoder in Python) recurses once per nesting level and gives up with a
RecursionError near the interpreter's recursion limit; below that, ``HELIPORT_MAX_JSON_DEPTH``
(default 128) is the explicit bound. (The pass-through proxy forwards bodies opaquely, deep ones
included: tests/proxy/test_passthrough.py.)
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from heliport.config import Settings
from heliport.logs.record import LogRecord
from tests.harness import Gateway
from tests.mock_provider import MockProvider

LIMIT = Settings.max_json_depth

#: Far deeper than any decoder goes: msgspec raises RecursionError on these.
DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 2000 + b"1" + b"}" * 2000


def nested(depth: int) -> Any:
    """A JSON value nesting ``depth`` objects (``nested(1) == {"a": 1}``)."""
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def depth_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


def chat_with_schema_depth(total: int) -> dict[str, Any]:
    """A chat body with one tool whose parameter schema makes the whole body exactly ``total`` deep."""
    body: dict[str, Any] = {
        "model": "gpt-4o-mini/openai",
        "messages": [{"role": "user", "content": "Hello"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
    }
    # body(1) > tools(2) > tool(3) > function(4) > parameters(5) > ...
    body["tools"][0]["function"]["parameters"] = {"type": "object", "x": nested(total - 5)}
    assert depth_of(body) == total
    return body


def _post(gateway: Gateway, path: str, body: bytes) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}{path}",
        content=body,
        headers={"Authorization": f"Bearer {gateway.key}", "Content-Type": "application/json"},
        timeout=30,
    )


def _assert_too_deep(response: httpx.Response, param: str | None) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "json_too_deep" and response.headers["helicone-error"] == "json_too_deep"
    assert f"more than {LIMIT} levels deep" in error["message"]
    assert error["param"] == param
    return error


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses"])
@pytest.mark.parametrize(
    ("body", "param"),
    [
        (DEEP_ARRAY, None),
        (DEEP_OBJECT, "a"),
        # Decodable, but past the limit: refused before anything walks it.
        (json.dumps({"model": "gpt-4o-mini", "metadata": nested(LIMIT)}).encode(), "metadata.a.a.a"),
    ],
    ids=["array-100000", "object-2000", "object-limit+1"],
)
def test_deep_json_on_the_gateway_routes_is_a_400_in_openai_shape(
    ai_gateway: Gateway, mock_provider: MockProvider, path: str, body: bytes, param: str | None
) -> None:
    response = _post(ai_gateway, path, body)
    _assert_too_deep(response, param)
    assert mock_provider.requests == []  # refused before any provider was called
    record: LogRecord = ai_gateway.record(response.headers["helicone-id"])
    assert record.status == 400 and "levels deep" in record.errors[0]


def test_the_param_names_the_path_into_a_tool_schema(ai_gateway: Gateway) -> None:
    response = _post(ai_gateway, "/v1/chat/completions", json.dumps(chat_with_schema_depth(LIMIT + 1)).encode())
    _assert_too_deep(response, "tools[0].function.parameters")


def test_a_body_exactly_at_the_limit_is_served(ai_gateway: Gateway, mock_provider: MockProvider) -> None:
    response = _post(ai_gateway, "/v1/chat/completions", json.dumps(chat_with_schema_depth(LIMIT)).encode())
    assert response.status_code == 200, response.text
    (sent,) = mock_provider.requests
    assert depth_of(json.loads(sent.body)) == LIMIT


@pytest.mark.parametrize("spec", ["claude-sonnet-4/anthropic", "claude-sonnet-4/bedrock"])
def test_tool_call_arguments_too_deep_to_decode_are_a_400_naming_them(ai_gateway: Gateway, spec: str) -> None:
    """Translated providers decode ``function.arguments`` (a JSON string) to send it as an object."""
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": DEEP_OBJECT.decode()}}
    body = {
        "model": spec,
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "done"},
        ],
    }
    response = _post(ai_gateway, "/v1/chat/completions", json.dumps(body).encode())
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "messages[1].tool_calls[0].function.arguments"
    assert "nested too deep" in error["message"]


@pytest.mark.parametrize("spec", ["claude-sonnet-4/anthropic", "claude-sonnet-4/bedrock"])
@pytest.mark.parametrize("field", ["temperature", "top_p"])
def test_a_number_beyond_any_float_is_a_400_naming_it(
    ai_gateway: Gateway, mock_provider: MockProvider, spec: str, field: str
) -> None:
    """Found by the fuzz suite: float(10**400) raised OverflowError, a plain-text 500."""
    body = {"model": spec, "messages": [{"role": "user", "content": "Hi"}], field: 10**400}
    response = _post(ai_gateway, "/v1/chat/completions", json.dumps(body).encode())
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == field and "finite number" in error["message"]
    assert mock_provider.requests == []
