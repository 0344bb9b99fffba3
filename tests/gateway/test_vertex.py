"""Vertex AI through the unified gateway: Claude (rawPredict) and Gemini (OpenAI-compatible endpoint).

Everything goes over real HTTP: the official ``openai`` SDK -> heliport -> the mock provider, which
serves Google's OAuth2 token endpoint (checking each JWT assertion's RS256 signature against the
public half of a key generated here) and Vertex's model routes (checking the bearer token it issued).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import openai
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from heliport.gateway import vertex
from heliport.logs.cost import compute_cost
from heliport.logs.usage import resolve_model
from tests.gateway.conftest import client
from tests.harness import Gateway, start_gateway
from tests.logs.test_end_to_end import logdb_of, wait_for_row
from tests.mock_provider import MockProvider
from tests.mock_provider.vertex import VertexMock

PROJECT = "heliport-test"
LOCATION = "us-east5"
CLAUDE = "claude-sonnet-4@20250514/vertex"
GEMINI = "gemini-2.5-flash/vertex"
MESSAGES: Any = [{"role": "user", "content": "Say hello"}]
CLAUDE_PATH = (
    f"/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/anthropic/models/claude-sonnet-4@20250514:rawPredict"
)
OPENAPI_PATH = f"/v1/projects/{PROJECT}/locations/{LOCATION}/endpoints/openapi/chat/completions"
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@dataclass(frozen=True)
class ServiceAccount:
    key_id: str
    email: str
    info: dict[str, Any]
    public_pem: bytes


def new_service_account(mock: MockProvider, *, email: str | None = None, register: bool = True) -> ServiceAccount:
    """A fresh RSA key as a Google service-account key file whose token_uri is the mock's endpoint."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_id = uuid.uuid4().hex
    email = email or f"heliport-{key_id[:8]}@{PROJECT}.iam.gserviceaccount.com"
    info = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": key_id,
        "private_key": private_pem,
        "client_email": email,
        "client_id": "1234567890",
        "token_uri": f"{mock.url}/token",
    }
    if register:
        vertex_mock(mock).register(key_id, public_pem, email)
    return ServiceAccount(key_id, email, info, public_pem)


def vertex_mock(mock: MockProvider) -> VertexMock:
    state: VertexMock = mock.app.state.mock.vertex
    return state


def start_vertex_gateway(tmp_path: Path, mock: MockProvider, account: ServiceAccount | None, **env: str) -> Gateway:
    provider_env = {"VERTEX_LOCATION": LOCATION, "ANTHROPIC_API_KEY": "sk-ant-test", **env}
    if account is not None:
        provider_env["GOOGLE_APPLICATION_CREDENTIALS_JSON"] = json.dumps(account.info)
    return start_gateway(
        tmp_path,
        mock.url,
        provider_env=provider_env,
        upstream_overrides={"vertex": mock.url, "anthropic": mock.url},
    )


@pytest.fixture(scope="module")
def account(mock_provider: MockProvider) -> ServiceAccount:
    return new_service_account(mock_provider)


