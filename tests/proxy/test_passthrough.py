"""The pass-through proxy driven by the official SDKs, over real HTTP, against the mock provider."""

from __future__ import annotations

import uuid

import anthropic
import httpx
import openai
import pytest

from tests.harness import Gateway
from tests.mock_provider import MockProvider

MESSAGES = [{"role": "user", "content": "Say hello"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(autouse=True)
def _fresh_mock(mock_provider: MockProvider) -> None:
    mock_provider.clear()


def _helicone_headers_seen(mock: MockProvider) -> list[str]:
    return [name for req in mock.requests for name in req.headers if name.startswith("helicone-")]


def test_chat_completion_is_proxied_and_logged(gateway: Gateway, mock_provider: MockProvider) -> None:
    request_id = str(uuid.uuid4())
    client = gateway.openai()
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        user="body-user",
        extra_headers={
            "Helicone-Request-Id": request_id,
            "Helicone-Property-Environment": "test",
            "Helicone-Property-App-Version": "2.1",
            "Helicone-Session-Id": "s-1",
            "Helicone-Session-Path": "/support/chat",
            "Helicone-Session-Name": "Support",
            "Helicone-Prompt-Id": "greeting",
            "Helicone-Model-Override": "gpt-4o-mini-2024-07-18",
        },
    )
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.model == "gpt-4o-mini"
    assert raw.headers["helicone-id"] == request_id
    assert raw.headers["helicone-status"] == "success"

    (seen,) = mock_provider.requests
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["authorization"] == "Bearer sk-provider-secret"
    assert _helicone_headers_seen(mock_provider) == []

    record = gateway.record(request_id)
    assert record.status == 200
    assert record.provider == "OPENAI"
    assert record.target_url == f"{mock_provider.url}/v1/chat/completions"
    assert record.org_id == gateway.org_id
    assert record.request_model == "gpt-4o-mini"
    assert record.user_id == "body-user"
    assert record.properties == {"environment": "test", "app-version": "2.1"}
    assert (record.session_id, record.session_path, record.session_name) == ("s-1", "/support/chat", "Support")
    assert record.prompt_id == "greeting"
    assert record.model_override == "gpt-4o-mini-2024-07-18"
    assert record.is_stream is False
    assert record.ttfb_ms is not None and 0 < record.ttfb_ms <= record.duration_ms
    assert '"Say hello"' in (record.request_body or "")
    assert completion.choices[0].message.content in (record.response_body or "")
    assert "authorization" not in record.response_headers


def test_user_header_wins_over_body_user(gateway: Gateway) -> None:
    request_id = str(uuid.uuid4())
    gateway.openai().chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        user="body-user",
        extra_headers={"Helicone-Request-Id": request_id, "Helicone-User-Id": "header-user"},
    )
    assert gateway.record(request_id).user_id == "header-user"


def test_streaming_chat_relays_every_chunk(gateway: Gateway) -> None:
    request_id = str(uuid.uuid4())
    stream = gateway.openai().chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"Helicone-Request-Id": request_id},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    record = gateway.record(request_id)
    assert record.is_stream is True
    assert record.status == 200
    assert record.response_body is not None and record.response_body.rstrip().endswith("data: [DONE]")


def test_stream_usage_header_asks_the_provider_for_usage(gateway: Gateway, mock_provider: MockProvider) -> None:
    stream = gateway.openai().chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers={"Helicone-Stream-Usage": "true"}
    )
    chunks = list(stream)
    assert mock_provider.requests[0].json["stream_options"] == {"include_usage": True}
    assert chunks[-1].usage is not None


def test_tool_calls_pass_through(gateway: Gateway) -> None:
    completion = gateway.openai().chat.completions.create(model="gpt-4o", messages=MESSAGES, tools=[WEATHER_TOOL])
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert completion.choices[0].finish_reason == "tool_calls"

    stream = gateway.openai().chat.completions.create(
        model="gpt-4o", messages=MESSAGES, tools=[WEATHER_TOOL], stream=True
    )
    names = [
        tc.function.name
        for chunk in stream
        if chunk.choices
        for tc in chunk.choices[0].delta.tool_calls or []
        if tc.function and tc.function.name
    ]
    assert names == ["get_weather"]


