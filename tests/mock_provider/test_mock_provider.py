"""Tests of the mock provider itself, driven by the official SDKs directly.

If the SDKs can parse everything the mock sends, end-to-end tests that put a
gateway between the SDKs and the mock exercise the real wire formats.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest

from tests.mock_provider import MockProvider

WEATHER_TOOL_CHAT: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
SEARCH_TOOL_RESPONSES: Any = {
    "type": "function",
    "name": "search_docs",
    "description": "Search documentation.",
    "parameters": {
        "type": "object",
        "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
        "required": ["query", "limit"],
        "additionalProperties": False,
    },
    "strict": True,
}
WEATHER_TOOL_ANTHROPIC: Any = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
USER_HI: Any = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def mock() -> Iterator[MockProvider]:
    with MockProvider() as provider:
        yield provider


@pytest.fixture(autouse=True)
def _clean(mock: MockProvider) -> None:
    mock.clear()


@pytest.fixture
def oai(mock: MockProvider) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(api_key="sk-test", base_url=mock.url + "/v1", max_retries=0)
    yield client
    client.close()


@pytest.fixture
def claude(mock: MockProvider) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(api_key="sk-ant-test", base_url=mock.url, max_retries=0)
    yield client
    client.close()


# -- OpenAI Chat Completions -------------------------------------------------------


def test_chat_completion(oai: openai.OpenAI, mock: MockProvider) -> None:
    first = oai.chat.completions.create(model="gpt-4o-mini", messages=USER_HI)
    second = oai.chat.completions.create(model="other-model", messages=USER_HI)

    assert first.object == "chat.completion"
    assert first.model == "gpt-4o-mini"
    assert second.model == "other-model"
    assert first.id.startswith("chatcmpl-")
    assert first.id != second.id
    assert abs(first.created - time.time()) < 60
    assert first.choices[0].finish_reason == "stop"
    assert first.choices[0].message.content
    usage = first.usage
    assert usage is not None
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens is not None
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 0

    request = mock.requests[0]
    assert request.method == "POST"
    assert request.path == "/v1/chat/completions"
    assert request.json["model"] == "gpt-4o-mini"
    assert request.headers["authorization"] == "Bearer sk-test"


def test_chat_stream_without_usage(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(model="gpt-4o-mini", messages=USER_HI, stream=True)
    chunks = list(stream)

    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert all(chunk.usage is None for chunk in chunks)
    assert all(chunk.choices for chunk in chunks)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert text.startswith("Hello")
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert len({chunk.id for chunk in chunks}) == 1


def test_chat_stream_with_usage(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model="gpt-4o-mini", messages=USER_HI, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)

    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.total_tokens > 0
    assert all(chunk.usage is None for chunk in chunks[:-1])


def test_chat_stream_raw_sse_ends_with_done(mock: MockProvider) -> None:
    response = httpx.post(
        mock.url + "/v1/chat/completions", json={"model": "m", "messages": USER_HI, "stream": True}, timeout=5
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.endswith("data: [DONE]\n\n")
    assert '"usage"' not in response.text


def test_chat_tool_call_then_text(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(model="gpt-4o-mini", messages=USER_HI, tools=[WEATHER_TOOL_CHAT])
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}

    follow_up = oai.chat.completions.create(
        model="gpt-4o-mini",
        tools=[WEATHER_TOOL_CHAT],
        messages=[
            *USER_HI,
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
    )
    assert follow_up.choices[0].finish_reason == "stop"
    assert follow_up.choices[0].message.content


def test_chat_stream_tool_call_uses_required_properties(oai: openai.OpenAI) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {
                "type": "object",
                "properties": {"term": {"type": "string"}, "page": {"type": "integer"}},
                "required": ["term", "page"],
            },
        },
    }
    stream = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER_HI,
        tools=[tool],  # type: ignore[list-item]
        stream=True,
        stream_options={"include_usage": True},
    )
    name = ""
    arguments = ""
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                assert delta.index == 0
                if delta.function and delta.function.name:
                    name = delta.function.name
                if delta.function and delta.function.arguments:
                    arguments += delta.function.arguments
            finish = choice.finish_reason or finish
    assert name == "lookup"
    assert finish == "tool_calls"
    parsed = json.loads(arguments)
    assert set(parsed) == {"term", "page"}
    assert isinstance(parsed["term"], str)


def test_models(oai: openai.OpenAI) -> None:
    ids = [model.id for model in oai.models.list()]
    assert len(ids) >= 2


# -- OpenAI Responses ----------------------------------------------------------------------


def test_responses_create(oai: openai.OpenAI) -> None:
    response = oai.responses.create(model="gpt-4.1-mini", input="Hi")
    assert response.status == "completed"
    assert response.id.startswith("resp_")
    assert response.model == "gpt-4.1-mini"
    assert response.output_text.startswith("Hello")
    assert response.usage is not None
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert response.usage.input_tokens_details.cached_tokens >= 0
    assert response.usage.output_tokens_details.reasoning_tokens == 0


def test_responses_stream_helper(oai: openai.OpenAI) -> None:
    with oai.responses.stream(model="gpt-4.1-mini", input="Hi") as stream:
        types = [event.type for event in stream]
        final = stream.get_final_response()
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    assert "response.output_text.delta" in types
    assert final.output_text.startswith("Hello")
    assert final.usage is not None
    assert final.usage.output_tokens > 0


def test_responses_function_call_stream_and_follow_up(oai: openai.OpenAI) -> None:
    with oai.responses.stream(model="gpt-4.1-mini", input="Hi", tools=[SEARCH_TOOL_RESPONSES]) as stream:
        final = stream.get_final_response()
    call = final.output[0]
    assert call.type == "function_call"
    assert call.name == "search_docs"
    assert call.call_id.startswith("call_")
    assert json.loads(call.arguments) == {"query": "example", "limit": 1}

    follow_up = oai.responses.create(
        model="gpt-4.1-mini",
        tools=[SEARCH_TOOL_RESPONSES],
        input=[
            {"role": "user", "content": "Hi"},
            {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "found it"},
        ],
    )
    assert follow_up.output_text


def test_responses_function_call_non_stream(oai: openai.OpenAI) -> None:
    response = oai.responses.create(model="gpt-4.1-mini", input="Hi", tools=[SEARCH_TOOL_RESPONSES])
    assert response.output[0].type == "function_call"


def _drain_anthropic_stream(claude: anthropic.Anthropic, headers: dict[str, str]) -> None:
    """Consume a whole Anthropic stream so mid-stream errors surface."""
    with claude.messages.stream(
        model="claude-sonnet-4-6", max_tokens=64, messages=USER_HI, extra_headers=headers
    ) as stream:
        for _ in stream:
            pass


# -- Anthropic Messages ----------------------------------------------------------------------


def test_anthropic_message(claude: anthropic.Anthropic, mock: MockProvider) -> None:
    message = claude.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=USER_HI)
    assert message.type == "message"
    assert message.model == "claude-sonnet-4-6"
    assert message.id.startswith("msg_")
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text"
    assert message.content[0].text.startswith("Hello")
    assert message.usage.input_tokens > 0
    assert message.usage.cache_read_input_tokens is not None
    assert message.usage.cache_creation is not None
    assert message.usage.cache_creation.ephemeral_5m_input_tokens >= 0

    request = mock.last_request
    assert request.path == "/v1/messages"
    # depending on the SDK version the key travels as x-api-key or a bearer token
    assert "sk-ant-test" in (request.header("x-api-key") or request.header("authorization") or "")
    assert "anthropic-version" in request.headers


def test_anthropic_stream(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(model="claude-sonnet-4-6", max_tokens=64, messages=USER_HI) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.startswith("Hello")
    assert final.content[0].type == "text"
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens > 0
    assert final.usage.output_tokens > 1


def test_anthropic_tool_use_stream_then_text(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model="claude-sonnet-4-6", max_tokens=64, messages=USER_HI, tools=[WEATHER_TOOL_ANTHROPIC]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    block = final.content[0]
    assert block.type == "tool_use"
    assert block.id.startswith("toolu_")
    assert block.name == "get_weather"
    assert block.input == {"city": "Paris"}

    follow_up = claude.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=64,
        tools=[WEATHER_TOOL_ANTHROPIC],
        messages=[
            *USER_HI,
            {"role": "assistant", "content": [block.model_dump()]},  # type: ignore[list-item]
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "sunny"}]},
        ],
    )
    assert follow_up.stop_reason == "end_turn"


def test_anthropic_tool_use_non_stream(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="claude-sonnet-4-6", max_tokens=64, messages=USER_HI, tools=[WEATHER_TOOL_ANTHROPIC]
    )
    assert message.stop_reason == "tool_use"
    assert message.content[0].type == "tool_use"
    assert message.content[0].input == {"city": "Paris"}


def test_anthropic_stream_error_event(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APIStatusError) as caught:
        _drain_anthropic_stream(claude, {"x-mock-stream-error": "overloaded"})
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "overloaded_error"


# -- scenario headers ------------------------------------------------------------------------


def test_openai_rate_limit_error(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        oai.chat.completions.create(model="m", messages=USER_HI, extra_headers={"x-mock-status": "429"})
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "0"
    assert caught.value.request_id
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["code"] == "rate_limit_exceeded"


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (404, openai.NotFoundError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_openai_error_classes(oai: openai.OpenAI, status: int, exc_type: type[Exception]) -> None:
    with pytest.raises(exc_type):
        oai.responses.create(model="m", input="Hi", extra_headers={"x-mock-status": str(status)})


@pytest.mark.parametrize(
    ("status", "exc_type", "error_type"),
    [
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.InternalServerError, "overloaded_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (400, anthropic.BadRequestError, "invalid_request_error"),
    ],
)
def test_anthropic_error_classes(
    claude: anthropic.Anthropic, status: int, exc_type: type[anthropic.APIStatusError], error_type: str
) -> None:
    with pytest.raises(exc_type) as caught:
        claude.messages.create(
            model="claude-sonnet-4-6", max_tokens=8, messages=USER_HI, extra_headers={"x-mock-status": str(status)}
        )
    assert caught.value.status_code == status
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == error_type
    assert caught.value.request_id


def test_unknown_path_is_openai_404(mock: MockProvider) -> None:
    response = httpx.post(mock.url + "/v1/nope", json={}, timeout=5)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert mock.last_request.path == "/v1/nope"


def test_recorded_headers_and_query(oai: openai.OpenAI, mock: MockProvider) -> None:
    oai.chat.completions.create(
        model="m",
        messages=USER_HI,
        extra_headers={"X-Custom-Trace": "abc123"},
        extra_query={"api-version": "2024-01-01"},
    )
    request = mock.last_request
    assert request.headers["x-custom-trace"] == "abc123"
    assert request.header("X-Custom-Trace") == "abc123"
    assert request.query == "api-version=2024-01-01"


def test_delay_header(oai: openai.OpenAI) -> None:
    started = time.monotonic()
    oai.chat.completions.create(model="m", messages=USER_HI, extra_headers={"x-mock-delay-ms": "200"})
    assert time.monotonic() - started >= 0.2


def test_chunk_delay_header(oai: openai.OpenAI) -> None:
    started = time.monotonic()
    stream = oai.chat.completions.create(
        model="m", messages=USER_HI, stream=True, extra_headers={"x-mock-chunk-delay-ms": "20"}
    )
    count = len(list(stream))
    # count parsed chunks + the [DONE] event, with a delay before each but the first
    assert time.monotonic() - started >= 0.02 * count


def test_fail_after_drops_connection(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    received: list[Any] = []
    stream = oai.chat.completions.create(
        model="m", messages=USER_HI, stream=True, extra_headers={"x-mock-fail-after": "3"}
    )
    with pytest.raises(openai.APIConnectionError):  # noqa: PT012 - the failure arrives mid-iteration
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 3

    # the Anthropic SDK lets the transport error surface unwrapped when it happens mid-stream
    with pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)):
        _drain_anthropic_stream(claude, {"x-mock-fail-after": "2"})


def test_fail_after_raw_http(mock: MockProvider) -> None:
    with (
        httpx.Client(timeout=5) as client,
        client.stream(
            "POST",
            mock.url + "/v1/responses",
            json={"model": "m", "input": "Hi", "stream": True},
            headers={"x-mock-fail-after": "1"},
        ) as response,
    ):
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            response.read()


def test_gate_proves_first_event_is_not_buffered(oai: openai.OpenAI, mock: MockProvider) -> None:
    stream = oai.chat.completions.create(
        model="m", messages=USER_HI, stream=True, extra_headers={"x-mock-gate": "first"}
    )
    first = next(iter(stream))  # must arrive while the server is still parked at the gate
    assert first.choices[0].delta.role == "assistant"
    assert mock.wait_for_gate("first", timeout=5)
    assert "first" not in mock.gate_results
    mock.release("first")
    rest = list(stream)
    assert rest[-1].choices[0].finish_reason == "stop"
    assert mock.gate_results["first"] == "released"


def test_gate_timeout(mock: MockProvider) -> None:
    response = httpx.post(
        mock.url + "/v1/messages",
        json={"model": "m", "max_tokens": 8, "messages": USER_HI, "stream": True},
        headers={"x-mock-gate": "never", "x-mock-gate-timeout-ms": "100"},
        timeout=5,
    )
    assert response.text.rstrip().endswith('data: {"type":"message_stop"}')
    assert mock.gate_results["never"] == "timeout"


def test_concurrent_requests_are_all_recorded(mock: MockProvider) -> None:
    def call() -> None:
        httpx.post(mock.url + "/v1/chat/completions", json={"model": "m", "messages": USER_HI}, timeout=5)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(mock.wait_for_requests(8, timeout=5)) == 8
