"""The unified gateway end to end: the plain OpenAI SDK against heliport's /v1, every provider family
behind it answering from the mock provider in its own wire format."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import openai
import pytest

from heliport.config import Timeouts
from tests.gateway.conftest import PROVIDER_ENV, PROVIDERS, client, start_ai_gateway
from tests.harness import Gateway, start_gateway
from tests.mock_provider import MockProvider

MESSAGES = [{"role": "user", "content": "Say hello"}]
GPT = "gpt-4o-mini"
CLAUDE = "claude-sonnet-4"

#: model string -> (path the provider was called at, the credential header it must carry).
FAMILIES = {
    f"{GPT}/openai": ("/v1/chat/completions", ("authorization", "Bearer sk-openai-test")),
    f"{GPT}/azure": ("/openai/deployments/gpt-4o-mini/chat/completions", ("api-key", "azure-test")),
    f"{CLAUDE}/anthropic": ("/v1/messages", ("x-api-key", "sk-ant-test")),
    f"{CLAUDE}/bedrock": ("/converse", None),
    "gemini-2.5-flash/google": ("/v1beta/openai/chat/completions", ("authorization", "Bearer gemini-test")),
    "llama-3.3-70b-versatile/groq": ("/openai/v1/chat/completions", ("authorization", "Bearer gsk-test")),
    "deepseek-chat/deepseek": ("/chat/completions", ("authorization", "Bearer sk-deepseek-test")),
    f"{GPT}/openrouter": ("/api/v1/chat/completions", ("authorization", "Bearer sk-or-test")),
}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


def _only_request(mock_provider: MockProvider, path_end: str) -> object:
    (request,) = mock_provider.requests
    assert request.path.endswith(path_end), request.path
    return request


def _check_credential(request: object, credential: tuple[str, str] | None, gateway: Gateway) -> None:
    headers = request.headers  # type: ignore[attr-defined]
    if credential is None:  # Bedrock: SigV4 with the function's own credentials
        assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDGATEWAYTEST/")
        assert "/us-east-1/bedrock/aws4_request" in headers["authorization"]
    else:
        name, value = credential
        assert headers[name] == value
    assert gateway.key not in json.dumps(headers)  # the heliport key never leaves heliport


@pytest.mark.parametrize("spec", list(FAMILIES))
def test_chat_through_every_provider_family(ai_gateway: Gateway, mock_provider: MockProvider, spec: str) -> None:
    path, credential = FAMILIES[spec]
    raw = client(ai_gateway).chat.completions.with_raw_response.create(model=spec, messages=MESSAGES)
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    provider = spec.split("/")[1]
    assert raw.headers["helicone-provider"] == provider
    _check_credential(_only_request(mock_provider, path), credential, ai_gateway)

    record = ai_gateway.record(raw.headers["helicone-id"])
    assert (record.status, record.gateway_provider, record.gateway_attempts) == (200, provider, 1)
    assert record.gateway_model == spec
    assert record.usage is not None and record.usage.completion_tokens == completion.usage.completion_tokens
    translated = provider in ("anthropic", "bedrock")
    assert (record.native_response_body != record.response_body) is translated


@pytest.mark.parametrize("spec", list(FAMILIES))
def test_streams_through_every_provider_family(ai_gateway: Gateway, mock_provider: MockProvider, spec: str) -> None:
    stream = client(ai_gateway).chat.completions.create(model=spec, messages=MESSAGES, stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1 and usage[0].completion_tokens > 0  # asked of the provider for the log
    (request,) = mock_provider.requests
    if spec.endswith(("/anthropic", "/bedrock")):
        assert request.path.endswith(("/v1/messages", "/converse-stream"))


@pytest.mark.parametrize("spec", list(FAMILIES))
def test_tool_calls_through_every_provider_family(ai_gateway: Gateway, spec: str) -> None:
    sdk = client(ai_gateway)
    completion = sdk.chat.completions.create(model=spec, messages=MESSAGES, tools=[WEATHER_TOOL])
    (call,) = completion.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"
    assert "city" in json.loads(call.function.arguments)
    assert completion.choices[0].finish_reason == "tool_calls"

    stream = sdk.chat.completions.create(model=spec, messages=MESSAGES, tools=[WEATHER_TOOL], stream=True)
    deltas = [d for c in stream if c.choices for d in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].function is not None and deltas[0].function.name == "get_weather"
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
    assert "city" in json.loads(arguments)

    # The tool's answer goes back as a tool message; the provider then answers in text.
    follow_up = [
        *MESSAGES,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 C"},
    ]
    answer = sdk.chat.completions.create(model=spec, messages=follow_up, tools=[WEATHER_TOOL])
    assert answer.choices[0].message.content and not answer.choices[0].message.tool_calls


@pytest.mark.parametrize(
    "spec", [f"{GPT}/openai", f"{CLAUDE}/anthropic", f"{CLAUDE}/bedrock", "deepseek-chat/deepseek"]
)
def test_responses_api_through_every_family(ai_gateway: Gateway, mock_provider: MockProvider, spec: str) -> None:
    sdk = client(ai_gateway)
    response = sdk.responses.create(model=spec, input="Say hello", instructions="Be brief")
    assert response.status == "completed" and response.output_text
    assert response.usage is not None and response.usage.output_tokens > 0
    (request,) = mock_provider.requests
    assert request.path.endswith("/v1/responses") is spec.endswith("/openai")  # OpenAI's own API is passed through

    events = list(sdk.responses.create(model=spec, input="Say hello", stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta")
    completed = events[-1].response  # type: ignore[union-attr]
    assert completed.output_text


def test_openai_only_responses_features_reach_openai_untouched(
    ai_gateway: Gateway, mock_provider: MockProvider
) -> None:
    sdk = client(ai_gateway)
    sdk.responses.create(model=f"{GPT}/openai", input="And then?", previous_response_id="resp_123", store=True)
    sent = msgspec.json.decode(mock_provider.requests[0].body)
    assert (sent["previous_response_id"], sent["store"]) == ("resp_123", True)
    with pytest.raises(openai.BadRequestError) as caught:  # no provider but OpenAI keeps response state
        sdk.responses.create(model=f"{CLAUDE}/anthropic", input="And then?", previous_response_id="resp_123")
    assert caught.value.body["param"] == "previous_response_id"  # type: ignore[index]


def test_a_malformed_responses_input_is_a_400_not_a_crash(ai_gateway: Gateway) -> None:
    with pytest.raises(openai.BadRequestError):
        client(ai_gateway).responses.create(model=f"{CLAUDE}/anthropic", input=[{"type": {}}])  # type: ignore[list-item]


def test_responses_tool_call_round_trip_on_a_translated_provider(ai_gateway: Gateway) -> None:
    sdk = client(ai_gateway)
    tool = {
        "type": "function",
        "name": "get_weather",
        "parameters": WEATHER_TOOL["function"]["parameters"],
        "strict": True,
    }  # type: ignore[index]
    first = sdk.responses.create(model=f"{CLAUDE}/anthropic", input="Weather in Paris?", tools=[tool])  # type: ignore[list-item]
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather"
    history = [
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny"},
    ]
    second = sdk.responses.create(model=f"{CLAUDE}/anthropic", input=history, tools=[tool])  # type: ignore[arg-type, list-item]
    assert second.output_text and not [i for i in second.output if i.type == "function_call"]


# -- routing and failover ------------------------------------------------------------------------


@pytest.fixture
def failing_openai(mock_provider: MockProvider, tmp_path: Path) -> Iterator[Gateway]:
    """OpenAI's account answers 429 on every call, OpenRouter's 401; Azure's works."""
    env = {**PROVIDER_ENV, "OPENAI_API_KEY": "sk-mock-status-429", "OPENROUTER_API_KEY": "sk-mock-status-401"}
    gw = start_ai_gateway(tmp_path, mock_provider.url, env)
    yield gw
    gw.stop()