@pytest.fixture(scope="module")
def vertex_gateway(
    mock_provider: MockProvider, account: ServiceAccount, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    gw = start_vertex_gateway(tmp_path_factory.mktemp("vertex"), mock_provider, account)
    yield gw
    gw.stop()


def model_calls(mock: MockProvider) -> list[Any]:
    return [r for r in mock.requests if r.path.startswith("/v1/projects/")]


def token_calls(mock: MockProvider) -> list[Any]:
    return [r for r in mock.requests if r.path == "/token"]


def issued_to(mock: MockProvider, account: ServiceAccount) -> list[str]:
    return [t.token for t in vertex_mock(mock).issued if t.client_email == account.email]


# -- chat, stream, tools, Responses ------------------------------------------------------------------


def test_claude_chat_goes_to_raw_predict_with_the_service_accounts_token(
    vertex_gateway: Gateway, mock_provider: MockProvider, account: ServiceAccount
) -> None:
    raw = client(vertex_gateway).chat.completions.with_raw_response.create(
        model=CLAUDE, messages=MESSAGES, max_completion_tokens=200
    )
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert raw.headers["helicone-provider"] == "vertex"

    (call,) = model_calls(mock_provider)
    assert call.path == CLAUDE_PATH
    body = json.loads(call.body)
    assert body["anthropic_version"] == "vertex-2023-10-16" and "model" not in body
    assert body["max_tokens"] == 200 and body["stream"] is False
    assert body["messages"] == [{"role": "user", "content": "Say hello"}]
    # The bearer token is one the token endpoint issued to this service account; the heliport key stays home.
    assert call.headers["authorization"].removeprefix("Bearer ") in issued_to(mock_provider, account)
    assert vertex_gateway.key not in json.dumps(call.headers)
    assert "x-api-key" not in call.headers

    record = vertex_gateway.record(raw.headers["helicone-id"])
    assert (record.status, record.provider, record.gateway_provider) == (200, "GOOGLE", "vertex")
    assert record.target_url.endswith(CLAUDE_PATH)
    assert record.usage is not None and record.usage.completion_tokens == completion.usage.completion_tokens
    # Neither the access token nor the key it came from is logged or shown to the client.
    stored = msgspec.json.encode(record).decode() + raw.http_response.text + json.dumps(dict(raw.headers))
    token = call.headers["authorization"].removeprefix("Bearer ")
    assert token not in stored and account.info["private_key"].splitlines()[1] not in stored


def test_claude_stream_goes_to_stream_raw_predict(vertex_gateway: Gateway, mock_provider: MockProvider) -> None:
    stream = client(vertex_gateway).chat.completions.create(model=CLAUDE, messages=MESSAGES, stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1 and usage[0].completion_tokens > 0
    (call,) = model_calls(mock_provider)
    assert call.path == CLAUDE_PATH.replace(":rawPredict", ":streamRawPredict")
    assert json.loads(call.body)["stream"] is True


def test_gemini_chat_goes_to_the_openai_compatible_endpoint(
    vertex_gateway: Gateway, mock_provider: MockProvider, account: ServiceAccount
) -> None:
    raw = client(vertex_gateway).chat.completions.with_raw_response.create(
        model=GEMINI, messages=MESSAGES, max_completion_tokens=50, store=True, logit_bias={"1": 1}
    )
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.model == "google/gemini-2.5-flash"  # relayed as Vertex answered
    (call,) = model_calls(mock_provider)
    assert call.path == OPENAPI_PATH
    body = json.loads(call.body)
    assert body["model"] == "google/gemini-2.5-flash"
    # Filtered as for Gemini's own OpenAI-compatible endpoint.
    assert body["max_tokens"] == 50 and "max_completion_tokens" not in body
    assert "store" not in body and "logit_bias" not in body
    assert call.headers["authorization"].removeprefix("Bearer ") in issued_to(mock_provider, account)
    record = vertex_gateway.record(raw.headers["helicone-id"])
    assert (record.provider, record.gateway_provider) == ("GOOGLE", "vertex")
    assert record.native_response_body == record.response_body  # relayed, not translated


def test_gemini_stream_asks_for_usage(vertex_gateway: Gateway, mock_provider: MockProvider) -> None:
    stream = client(vertex_gateway).chat.completions.create(model=GEMINI, messages=MESSAGES, stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert [c.usage for c in chunks if c.usage is not None]
    (call,) = model_calls(mock_provider)
    body = json.loads(call.body)
    assert call.path == OPENAPI_PATH and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("spec", [CLAUDE, GEMINI])
def test_tool_calls_whole_and_streamed_then_the_result(vertex_gateway: Gateway, spec: str) -> None:
    sdk = client(vertex_gateway)
    completion = sdk.chat.completions.create(model=spec, messages=MESSAGES, tools=[WEATHER_TOOL])
    (call,) = completion.choices[0].message.tool_calls or []
    assert call.type == "function" and call.function.name == "get_weather"
    assert "city" in json.loads(call.function.arguments)
    assert completion.choices[0].finish_reason == "tool_calls"

    stream = sdk.chat.completions.create(model=spec, messages=MESSAGES, tools=[WEATHER_TOOL], stream=True)
    deltas = [d for c in stream if c.choices for d in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].function is not None and deltas[0].function.name == "get_weather"
    assert "city" in json.loads("".join(d.function.arguments or "" for d in deltas if d.function))

    follow_up: Any = [
        *MESSAGES,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "18 C, cloudy"},
    ]
    answer = sdk.chat.completions.create(model=spec, messages=follow_up, tools=[WEATHER_TOOL])
    assert answer.choices[0].message.content and answer.choices[0].finish_reason == "stop"


def test_claude_tool_definitions_reach_vertex_in_anthropics_shape(
    vertex_gateway: Gateway, mock_provider: MockProvider
) -> None:
    client(vertex_gateway).chat.completions.create(
        model=CLAUDE, messages=MESSAGES, tools=[WEATHER_TOOL], tool_choice="required"
    )
    body = json.loads(model_calls(mock_provider)[0].body)
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "The weather in a city",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
        }
    ]
    assert body["tool_choice"]["type"] == "any"


