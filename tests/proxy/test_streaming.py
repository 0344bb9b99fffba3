"""Streaming behaviour: no buffering, disconnects, mid-stream failures, unreachable and slow upstreams."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from heliport.config import Timeouts
from heliport.logs.record import Status
from tests.harness import Gateway, start_gateway
from tests.mock_provider import MockProvider

MESSAGES = [{"role": "user", "content": "Say hello"}]


def test_stream_is_not_buffered(gateway: Gateway, mock_provider: MockProvider) -> None:
    """The mock holds its second event until we have read the first: a buffering proxy deadlocks."""
    stream = gateway.openai().chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers={"x-mock-gate": "first-event"}
    )
    first = next(iter(stream))
    mock_provider.release("first-event")
    rest = list(stream)
    assert first.choices is not None
    assert rest
    assert mock_provider.gate_results["first-event"] == "released"


def test_anthropic_stream_is_not_buffered(gateway: Gateway, mock_provider: MockProvider) -> None:
    with gateway.anthropic().messages.stream(
        model="claude-test-model",
        max_tokens=50,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-mock-gate": "anthropic-first"},
    ) as stream:
        events = iter(stream)
        assert next(events).type == "message_start"
        mock_provider.release("anthropic-first")
        assert [e.type for e in events][-1] == "message_stop"
    assert mock_provider.gate_results["anthropic-first"] == "released"


def test_client_disconnect_cancels_upstream_and_is_logged(gateway: Gateway) -> None:
    request_id = str(uuid.uuid4())
    started = time.monotonic()
    with httpx.stream(
        "POST",
        f"{gateway.oai_base}/chat/completions",
        json={"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True},
        headers={
            "Helicone-Auth": f"Bearer {gateway.key}",
            "Helicone-Request-Id": request_id,
            "x-mock-chunk-delay-ms": "1000",
        },
    ) as response:
        next(response.iter_raw())
    record = gateway.record(request_id)
    assert record.status == Status.CLIENT_CANCELLED
    # The mock would take several seconds to finish; the log came as soon as the client left.
    assert time.monotonic() - started < 3


def test_mid_stream_failure_reaches_the_client_and_the_log(gateway: Gateway) -> None:
    request_id = str(uuid.uuid4())
    stream = gateway.openai().chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        extra_headers={"x-mock-fail-after": "2", "Helicone-Request-Id": request_id},
    )
    with pytest.raises((httpx.HTTPError, openai.APIError)):
        list(stream)
    record = gateway.record(request_id)
    assert record.status == Status.STREAM_FAILED
    assert record.errors


def test_anthropic_stream_error_event_is_relayed(gateway: Gateway) -> None:
    with (
        pytest.raises(Exception, match="Overloaded"),
        gateway.anthropic().messages.stream(
            model="claude-test-model",
            max_tokens=50,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-mock-stream-error": "overloaded"},
        ) as stream,
    ):
        list(stream)


@pytest.fixture
def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def unreachable_gateway(tmp_path: Path, closed_port: int) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path, f"http://127.0.0.1:{closed_port}")
    yield gw
    gw.stop()


@pytest.fixture
def impatient_gateway(tmp_path: Path, mock_provider: MockProvider) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path, mock_provider.url, timeouts=Timeouts(connect=1, read=0.3), max_request_bytes=1000)
    yield gw
    gw.stop()


def test_unreachable_provider_is_502(unreachable_gateway: Gateway) -> None:
    request_id = str(uuid.uuid4())
    with pytest.raises(openai.APIStatusError) as caught:
        unreachable_gateway.openai().chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers={"Helicone-Request-Id": request_id}
        )
    assert caught.value.status_code == 502
    assert caught.value.response.json()["error"]["code"] == "upstream_unreachable"
    assert unreachable_gateway.record(request_id).status == 502


def test_slow_provider_is_504(impatient_gateway: Gateway) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        impatient_gateway.openai().chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-mock-delay-ms": "2000"}
        )
    assert caught.value.status_code == 504
    assert caught.value.response.json()["error"]["code"] == "upstream_timeout"


def test_stalled_stream_is_logged_as_timeout(impatient_gateway: Gateway) -> None:
    request_id = str(uuid.uuid4())
    stream = impatient_gateway.openai().chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        extra_headers={"x-mock-chunk-delay-ms": "1500", "Helicone-Request-Id": request_id},
    )
    with pytest.raises((httpx.HTTPError, openai.APIError)):
        list(stream)
    assert impatient_gateway.record(request_id).status == Status.TIMEOUT


def test_oversized_request_is_413(impatient_gateway: Gateway) -> None:
    response = httpx.post(
        f"{impatient_gateway.oai_base}/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 2000}]},
        headers={"Helicone-Auth": f"Bearer {impatient_gateway.key}"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "invalid_body"