def test_responses_create_and_stream(gateway: Gateway) -> None:
    client = gateway.openai()
    response = client.responses.create(model="gpt-4.1", input="Say hello")
    assert response.output_text
    assert response.usage is not None and response.usage.total_tokens > 0

    request_id = str(uuid.uuid4())
    with client.responses.stream(
        model="gpt-4.1", input="Say hello", extra_headers={"Helicone-Request-Id": request_id}
    ) as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text
    record = gateway.record(request_id)
    assert record.is_stream and "response.completed" in (record.response_body or "")


def test_anthropic_messages_and_stream(gateway: Gateway, mock_provider: MockProvider) -> None:
    client = gateway.anthropic()
    request_id = str(uuid.uuid4())
    message = client.messages.create(
        model="claude-test-model",
        max_tokens=100,
        messages=[{"role": "user", "content": "Say hello"}],
        extra_headers={"Helicone-Request-Id": request_id},
    )
    assert message.content[0].type == "text" and message.content[0].text
    seen = mock_provider.requests[0].headers
    # Newer SDKs send the key as a bearer token, older ones as x-api-key: either way, unchanged.
    assert "sk-ant-provider-secret" in (seen.get("x-api-key"), seen.get("authorization", "").removeprefix("Bearer "))
    assert mock_provider.requests[0].path == "/v1/messages"
    record = gateway.record(request_id)
    assert record.provider == "ANTHROPIC" and record.status == 200

    with client.messages.stream(
        model="claude-test-model", max_tokens=100, messages=[{"role": "user", "content": "Say hello"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.usage.output_tokens > 0
    assert _helicone_headers_seen(mock_provider) == []


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
    ],
)
def test_upstream_errors_pass_through_unchanged(
    gateway: Gateway, mock_provider: MockProvider, status: int, error: type[openai.APIStatusError]
) -> None:
    direct = httpx.post(
        f"{mock_provider.url}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": MESSAGES},
        headers={"x-mock-status": str(status)},
    )
    with pytest.raises(error) as caught:
        gateway.openai().chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-mock-status": str(status)}
        )
    assert caught.value.status_code == status
    assert caught.value.response.json() == direct.json()
    assert caught.value.response.headers["helicone-id"]


def test_anthropic_upstream_error_passes_through(gateway: Gateway) -> None:
    with pytest.raises(anthropic.RateLimitError) as caught:
        gateway.anthropic().messages.create(
            model="claude-test-model",
            max_tokens=10,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-mock-status": "429"},
        )
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]  # body is the parsed JSON


def test_query_string_and_other_methods_pass_through(gateway: Gateway, mock_provider: MockProvider) -> None:
    models = gateway.openai().models.list(extra_query={"limit": "2"})
    assert models.data
    assert mock_provider.requests[0].method == "GET"
    assert mock_provider.requests[0].query == "limit=2"


def test_key_in_path_authenticates(gateway: Gateway) -> None:
    client = openai.OpenAI(
        base_url=f"{gateway.url}/{gateway.key}/v1/gateway/oai/v1", api_key="sk-provider-secret", max_retries=0
    )
    request_id = str(uuid.uuid4())
    client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers={"Helicone-Request-Id": request_id}
    )
    record = gateway.record(request_id)
    assert gateway.key not in record.path
    assert record.path == "/v1/gateway/oai/v1/chat/completions"


def test_omit_flags_keep_bodies_out_of_the_log(gateway: Gateway) -> None:
    request_id = str(uuid.uuid4())
    gateway.openai().chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        extra_headers={
            "Helicone-Request-Id": request_id,
            "Helicone-Omit-Request": "true",
            "Helicone-Omit-Response": "true",
        },
    )
    record = gateway.record(request_id)
    assert record.request_body is None and record.response_body is None
    assert record.status == 200 and record.request_model == "gpt-4o-mini"