@pytest.mark.parametrize("spec", [CLAUDE, GEMINI])
def test_responses_api_whole_and_streamed(vertex_gateway: Gateway, mock_provider: MockProvider, spec: str) -> None:
    sdk = client(vertex_gateway)
    response = sdk.responses.create(model=spec, input="Say hello", max_output_tokens=300)
    assert response.status == "completed" and response.output_text
    assert response.usage is not None and response.usage.output_tokens > 0

    events = list(sdk.responses.create(model=spec, input="Say hello", stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta")

    tool = {"type": "function", "name": "get_weather", "parameters": WEATHER_TOOL["function"]["parameters"]}
    called = sdk.responses.create(model=spec, input="Weather in Paris?", tools=[tool])  # type: ignore[list-item]
    (item,) = [o for o in called.output if o.type == "function_call"]
    assert item.name == "get_weather" and "city" in json.loads(item.arguments)
    paths = {r.path for r in model_calls(mock_provider)}
    assert paths <= {CLAUDE_PATH, CLAUDE_PATH.replace(":rawPredict", ":streamRawPredict"), OPENAPI_PATH}


def test_registry_models_route_to_vertex_under_its_own_ids(
    vertex_gateway: Gateway, mock_provider: MockProvider
) -> None:
    """Without a provider part the registry's vertex endpoints are used (Anthropic excluded here)."""
    sdk = client(vertex_gateway)
    raw = sdk.chat.completions.with_raw_response.create(model="claude-sonnet-4,!anthropic", messages=MESSAGES)
    assert raw.headers["helicone-provider"] == "vertex" and raw.parse().choices[0].message.content
    sdk.chat.completions.create(model="gemini-2.5-flash", messages=MESSAGES)  # google (AI Studio) is not configured
    first, second = model_calls(mock_provider)
    assert first.path == CLAUDE_PATH
    assert second.path == OPENAPI_PATH and json.loads(second.body)["model"] == "google/gemini-2.5-flash"


# -- the access token ----------------------------------------------------------------------------


def test_the_token_is_fetched_once_and_shared_by_concurrent_requests(
    tmp_path: Path, mock_provider: MockProvider
) -> None:
    sa = new_service_account(mock_provider)
    gw = start_vertex_gateway(tmp_path, mock_provider, sa)
    try:
        sdk = client(gw)
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: sdk.chat.completions.create(model=CLAUDE, messages=MESSAGES), range(8)))
        assert all(a.choices[0].message.content for a in answers)
        sdk.chat.completions.create(model=GEMINI, messages=MESSAGES)
    finally:
        gw.stop()
    # One token request for nine calls: no stampede, and the token is cached between requests.
    (token,) = issued_to(mock_provider, sa)
    assert len(token_calls(mock_provider)) == 1
    assert {r.headers["authorization"] for r in model_calls(mock_provider)} == {f"Bearer {token}"}
    # What google-auth sent: the JWT-bearer grant (the mock verified the assertion's RS256 signature).
    form = token_calls(mock_provider)[0].body.decode()
    assert "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer" in form and "assertion=" in form
    assert vertex_mock(mock_provider).refused == []