def test_a_chain_fails_over_to_the_next_provider(failing_openai: Gateway, mock_provider: MockProvider) -> None:
    raw = client(failing_openai).chat.completions.with_raw_response.create(
        model=f"{GPT}/openai,{GPT}/azure", messages=MESSAGES
    )
    assert raw.parse().choices[0].message.content
    assert raw.headers["helicone-provider"] == "azure"
    assert [r.path for r in mock_provider.requests] == [
        "/v1/chat/completions",
        "/openai/deployments/gpt-4o-mini/chat/completions",
    ]
    record = failing_openai.record(raw.headers["helicone-id"])
    assert record.gateway_attempts == 2 and record.gateway_provider == "azure"
    assert any(e.startswith("openai answered 429") for e in record.errors)
    # Usage and cost come from the answer that was relayed, not from the failed attempt's error body.
    assert record.usage is not None and record.usage.completion_tokens
    assert record.native_response_body is not None and '"error"' not in record.native_response_body


def test_a_locked_provider_does_not_fail_over(failing_openai: Gateway, mock_provider: MockProvider) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        client(failing_openai).chat.completions.create(model=f"{GPT}/openai", messages=MESSAGES)
    assert len(mock_provider.requests) == 1
    details = caught.value.body["details"]  # type: ignore[index]
    assert [(d["provider"], d["status"]) for d in details] == [("openai", 429)]