def test_other_provider_routes(gateway: Gateway, mock_provider: MockProvider) -> None:
    request_id = str(uuid.uuid4())
    client = openai.OpenAI(
        base_url=f"{gateway.url}/v1/gateway/groq/openai/v1",
        api_key="gsk-secret",
        default_headers={"Helicone-Auth": f"Bearer {gateway.key}", "Helicone-Request-Id": request_id},
        max_retries=0,
    )
    completion = client.chat.completions.create(model="llama-3.3-70b", messages=MESSAGES)
    assert completion.choices[0].message.content
    assert mock_provider.requests[0].path == "/openai/v1/chat/completions"  # Groq's own path, kept
    assert mock_provider.requests[0].headers["authorization"] == "Bearer gsk-secret"
    assert gateway.record(request_id).provider == "GROQ"


def test_target_url_routes_to_a_trusted_origin(gateway: Gateway, mock_provider: MockProvider) -> None:
    request_id = str(uuid.uuid4())
    client = openai.OpenAI(
        base_url=f"{gateway.url}/v1/gateway/v1",
        api_key="sk-self-hosted",
        default_headers={
            "Helicone-Auth": f"Bearer {gateway.key}",
            "Helicone-Target-Url": f"{mock_provider.url}/ignored/path",
            "Helicone-Request-Id": request_id,
        },
        max_retries=0,
    )
    assert client.chat.completions.create(model="my-model", messages=MESSAGES).choices
    assert mock_provider.requests[0].path == "/v1/chat/completions"
    assert gateway.record(request_id).provider == mock_provider.url


def test_azure_base_routes_as_azure(gateway: Gateway, mock_provider: MockProvider) -> None:
    request_id = str(uuid.uuid4())
    response = httpx.post(
        f"{gateway.oai_base}/chat/completions?api-version=2024-10-21",
        json={"model": "gpt-4o", "messages": MESSAGES},
        headers={
            "Helicone-Auth": f"Bearer {gateway.key}",
            "Helicone-OpenAI-Api-Base": mock_provider.url,
            "Helicone-Request-Id": request_id,
            "api-key": "azure-secret",
        },
    )
    assert response.status_code == 200
    assert mock_provider.requests[0].headers["api-key"] == "azure-secret"
    assert mock_provider.requests[0].query == "api-version=2024-10-21"
    assert gateway.record(request_id).provider == "AZURE"


@pytest.mark.parametrize(
    "body", ['{"model": "m", "x": ' + '{"a": ' * 5000 + "1" + "}" * 5001, "[" * 100_000 + "]" * 100_000]
)
def test_a_deeply_nested_body_is_forwarded_as_it_is(gateway: Gateway, mock_provider: MockProvider, body: str) -> None:
    # The proxy only peeks at model/user/stream; a body deeper than its decoder goes was a plain-text 500.
    response = httpx.post(
        f"{gateway.oai_base}/chat/completions",
        content=body,
        headers={"Helicone-Auth": f"Bearer {gateway.key}", "Authorization": "Bearer sk-x"},
        timeout=30,
    )
    assert [r.body for r in mock_provider.requests] == [body.encode()]
    assert response.status_code == 500 and "heliport" not in response.text  # the mock's own parser gave up


def test_stream_usage_leaves_a_body_it_cannot_rewrite_as_it_is(gateway: Gateway, mock_provider: MockProvider) -> None:
    """Found by the fuzz suite: with Helicone-Stream-Usage, a number beyond a float was a plain-text 500."""
    body = '{"model": "gpt-4o-mini", "stream": true, "temperature": 1e400, "messages": []}'
    response = httpx.post(
        f"{gateway.oai_base}/chat/completions",
        content=body,
        headers={"Helicone-Auth": f"Bearer {gateway.key}", "Helicone-Stream-Usage": "true"},
        timeout=30,
    )
    assert [r.body for r in mock_provider.requests] == [body.encode()]
    assert response.status_code == 400 and response.json()["error"]  # the mock's own refusal, relayed