def test_a_token_near_expiry_is_refreshed_before_use(tmp_path: Path, mock_provider: MockProvider) -> None:
    sa = new_service_account(mock_provider)
    # Tokens that live less than the refresh margin: each use finds the cached one too close to expiry.
    vertex_mock(mock_provider).set_lifetime(sa.key_id, int(vertex.REFRESH_MARGIN_S) - 60)
    gw = start_vertex_gateway(tmp_path, mock_provider, sa)
    try:
        sdk = client(gw)
        sdk.chat.completions.create(model=CLAUDE, messages=MESSAGES)
        sdk.chat.completions.create(model=CLAUDE, messages=MESSAGES)
        first, second = issued_to(mock_provider, sa)
        assert first != second
        assert [r.headers["authorization"] for r in model_calls(mock_provider)] == [
            f"Bearer {first}",
            f"Bearer {second}",
        ]
        # Long-lived tokens again: the next refresh is kept for the calls after it.
        vertex_mock(mock_provider).set_lifetime(sa.key_id, 3600)
        sdk.chat.completions.create(model=CLAUDE, messages=MESSAGES)
        sdk.chat.completions.create(model=GEMINI, messages=MESSAGES)
    finally:
        gw.stop()
    assert len(issued_to(mock_provider, sa)) == 3
    third = issued_to(mock_provider, sa)[2]
    assert [r.headers["authorization"] for r in model_calls(mock_provider)][2:] == [f"Bearer {third}"] * 2


def test_a_refresh_in_flight_does_not_block_other_requests(tmp_path: Path, mock_provider: MockProvider) -> None:
    """The token request runs in a worker thread: while it is held at the token endpoint, the same
    heliport still serves other requests, and the held one completes once the token arrives."""
    sa = new_service_account(mock_provider)
    gw = start_vertex_gateway(tmp_path, mock_provider, sa)
    gate = f"vertex-token-{sa.key_id}"
    vertex_mock(mock_provider).token_gate = gate
    try:
        sdk = client(gw, timeout=20)
        with ThreadPoolExecutor(1) as pool:
            held = pool.submit(sdk.chat.completions.create, model=CLAUDE, messages=MESSAGES)
            assert mock_provider.recorder.wait_for_gate(gate, timeout=10)
            other = sdk.chat.completions.create(model="claude-sonnet-4/anthropic", messages=MESSAGES)
            assert other.choices[0].message.content
            assert not held.done()  # still waiting for its token
            mock_provider.recorder.release(gate)
            assert held.result(timeout=20).choices[0].message.content
    finally:
        vertex_mock(mock_provider).token_gate = None
        mock_provider.recorder.release(gate)
        gw.stop()
    assert mock_provider.recorder.gate_results[gate] == "released"
    assert len(issued_to(mock_provider, sa)) == 1


