"""The OpenAI-compatible hosts (issue 25) end to end: the official ``openai`` SDK against heliport's /v1,
each host answering from the mock provider in its own dialect (paths, usage placement, error bodies).

For every host: chat, stream, tools, the Responses API (translated through chat), an error that fails
over and one that does not, and the logged row's provider label, usage and cost. Plus the
``google-ai-studio`` alias of the Gemini API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import msgspec
import openai
import pytest

from heliport.gateway.adapters import _UNSUPPORTED
from heliport.gateway.registry import Registry
from heliport.gateway.routing import RoutingError, plan
from heliport.logs.consumer import build_row
from tests.gateway.conftest import client
from tests.harness import Gateway, start_gateway
from tests.mock_provider import MockProvider
from tests.mock_provider.hosts import CITATIONS, HOSTS

MESSAGES = [{"role": "user", "content": "Say hello"}]
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


@dataclass(frozen=True)
class HostCase:
    slug: str
    #: A registry model this host serves, and the host's own id for it.
    model: str
    provider_model: str
    label: str
    key_env: str
    #: genai-prices prices this host (False: no table, the row stays unpriced and says why).
    priced: bool = True


CASES = [
    HostCase("together", "llama-3.3-70b", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "TOGETHER", "TOGETHER_API_KEY"),
    HostCase("fireworks", "gpt-oss-120b", "accounts/fireworks/models/gpt-oss-120b", "FIREWORKS", "FIREWORKS_API_KEY"),
    HostCase("cerebras", "llama-3.3-70b", "llama-3.3-70b", "CEREBRAS", "CEREBRAS_API_KEY"),
    HostCase("perplexity", "sonar", "sonar", "PERPLEXITY", "PERPLEXITY_API_KEY"),
    HostCase("deepinfra", "gpt-oss-120b", "openai/gpt-oss-120b", "DEEPINFRA", "DEEPINFRA_API_KEY", priced=False),
    HostCase("nebius", "deepseek-r1-0528", "deepseek-ai/DeepSeek-R1-0528", "NEBIUS", "NEBIUS_API_KEY"),
    HostCase("novita", "glm-4.7", "zai-org/glm-4.7", "NOVITA", "NOVITA_API_KEY"),
    HostCase(
        "hyperbolic", "qwen3-coder-480b", "Qwen/Qwen3-Coder-480B-A35B-Instruct", "HYPERBOLIC", "HYPERBOLIC_API_KEY"
    ),
    HostCase("nvidia", "llama-3.1-405b", "meta/llama-3.1-405b-instruct", "NVIDIA", "NVIDIA_API_KEY", priced=False),
    HostCase(
        "llama", "llama-4-maverick", "Llama-4-Maverick-17B-128E-Instruct-FP8", "LLAMA", "LLAMA_API_KEY", priced=False
    ),
]
BY_SLUG = {case.slug: case for case in CASES}
IDS = [case.slug for case in CASES]


def _key(case: HostCase) -> str:
    return f"{case.slug}-test-key"


@pytest.fixture(scope="module")
def hosts_gateway(mock_provider: MockProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """heliport with every host configured (each at ``<mock>/<slug>``), plus OpenAI and Gemini."""
    env = {case.key_env: _key(case) for case in CASES}
    env |= {"OPENAI_API_KEY": "sk-openai-test", "GEMINI_API_KEY": "gemini-test"}
    overrides = {case.slug: f"{mock_provider.url}/{case.slug}" for case in CASES}
    overrides |= {"openai": mock_provider.url, "google": mock_provider.url}
    gateway = start_gateway(
        tmp_path_factory.mktemp("hosts"), mock_provider.url, provider_env=env, upstream_overrides=overrides
    )
    yield gateway
    gateway.stop()


def _spec(case: HostCase) -> str:
    return f"{case.model}/{case.slug}"


def _sent(mock_provider: MockProvider) -> tuple[Any, dict[str, Any]]:
    (request,) = mock_provider.requests
    return request, msgspec.json.decode(request.body)


def _row(gateway: Gateway, request_id: str) -> Any:
    row, _ = build_row(gateway.record(request_id))
    return row


# -- chat ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", IDS)
def test_chat_reaches_the_host_at_its_path_with_its_key_and_filtered_parameters(
    hosts_gateway: Gateway, mock_provider: MockProvider, slug: str
) -> None:
    case = BY_SLUG[slug]
    raw = client(hosts_gateway).chat.completions.with_raw_response.create(
        model=_spec(case),
        messages=MESSAGES,
        max_completion_tokens=64,
        temperature=0.2,
        # OpenAI-only bookkeeping and what some hosts refuse: each host gets only what it accepts.
        extra_body={"store": True, "logit_bias": {"50256": -100}, "parallel_tool_calls": False, "user": "alice"},
    )
    completion = raw.parse()
    assert completion.choices[0].message.content and completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert raw.headers["helicone-provider"] == slug

    request, body = _sent(mock_provider)
    assert request.path == f"/{slug}{HOSTS[slug].chat_path}"
    assert request.headers["authorization"] == f"Bearer {_key(case)}"
    assert hosts_gateway.key not in json.dumps(request.headers)
    assert body["model"] == case.provider_model
    # Every host documents max_tokens; OpenAI's newer name is renamed, not dropped.
    assert body["max_tokens"] == 64 and "max_completion_tokens" not in body
    assert body["temperature"] == 0.2
    refused = _UNSUPPORTED[slug]
    assert "store" in refused and not refused & set(body)
    for name in ("logit_bias", "parallel_tool_calls", "user"):
        assert (name in body) is (name not in refused), name

    row = _row(hosts_gateway, raw.headers["helicone-id"])
    assert (row.provider, row.gateway_provider, row.status) == (case.label, slug, 200)
    assert (row.prompt_tokens, row.completion_tokens) == (
        completion.usage.prompt_tokens,
        completion.usage.completion_tokens,
    )
    if case.priced:
        assert row.cost is not None and row.cost > 0, row.cost_source
        assert row.cost_source.startswith("genai-prices@")
    else:
        assert row.cost is None and row.cost_source.startswith("unpriced: "), row.cost_source


def test_perplexity_citations_reach_the_caller(hosts_gateway: Gateway) -> None:
    completion = client(hosts_gateway).chat.completions.create(model="sonar/perplexity", messages=MESSAGES)
    extra = completion.model_extra or {}
    assert extra["citations"] == CITATIONS
    assert [r["url"] for r in extra["search_results"]] == CITATIONS


def test_a_perplexity_row_is_priced_with_its_request_fee(hosts_gateway: Gateway) -> None:
    raw = client(hosts_gateway).chat.completions.with_raw_response.create(model="sonar/perplexity", messages=MESSAGES)
    row = _row(hosts_gateway, raw.headers["helicone-id"])
    usage = raw.parse().usage
    assert usage is not None
    # Sonar: $1 per million tokens each way, plus a per-request search fee (genai-prices' table).
    tokens_only = Decimal(usage.prompt_tokens + usage.completion_tokens) / 1_000_000
    assert row.cost is not None and row.cost > tokens_only


# -- stream ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", IDS)
def test_streams_with_usage_wherever_the_host_puts_it(
    hosts_gateway: Gateway, mock_provider: MockProvider, slug: str
) -> None:
    case = BY_SLUG[slug]
    stream = client(hosts_gateway).chat.completions.with_raw_response.create(
        model=_spec(case), messages=MESSAGES, stream=True
    )
    request_id = stream.headers["helicone-id"]
    chunks = list(stream.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1 and usage[0].completion_tokens > 0
    _, body = _sent(mock_provider)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}

    row = _row(hosts_gateway, request_id)
    assert row.provider == case.label and row.completion_tokens == usage[0].completion_tokens
    assert (row.cost is not None) is case.priced


# -- tools -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", IDS)
def test_tool_calls_round_trip(hosts_gateway: Gateway, slug: str) -> None:
    sdk = client(hosts_gateway)
    spec = _spec(BY_SLUG[slug])
    completion = sdk.chat.completions.create(model=spec, messages=MESSAGES, tools=[WEATHER_TOOL])
    (call,) = completion.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather" and "city" in json.loads(call.function.arguments)
    assert completion.choices[0].finish_reason == "tool_calls"

    stream = sdk.chat.completions.create(model=spec, messages=MESSAGES, tools=[WEATHER_TOOL], stream=True)
    deltas = [d for c in stream if c.choices for d in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].function is not None and deltas[0].function.name == "get_weather"
    assert "city" in json.loads("".join(d.function.arguments or "" for d in deltas if d.function))

    follow_up = [
        *MESSAGES,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 C"},
    ]
    answer = sdk.chat.completions.create(model=spec, messages=follow_up, tools=[WEATHER_TOOL])
    assert answer.choices[0].message.content and not answer.choices[0].message.tool_calls


# -- Responses API ---------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", IDS)
def test_the_responses_api_is_translated_to_the_hosts_chat(
    hosts_gateway: Gateway, mock_provider: MockProvider, slug: str
) -> None:
    sdk = client(hosts_gateway)
    spec = _spec(BY_SLUG[slug])
    response = sdk.responses.create(model=spec, input="Say hello", instructions="Be brief", max_output_tokens=50)
    assert response.status == "completed" and response.output_text
    assert response.usage is not None and response.usage.output_tokens > 0
    request, body = _sent(mock_provider)
    assert request.path == f"/{slug}{HOSTS[slug].chat_path}"  # hosts have no /v1/responses of their own here
    assert body["messages"][0] == {"role": "system", "content": "Be brief"}
    assert body["max_tokens"] == 50

    events = list(sdk.responses.create(model=spec, input="Say hello", stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds

    tooled = sdk.responses.create(model=spec, input="Weather in Paris?", tools=[_responses_tool()])
    (call,) = [item for item in tooled.output if item.type == "function_call"]
    assert call.name == "get_weather" and "city" in json.loads(call.arguments)


def _responses_tool() -> Any:
    function = WEATHER_TOOL["function"]
    assert isinstance(function, dict)
    return {"type": "function", **function}


# -- failover --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "error"), [(503, None), (429, None), (500, None), (400, "context_length")], ids=str)
@pytest.mark.parametrize("slug", IDS)
def test_a_host_error_that_is_not_the_callers_fault_fails_over(
    hosts_gateway: Gateway, mock_provider: MockProvider, slug: str, status: int, error: str | None
) -> None:
    headers = {"x-mock-host-status": str(status)}
    if error:
        headers["x-mock-host-error"] = error
    raw = client(hosts_gateway).chat.completions.with_raw_response.create(
        model=f"{_spec(BY_SLUG[slug])},gpt-4o-mini/openai", messages=MESSAGES, extra_headers=headers
    )
    assert raw.parse().choices[0].message.content
    assert raw.headers["helicone-provider"] == "openai"
    paths = [r.path for r in mock_provider.requests]
    assert paths == [f"/{slug}{HOSTS[slug].chat_path}", "/v1/chat/completions"]
    record = hosts_gateway.record(raw.headers["helicone-id"])
    assert record.gateway_attempts == 2


@pytest.mark.parametrize("status", [400, 422, 404])
@pytest.mark.parametrize("slug", IDS)
def test_a_host_error_that_is_the_callers_fault_is_relayed_not_failed_over(
    hosts_gateway: Gateway, mock_provider: MockProvider, slug: str, status: int
) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client(hosts_gateway).chat.completions.create(
            model=f"{_spec(BY_SLUG[slug])},gpt-4o-mini/openai",
            messages=MESSAGES,
            extra_headers={"x-mock-host-status": str(status)},
        )
    assert caught.value.status_code == status
    # The host's own message, read out of its own error shape.
    assert f"{slug} mock error {status}" in caught.value.message
    assert len(mock_provider.requests) == 1


# -- google-ai-studio ------------------------------------------------------------------------------


def test_google_ai_studio_is_the_gemini_api(hosts_gateway: Gateway, mock_provider: MockProvider) -> None:
    raw = client(hosts_gateway).chat.completions.with_raw_response.create(
        model="gemini-2.5-flash/google-ai-studio", messages=MESSAGES
    )
    assert raw.parse().choices[0].message.content
    assert raw.headers["helicone-provider"] == "google"
    request, body = _sent(mock_provider)
    assert request.path == "/v1beta/openai/chat/completions"
    assert request.headers["authorization"] == "Bearer gemini-test" and body["model"] == "gemini-2.5-flash"
    row = _row(hosts_gateway, raw.headers["helicone-id"])
    assert row.provider == "GOOGLE" and row.cost is not None and row.cost > 0


def test_the_alias_routes_and_excludes_like_the_provider_it_names() -> None:
    registry = Registry.load()
    everyone = plan("gemini-2.5-pro/google-ai-studio", registry, available=lambda p: True)
    assert [(c.provider, c.provider_model, c.pinned) for c in everyone] == [("google", "gemini-2.5-pro", True)]
    rest = plan("!google-ai-studio,gemini-2.5-pro", registry, available=lambda p: True)
    assert rest and "google" not in {c.provider for c in rest}
    with pytest.raises(RoutingError, match="both excluded"):
        plan("!google,gemini-2.5-pro/google-ai-studio", registry, available=lambda p: True)


# -- listings --------------------------------------------------------------------------------------


def test_the_models_list_and_public_registry_show_the_hosts(hosts_gateway: Gateway) -> None:
    listed = {m.id for m in client(hosts_gateway).models.list()}
    assert {"sonar", "glm-4.7", "qwen3-coder-480b", "llama-3.1-405b", "deepseek-r1-0528"} <= listed
    assert "claude-sonnet-4" not in listed  # no Anthropic, Bedrock, Vertex or OpenRouter account here
    public = httpx.get(f"{hosts_gateway.url}/v1/public/model-registry/models", timeout=10).json()["data"]
    assert public["total"] >= 100
    providers = {e["provider"] for m in public["models"] for e in m["endpoints"]}
    assert {"together", "fireworks", "cerebras", "perplexity", "nebius", "novita", "hyperbolic", "vertex"} <= providers
