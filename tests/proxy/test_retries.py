"""Helicone-Retry-* end to end against a mock provider that fails and recovers, plus the wait rules."""

from __future__ import annotations

import random
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from heliport.headers import parse_headers
from heliport.proxy.retry import RetryPolicy, retry_after_seconds
from tests.harness import Gateway, start_gateway
from tests.mock_provider import MockProvider

MESSAGES = [{"role": "user", "content": "Say hello"}]
FAST = {
    "Helicone-Retry-Enabled": "true",
    "Helicone-Retry-Min-Timeout": "1",
    "Helicone-Retry-Max-Timeout": "20",
}


@pytest.fixture(autouse=True)
def _fresh_mock(mock_provider: MockProvider) -> None:
    mock_provider.clear()


def _post(gateway: Gateway, headers: dict[str, str], **body: object) -> httpx.Response:
    return httpx.post(
        f"{gateway.oai_base}/chat/completions",
        json={"model": "gpt-4o-mini", "messages": MESSAGES, **body},
        headers={"Helicone-Auth": f"Bearer {gateway.key}", "Authorization": "Bearer sk-provider", **headers},
        timeout=10,
    )


def _failing(times: int, status: int = 503) -> dict[str, str]:
    return {"x-mock-fail-first": str(times), "x-mock-fail-key": uuid.uuid4().hex, "x-mock-fail-status": str(status)}


def test_retries_until_the_provider_recovers(gateway: Gateway, mock_provider: MockProvider) -> None:
    response = _post(gateway, {**FAST, **_failing(2)})
    assert response.status_code == 200
    assert len(mock_provider.requests) == 3
    record = gateway.record(response.headers["helicone-id"])
    assert record.retry_count == 2
    assert record.status == 200
    assert any("after status 503" in e for e in record.errors)


def test_a_429_is_retried_honouring_retry_after(gateway: Gateway, mock_provider: MockProvider) -> None:
    response = _post(gateway, {**FAST, **_failing(1, status=429)})
    assert response.status_code == 200
    assert len(mock_provider.requests) == 2


def test_the_last_answer_is_returned_when_retries_run_out(gateway: Gateway, mock_provider: MockProvider) -> None:
    response = _post(gateway, {**FAST, "Helicone-Retry-Num": "2", **_failing(10)})
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "server_error"  # the provider's own error body
    assert len(mock_provider.requests) == 3
    assert gateway.record(response.headers["helicone-id"]).retry_count == 2


def test_no_retry_unless_asked(gateway: Gateway, mock_provider: MockProvider) -> None:
    assert _post(gateway, _failing(1)).status_code == 503
    assert _post(gateway, {**FAST, "Helicone-Retry-Enabled": "false", **_failing(1)}).status_code == 503
    assert len(mock_provider.requests) == 2


def test_client_errors_are_not_retried(gateway: Gateway, mock_provider: MockProvider) -> None:
    assert _post(gateway, {**FAST, "x-mock-status": "400"}).status_code == 400
    assert len(mock_provider.requests) == 1


def test_a_stream_that_already_started_is_never_retried(gateway: Gateway, mock_provider: MockProvider) -> None:
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream(
            "POST",
            f"{gateway.oai_base}/chat/completions",
            json={"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True},
            headers={"Helicone-Auth": f"Bearer {gateway.key}", **FAST, "x-mock-fail-after": "2"},
            timeout=10,
        ) as response,
    ):
        for _ in response.iter_bytes():
            pass
    assert len(mock_provider.requests) == 1


@pytest.fixture
def dead_upstream_gateway(mock_provider: MockProvider, tmp_path: Path) -> Iterator[tuple[Gateway, str]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()  # nothing listens there now: connections are refused
    gw = start_gateway(tmp_path, mock_provider.url, trusted_origins=frozenset({mock_provider.url, dead}))
    yield gw, dead
    gw.stop()


def test_connection_errors_are_retried(dead_upstream_gateway: tuple[Gateway, str]) -> None:
    gateway, dead = dead_upstream_gateway
    response = _post(gateway, {**FAST, "Helicone-Retry-Num": "2", "Helicone-Target-Url": dead})
    assert response.status_code == 502
    record = gateway.record(response.headers["helicone-id"])
    assert record.retry_count == 2 and record.status == 502


def _policy(**headers: str) -> RetryPolicy:
    options, _ = parse_headers([(k.encode(), v.encode()) for k, v in headers.items()])
    policy = RetryPolicy.from_options(options)
    assert policy is not None
    return policy


def test_waits_grow_by_the_factor_with_jitter_and_stop_at_the_cap() -> None:
    policy = _policy(**{"helicone-retry-enabled": "true"})  # Helicone's defaults: 1 s, x2, 10 s cap
    rng = random.Random(7)
    waits = [policy.wait(retry, None, rng) for retry in range(5)]
    for retry, wait in enumerate(waits):
        assert wait is not None
        base = 1.0 * 2**retry
        assert min(base, 10.0) <= wait <= min(2 * base, 10.0)
    assert waits[-1] == 10.0


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    policy = _policy(**{"helicone-retry-enabled": "true", "helicone-retry-max-timeout": "5000"})
    rng = random.Random(1)
    assert policy.wait(0, 4.0, rng) == 4.0  # longer than the backoff: the provider's wait wins
    assert policy.wait(0, 6.0, rng) is None  # longer than the caller allows: stop and return the answer


def test_retry_after_forms() -> None:
    now = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds([(b"Retry-After", b"7")]) == 7.0
    assert retry_after_seconds([(b"retry-after-ms", b"250"), (b"retry-after", b"9")]) == 0.25
    assert retry_after_seconds([(b"retry-after", b"Sun, 22 Nov 2026 12:00:30 GMT")], now=now) == 30.0
    assert retry_after_seconds([(b"retry-after", b"soon")]) is None
    assert retry_after_seconds([]) is None
