"""Deeply nested JSON bodies on the query API and the dashboard's API: a 400 in ``{data: null, error}``.

The bodies are refused before any statement is built, so heliport's own (SQLite) log database serves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from heliport.api.filters import MAX_DEPTH
from heliport.config import Settings
from tests.harness import Gateway, start_gateway
from tests.mock_provider import MockProvider

LIMIT = Settings.max_json_depth
DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000


def branches(depth: int) -> Any:
    """A filter tree ``depth`` branches deep (each branch's left is the next one)."""
    node: Any = {"request_response_rmt": {"model": {"equals": "gpt-4o-mini"}}}
    for _ in range(depth):
        node = {"left": node, "operator": "and", "right": "all"}
    return node


def deep_filter_body(depth: int) -> bytes:
    """``{"filter": <depth branches>}`` written out by hand: json.dumps itself gives up at ~1000 levels."""
    head = b'{"left":' * depth
    tail = b',"operator":"and","right":"all"}' * depth
    return b'{"filter":' + head + b'"all"' + tail + b"}"


def _post(gateway: Gateway, path: str, body: bytes) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}{path}",
        content=body,
        headers={"Authorization": f"Bearer {gateway.key}", "Content-Type": "application/json"},
        timeout=30,
    )


def _error(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["data"] is None and isinstance(body["error"], str)
    return str(body["error"])


PATHS = [
    "/v1/request/query",
    "/v1/request/query-clickhouse",
    "/v1/session/query",
    "/v1/user/query",
    "/v1/property/query",
    "/v1/dashboard/overview",
    "/v1/dashboard/session-tree",
]


@pytest.mark.parametrize("path", PATHS)
def test_a_filter_nested_2000_deep_is_a_400_naming_filter(gateway: Gateway, path: str) -> None:
    message = _error(_post(gateway, path, deep_filter_body(2000)))
    assert message.startswith("Invalid filter:") and f"more than {LIMIT} levels deep" in message


@pytest.mark.parametrize("path", PATHS)
def test_a_body_of_100000_nested_arrays_is_a_400(gateway: Gateway, path: str) -> None:
    message = _error(_post(gateway, path, DEEP_ARRAY))
    assert message.startswith("Invalid body:") and f"more than {LIMIT} levels deep" in message


def test_json_past_the_limit_but_decodable_is_a_400_naming_the_field(gateway: Gateway) -> None:
    message = _error(_post(gateway, "/v1/request/query", deep_filter_body(LIMIT)))
    assert message.startswith("Invalid filter:") and f"more than {LIMIT} levels deep" in message


def test_a_filter_tree_past_its_own_limit_is_a_400_naming_the_filter_path(gateway: Gateway) -> None:
    message = _error(_post(gateway, "/v1/request/query", json.dumps({"filter": branches(MAX_DEPTH + 1)}).encode()))
    assert message.startswith("filter.left") and f"at most {MAX_DEPTH} branches deep" in message


def test_a_filter_tree_at_its_limit_is_answered(gateway: Gateway) -> None:
    response = _post(gateway, "/v1/request/query", json.dumps({"filter": branches(MAX_DEPTH)}).encode())
    assert response.status_code == 200, response.text
    assert response.json() == {"data": [], "error": None}


def test_the_limit_is_the_deployments_setting(tmp_path: Path, mock_provider: MockProvider) -> None:
    # HELIPORT_MAX_JSON_DEPTH reaches the query API as served (heliport serve builds it from Settings).
    gw = start_gateway(tmp_path, mock_provider.url, max_json_depth=16)
    try:
        refused = _error(_post(gw, "/v1/request/query", deep_filter_body(20)))
        assert "more than 16 levels deep" in refused
        assert _post(gw, "/v1/request/query", deep_filter_body(5)).status_code == 200
    finally:
        gw.stop()


def test_the_body_size_cap_is_the_deployments_setting(tmp_path: Path, mock_provider: MockProvider) -> None:
    # HELIPORT_MAX_QUERY_BODY_BYTES: a 413 in the API's shape, refused while the body is read.
    gw = start_gateway(tmp_path, mock_provider.url, max_query_body_bytes=2048)
    try:
        big = json.dumps({"filter": "all", "limit": 10, "pad": "x" * 4096}).encode()
        refused = _post(gw, "/v1/request/query", big)
        assert refused.status_code == 413 and refused.json() == {
            "data": None,
            "error": "Body too large: at most 2048 bytes.",
        }
        assert _post(gw, "/v1/request/query", b'{"filter": "all", "limit": 1}').status_code == 200
    finally:
        gw.stop()