def test_a_key_the_token_endpoint_rejects_fails_over(tmp_path: Path, mock_provider: MockProvider) -> None:
    """A key whose signature Google cannot verify: no token, a 502 for Vertex, the next provider answers."""
    trusted = new_service_account(mock_provider)
    impostor = new_service_account(mock_provider, email=trusted.email, register=False)
    forged = ServiceAccount(trusted.key_id, trusted.email, {**impostor.info, "private_key_id": trusted.key_id}, b"")
    gw = start_vertex_gateway(tmp_path, mock_provider, forged)
    try:
        sdk = client(gw)
        with pytest.raises(openai.APIStatusError) as failed:
            sdk.chat.completions.create(model=CLAUDE, messages=MESSAGES)
        assert failed.value.status_code == 502
        assert "Invalid JWT Signature" in failed.value.message
        assert vertex_mock(mock_provider).refused[-1] == "Invalid JWT Signature."
        assert model_calls(mock_provider) == []  # nothing reaches Vertex without a token

        raw = sdk.chat.completions.with_raw_response.create(
            model=f"{CLAUDE},claude-sonnet-4/anthropic", messages=MESSAGES
        )
        assert raw.headers["helicone-provider"] == "anthropic"
        record = gw.record(raw.headers["helicone-id"])
        assert record.fallback_index == 1
        assert any("vertex answered 502" in e and "Invalid JWT Signature" in e for e in record.errors)
    finally:
        gw.stop()


def test_an_unreadable_key_leaves_the_other_providers_working(tmp_path: Path, mock_provider: MockProvider) -> None:
    gw = start_vertex_gateway(
        tmp_path, mock_provider, None, GOOGLE_APPLICATION_CREDENTIALS=str(tmp_path / "missing.json")
    )
    try:
        sdk = client(gw)
        with pytest.raises(openai.APIStatusError) as failed:
            sdk.chat.completions.create(model=GEMINI, messages=MESSAGES)
        assert failed.value.status_code == 502
        assert "GOOGLE_APPLICATION_CREDENTIALS names a file that cannot be read" in failed.value.message
        answer = sdk.chat.completions.create(model="claude-sonnet-4/anthropic", messages=MESSAGES)
        assert answer.choices[0].message.content
    finally:
        gw.stop()


def test_without_a_key_vertex_is_not_configured(tmp_path: Path, mock_provider: MockProvider) -> None:
    gw = start_vertex_gateway(tmp_path, mock_provider, None)
    try:
        with pytest.raises(openai.BadRequestError) as failed:
            client(gw).chat.completions.create(model=GEMINI, messages=MESSAGES)
        assert "provider 'vertex' is not configured" in failed.value.message
    finally:
        gw.stop()


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "moves_on"), [(429, True), (503, True), (500, True), (400, False), (404, False)])
def test_vertex_errors_fail_over_as_the_routing_doc_says(
    tmp_path: Path, mock_provider: MockProvider, status: int, moves_on: bool
) -> None:
    """An account Vertex always refuses with ``status``: rate limits and outages move on to the next
    provider; a request Vertex calls invalid (or a model it does not have) is the caller's answer."""
    failing = new_service_account(mock_provider, email=f"mock-status-{status}-{uuid.uuid4().hex[:6]}@{PROJECT}.iam")
    gw = start_vertex_gateway(tmp_path, mock_provider, failing)
    try:
        sdk = client(gw)
        if moves_on:
            raw = sdk.chat.completions.with_raw_response.create(
                model=f"{CLAUDE},claude-sonnet-4/anthropic", messages=MESSAGES
            )
            assert raw.headers["helicone-provider"] == "anthropic"
            record = gw.record(raw.headers["helicone-id"])
            assert record.fallback_index == 1
            assert any(e.startswith(f"vertex answered {status}: ") for e in record.errors)
        else:
            with pytest.raises(openai.APIStatusError) as failed:
                sdk.chat.completions.create(model=f"{GEMINI},claude-sonnet-4/anthropic", messages=MESSAGES)
            assert failed.value.status_code == status
            assert [r.path for r in mock_provider.requests if r.path == "/v1/messages"] == []
    finally:
        gw.stop()


def test_google_error_bodies_are_read_for_the_client(vertex_gateway: Gateway, mock_provider: MockProvider) -> None:
    sdk = client(vertex_gateway)
    for spec, as_list in ((CLAUDE, "0"), (GEMINI, "1")):
        with pytest.raises(openai.BadRequestError) as failed:
            sdk.chat.completions.create(
                model=spec, messages=MESSAGES, extra_headers={"x-mock-status": "400", "x-mock-error-list": as_list}
            )
        assert "INVALID_ARGUMENT: Request contains an invalid argument." in failed.value.message
    with pytest.raises(openai.RateLimitError) as limited:
        sdk.chat.completions.create(model=GEMINI, messages=MESSAGES, extra_headers={"x-mock-status": "429"})
    assert "RESOURCE_EXHAUSTED" in limited.value.message