def test_when_all_fail_the_most_actionable_error_wins(failing_openai: Gateway, mock_provider: MockProvider) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:  # 401 beats 429
        client(failing_openai).chat.completions.create(model=f"{GPT}/openai,{GPT}/openrouter", messages=MESSAGES)
    details = caught.value.body["details"]  # type: ignore[index]
    assert [(d["provider"], d["status"]) for d in details] == [("openai", 429), ("openrouter", 401)]
    assert len(mock_provider.requests) == 2
    # A provider's refusal of heliport's own key is reported without its text (which may quote the key).
    assert "sk-mock-status-401" not in caught.value.response.text
    assert details[1]["message"] == "openrouter refused the deployment's credentials"


def test_a_stream_that_fails_at_its_first_event_fails_over(ai_gateway: Gateway, mock_provider: MockProvider) -> None:
    stream = client(ai_gateway).chat.completions.with_raw_response.create(
        model=f"{CLAUDE}/anthropic,{GPT}/openai",
        messages=MESSAGES,
        stream=True,
        extra_headers={"x-mock-stream-error": "overloaded"},  # Anthropic: 200, then `event: error`
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream.parse() if c.choices)
    assert text and stream.headers["helicone-provider"] == "openai"
    assert [r.path for r in mock_provider.requests] == ["/v1/messages", "/v1/chat/completions"]
    record = ai_gateway.record(stream.headers["helicone-id"])
    assert record.status == 200 and record.gateway_attempts == 2
    assert any(e.startswith("anthropic answered 529") for e in record.errors)


def test_a_stream_that_fails_before_its_first_token_answers_with_that_status(ai_gateway: Gateway) -> None:
    with pytest.raises(openai.InternalServerError) as caught:  # not a 200 carrying only an error event
        client(ai_gateway).chat.completions.create(
            model=f"{CLAUDE}/anthropic",
            messages=MESSAGES,
            stream=True,
            extra_headers={"x-mock-stream-error": "overloaded"},
        )
    assert caught.value.status_code == 529
    record = ai_gateway.record(caught.value.response.headers["helicone-id"])
    assert record.status == 529


def test_server_errors_and_unreachable_providers_fail_over(mock_provider: MockProvider, tmp_path: Path) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers: a provider that hangs
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))
    refused_url = f"http://127.0.0.1:{refused.getsockname()[1]}"
    refused.close()  # nothing listens there any more
    overrides = {p: mock_provider.url for p in PROVIDERS}
    overrides.update({"deepseek": f"http://127.0.0.1:{silent.getsockname()[1]}", "x": refused_url})
    env = {**PROVIDER_ENV, "MISTRAL_API_KEY": "mistral-mock-status-500"}
    gw = start_gateway(
        tmp_path,
        mock_provider.url,
        provider_env=env,
        upstream_overrides=overrides,
        timeouts=Timeouts(connect=2, read=1),
    )
    try:
        spec = "mistral-small/mistral,deepseek-chat/deepseek,grok-3-mini/xai,gpt-4o-mini/azure"
        raw = client(gw).chat.completions.with_raw_response.create(model=spec, messages=MESSAGES)
        assert raw.headers["helicone-provider"] == "azure"
        record = gw.record(raw.headers["helicone-id"])
        assert record.gateway_attempts == 4
        assert [e.split(":")[0].split(" ")[0] for e in record.errors] == ["mistral", "deepseek", "xai"]
    finally:
        gw.stop()
        silent.close()


