"""What heliport refuses, and how: a JSON error naming the problem, never a 500 or a silent relay."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from heliport.auth import create_key
from tests.harness import Gateway
from tests.mock_provider import MockProvider

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def _post(
    gateway: Gateway, headers: dict[str, str], path: str = "/v1/gateway/oai/v1/chat/completions"
) -> httpx.Response:
    return httpx.post(gateway.url + path, json=BODY, headers=headers)


def test_missing_key_is_401(gateway: Gateway, mock_provider: MockProvider) -> None:
    mock_provider.clear()
    response = _post(gateway, {"Authorization": "Bearer sk-provider"})
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "invalid_api_key"
    assert "Helicone-Auth" in error["message"]
    assert mock_provider.requests == []  # never relayed


def test_unknown_key_is_401(gateway: Gateway) -> None:
    response = _post(gateway, {"Helicone-Auth": "Bearer sk-heliport-0000"})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Unknown heliport key."


def test_revoked_key_is_401(gateway: Gateway) -> None:
    async def make() -> tuple[str, str]:
        plain, key = await create_key(gateway.store, gateway.org_id, "short-lived")
        return plain, key.id

    plain, key_id = asyncio.run(make())
    # Revoke before its first use, so no cached answer stands in the way.
    assert asyncio.run(gateway.store.revoke_key(gateway.org_id, key_id))
    response = _post(gateway, {"Helicone-Auth": f"Bearer {plain}"})
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


def test_an_auth_header_without_bearer_is_an_unusable_key_401(gateway: Gateway) -> None:
    # Helicone answers 401 for any key it cannot use; the scheme missing is one such key.
    response = _post(gateway, {"Helicone-Auth": gateway.key})
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "invalid_api_key" and error["param"] == "Helicone-Auth"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Helicone-Request-Id", "not-a-uuid"),
        ("Helicone-Cache-Enabled", "yes"),
        ("Helicone-Omit-Request", "1"),
        ("Helicone-Cache-Bucket-Max-Size", "21"),
        ("Helicone-Cache-Bucket-Max-Size", "many"),
        ("Helicone-Fallbacks", "{not json"),
        ("Helicone-Fallbacks", '{"target-url": "x"}'),
        ("Helicone-Stream-Usage", "sure"),
    ],
)
def test_malformed_header_is_400_naming_it(gateway: Gateway, header: str, value: str) -> None:
    response = _post(gateway, {"Helicone-Auth": f"Bearer {gateway.key}", header: value})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == header
    assert header in error["message"]


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("https://127.0.0.1", "non-public address"),
        ("https://169.254.169.254/latest/meta-data", "non-public address"),
        ("https://[::1]", "non-public address"),
        ("https://[::ffff:10.0.0.1]", "non-public address"),
        ("https://10.1.2.3", "non-public address"),
        ("https://100.64.0.1", "non-public address"),
        ("http://api.openai.com", "must use https"),
        ("https://api.openai.com:8443", "default https port"),
        ("https://evil.example.com", "not on the allow-list"),
        ("https://user:pass@api.openai.com", "credentials"),
        ("https://2130706433", "non-public address"),
        ("not a url", "absolute URL"),
        # On the allow-list (configured for this gateway) but resolves to loopback: refused at connect.
        ("https://localhost", "resolves to a non-public address"),
    ],
)
def test_ssrf_targets_are_refused(gateway: Gateway, target: str, reason: str) -> None:
    response = _post(
        gateway,
        {"Helicone-Auth": f"Bearer {gateway.key}", "Helicone-Target-Url": target},
        "/v1/gateway/v1/chat/completions",
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "target_refused"
    assert reason in error["message"]


def test_azure_base_outside_azure_is_refused(gateway: Gateway) -> None:
    response = _post(
        gateway, {"Helicone-Auth": f"Bearer {gateway.key}", "Helicone-OpenAI-Api-Base": "https://api.evil.com"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "Helicone-OpenAI-Api-Base"


def test_unknown_provider_and_route_are_404(gateway: Gateway) -> None:
    response = _post(gateway, {"Helicone-Auth": f"Bearer {gateway.key}"}, "/v1/gateway/nosuch/v1/chat/completions")
    assert response.status_code == 404
    assert "nosuch" in response.json()["error"]["message"]
    assert httpx.get(gateway.url + "/nope").status_code == 404


def test_healthcheck_needs_no_key(gateway: Gateway) -> None:
    response = httpx.get(gateway.url + "/healthcheck")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