def test_claude_overload_mid_stream_on_vertex_fails_over(vertex_gateway: Gateway) -> None:
    raw = client(vertex_gateway).chat.completions.with_raw_response.create(
        model=f"{CLAUDE},{GEMINI}",
        messages=MESSAGES,
        stream=True,
        extra_headers={"x-mock-stream-error": "overloaded"},
    )
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text and raw.headers["helicone-provider"] == "vertex"
    record = vertex_gateway.record(raw.headers["helicone-id"])
    assert record.fallback_index == 1 and record.gateway_attempts == 2


def test_context_editing_is_refused_for_gemini_and_sent_natively_for_claude(
    vertex_gateway: Gateway, mock_provider: MockProvider
) -> None:
    sdk = client(vertex_gateway)
    editing = {"context_editing": {"enabled": True}}
    with pytest.raises(openai.BadRequestError) as failed:
        sdk.chat.completions.create(model=GEMINI, messages=MESSAGES, extra_body=editing)
    assert "context_editing" in failed.value.message
    sdk.chat.completions.create(model=CLAUDE, messages=MESSAGES, extra_body=editing)
    call = model_calls(mock_provider)[-1]
    body = json.loads(call.body)
    assert body["context_management"]["edits"][0]["type"] == "clear_tool_uses_20250919"
    assert body["anthropic_beta"] == ["context-management-2025-06-27"]
    # A caller's own beta flags join them in the body; Vertex does not read the header.
    sdk.chat.completions.create(
        model=CLAUDE, messages=MESSAGES, extra_body=editing, extra_headers={"anthropic-beta": "effort-2025-11-24"}
    )
    call = model_calls(mock_provider)[-1]
    assert json.loads(call.body)["anthropic_beta"] == ["effort-2025-11-24", "context-management-2025-06-27"]
    assert "anthropic-beta" not in call.headers


# -- usage and cost on the row ---------------------------------------------------------------------


@pytest.mark.parametrize("spec", [CLAUDE, GEMINI])
def test_rows_carry_usage_and_googles_price(tmp_path: Path, mock_provider: MockProvider, spec: str) -> None:
    sa = new_service_account(mock_provider)
    provider_env = {
        "VERTEX_LOCATION": LOCATION,
        "VERTEX_PROJECT": PROJECT,
        "GOOGLE_APPLICATION_CREDENTIALS_JSON": json.dumps(sa.info),
    }
    gw = start_gateway(
        tmp_path,
        mock_provider.url,
        pipeline=True,
        provider_env=provider_env,
        upstream_overrides={"vertex": mock_provider.url},
    )
    try:
        raw = client(gw).chat.completions.with_raw_response.create(model=spec, messages=MESSAGES, stream=True)
        list(raw.parse())
        row = wait_for_row(logdb_of(gw, tmp_path, None), gw.org_id, raw.headers["helicone-id"])
    finally:
        gw.stop()
    assert (row.status, row.provider, row.gateway_provider) == (200, "GOOGLE", "vertex")
    assert row.prompt_tokens and row.completion_tokens
    assert row.cost is not None and row.cost > 0


# -- units: settings, URLs, error bodies -----------------------------------------------------------