def test_exclusions_keep_a_provider_out(ai_gateway: Gateway, mock_provider: MockProvider) -> None:
    for _ in range(6):
        client(ai_gateway).chat.completions.create(model=f"!openai,!openrouter,{GPT}", messages=MESSAGES)
    paths = {r.path for r in mock_provider.requests}
    assert paths == {"/openai/deployments/gpt-4o-mini/chat/completions"}


def test_a_configured_deployment_is_used_by_name(ai_gateway: Gateway, mock_provider: MockProvider) -> None:
    client(ai_gateway).chat.completions.create(model=f"{GPT}/azure/eu-frankfurt", messages=MESSAGES)
    (request,) = mock_provider.requests
    assert request.path == "/openai/deployments/eu-frankfurt/chat/completions"
    assert request.query.startswith("api-version=")


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("", "model"),
        (f"{GPT},,{GPT}/openai", "empty"),
        ("!openai", "exclu"),
        (f"{GPT}/nosuchprovider", "nosuchprovider"),
        ("no-such-model-anywhere", "no-such-model-anywhere"),
        (f"{GPT}/azure/not-configured", "not-configured"),
    ],
)
def test_invalid_model_strings_are_a_400_saying_why(ai_gateway: Gateway, spec: str, reason: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(ai_gateway).chat.completions.create(model=spec, messages=MESSAGES)
    error = caught.value.body
    assert isinstance(error, dict) and reason in error["message"].lower()


def test_an_unknown_model_goes_through_a_named_provider_as_given(
    ai_gateway: Gateway, mock_provider: MockProvider
) -> None:
    client(ai_gateway).chat.completions.create(model="my-finetune-2026/openai", messages=MESSAGES)
    assert msgspec.json.decode(mock_provider.requests[0].body)["model"] == "my-finetune-2026"


def test_a_bad_key_is_a_401_and_calls_no_provider(ai_gateway: Gateway, mock_provider: MockProvider) -> None:
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(
            base_url=f"{ai_gateway.url}/v1", api_key="sk-heliport-wrong", max_retries=0
        ).chat.completions.create(model=GPT, messages=MESSAGES)
    assert mock_provider.requests == []


def test_models_lists_what_is_configured_and_the_registry_is_public(ai_gateway: Gateway) -> None:
    models = client(ai_gateway).models.list()
    ids = {m.id for m in models}
    assert {GPT, CLAUDE} <= ids
    multimodal = {
        m.id
        for m in client(ai_gateway).get("/models/multimodal", cast_to=openai.pagination.SyncPage[openai.types.Model])
    }
    assert CLAUDE in multimodal and multimodal < ids
    public = httpx.get(f"{ai_gateway.url}/v1/public/model-registry/models", timeout=5)
    assert public.status_code == 200
    assert any(m["id"] == CLAUDE for m in public.json()["data"]["models"])


def test_the_gateway_caches_like_the_proxy(ai_gateway: Gateway, mock_provider: MockProvider) -> None:
    sdk = client(ai_gateway, default_headers={"Helicone-Cache-Enabled": "true"})
    first = sdk.chat.completions.with_raw_response.create(model=f"{CLAUDE}/anthropic", messages=MESSAGES, seed=7)
    second = sdk.chat.completions.with_raw_response.create(model=f"{CLAUDE}/anthropic", messages=MESSAGES, seed=7)
    assert (first.headers["helicone-cache"], second.headers["helicone-cache"]) == ("MISS", "HIT")
    assert second.headers["content-type"] == "application/json"
    assert second.headers["helicone-provider"] == "anthropic"
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert len(mock_provider.requests) == 1


def test_session_and_properties_apply_to_gateway_traffic(ai_gateway: Gateway) -> None:
    sdk = client(ai_gateway, default_headers={"Helicone-Session-Id": "s-1", "Helicone-Property-Team": "search"})
    raw = sdk.chat.completions.with_raw_response.create(model=f"{CLAUDE}/anthropic", messages=MESSAGES, user="u-7")
    record = ai_gateway.record(raw.headers["helicone-id"])
    assert (record.session_id, record.properties, record.user_id) == ("s-1", {"team": "search"}, "u-7")