def test_settings_from_json_path_and_fallbacks(tmp_path: Path, mock_provider: MockProvider) -> None:
    sa = new_service_account(mock_provider, register=False)
    assert vertex.vertex_settings({}) is None
    from_json = vertex.vertex_settings({"VERTEXAI_CREDENTIALS": json.dumps(sa.info)})
    assert from_json is not None
    assert (from_json.project, from_json.location, from_json.auth.problem) == (PROJECT, "global", None)
    path = tmp_path / "key.json"
    path.write_text(json.dumps(sa.info))
    from_path = vertex.vertex_settings(
        {"GOOGLE_APPLICATION_CREDENTIALS": str(path), "VERTEX_PROJECT": "other", "VERTEXAI_LOCATION": "europe-west1"}
    )
    assert from_path is not None and (from_path.project, from_path.location) == ("other", "europe-west1")
    assert "private_key" not in repr(from_path)  # the key never shows in a repr


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("not json", "not JSON"),
        ("[]", "must be a JSON object"),
        ('{"type": "authorized_user"}', "not 'service_account'"),
        ('{"type": "service_account", "client_email": "a@b"}', "has no private_key, token_uri"),
    ],
)
def test_a_bad_key_is_a_config_error_at_use(raw: str, problem: str) -> None:
    settings = vertex.vertex_settings({"GOOGLE_APPLICATION_CREDENTIALS_JSON": raw, "VERTEX_PROJECT": "p"})
    assert settings is not None and settings.auth.problem is not None and problem in settings.auth.problem
    from heliport.config import ConfigError

    with pytest.raises(ConfigError, match="Vertex AI is not usable"):
        asyncio.run(settings.auth.token())


def test_urls_and_publishers() -> None:
    assert vertex.base_url("global") == "https://aiplatform.googleapis.com"
    assert vertex.base_url("us-east5") == "https://us-east5-aiplatform.googleapis.com"
    assert vertex.base_url("us-east5", "http://127.0.0.1:9/") == "http://127.0.0.1:9"
    base = vertex.base_url("us-east5")
    assert vertex.claude_url(base, "p", "us-east5", "claude-opus-4-1@20250805", stream=True) == (
        "https://us-east5-aiplatform.googleapis.com/v1/projects/p/locations/us-east5"
        "/publishers/anthropic/models/claude-opus-4-1@20250805:streamRawPredict"
    )
    assert vertex.openapi_url(base, "p", "us-east5").endswith("/locations/us-east5/endpoints/openapi/chat/completions")
    assert vertex.publisher_model("claude-sonnet-4@20250514") == ("anthropic", "claude-sonnet-4@20250514")
    assert vertex.publisher_model("anthropic/claude-3-5-haiku@20241022") == ("anthropic", "claude-3-5-haiku@20241022")
    assert vertex.publisher_model("gemini-2.5-pro") == ("google", "gemini-2.5-pro")
    assert vertex.publisher_model("meta/llama-4-maverick") == ("meta", "llama-4-maverick")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"error": {"code": 429, "message": "Quota exceeded.", "status": "RESOURCE_EXHAUSTED"}},
            "RESOURCE_EXHAUSTED: Quota exceeded.",
        ),
        ([{"error": {"code": 404, "message": "Not found.", "status": "NOT_FOUND"}}], "NOT_FOUND: Not found."),
        (
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            "overloaded_error: Overloaded",
        ),
        (
            {"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
            "invalid_grant: Invalid JWT Signature.",
        ),
        ({"message": "plain"}, "plain"),
    ],
)
def test_error_message(body: Any, message: str) -> None:
    assert vertex.error_message(body) == message


def test_a_gemini_row_is_priced_under_googles_id() -> None:
    """Vertex answers ``google/<id>``; genai-prices knows Gemini on Google under the bare id."""
    from heliport.logs.usage import extract_usage

    body = json.dumps(
        {
            "id": "x",
            "object": "chat.completion",
            "model": "google/gemini-2.5-flash",
            "choices": [],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100},
        }
    )
    usage = extract_usage(provider="GOOGLE", path=OPENAPI_PATH, response_body=body, is_stream=False)
    model = resolve_model(model_override=None, response_model=usage.response_model, request_model=None, path="")
    cost = compute_cost(model=model, provider="GOOGLE", usage=usage)
    assert cost.amount is not None and cost.amount > 0
