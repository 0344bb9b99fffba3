"""Prompt compilation on the AI gateway, end to end: the official ``openai`` SDK sends ``prompt_id`` and
``inputs`` in ``extra_body`` to a live heliport, whose prompt store (the local SQLite adapter, written
through its own methods) holds the saved prompts; the mock provider records what it received in the
provider's wire format.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import openai
import pytest

from heliport.prompts import PromptVersion
from heliport.prompts.factory import open_prompt_store
from heliport.prompts.store import PromptStore
from heliport.steps.prompts import PromptCompilation
from tests.harness import Gateway, start_gateway
from tests.mock_provider import MockProvider

GPT = "gpt-4o-mini/openai"
CLAUDE = "claude-sonnet-4/anthropic"
ENV = {"OPENAI_API_KEY": "sk-openai-test", "ANTHROPIC_API_KEY": "sk-ant-test"}

SUPPORT: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "temperature": 0.6,
    "max_tokens": 1000,
    "messages": [
        {"role": "system", "content": "You are a helpful customer support agent for {{hc:company:string}}."},
        {"role": "user", "content": "Hello, I need help with my account."},
    ],
}


class Prompts:
    """The gateway's own prompt store (the same settings, so the same file), written as the Prompts API does."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.store: PromptStore = open_prompt_store(gw.app.settings)

    def create(self, body: dict[str, Any], name: str = "support") -> tuple[str, PromptVersion]:
        prompt, version = asyncio.run(self.store.create_prompt(self.gw.org_id, name=name, tags=(), body=body))
        return prompt.id, version

    def version(
        self, prompt_id: str, base: PromptVersion, body: dict[str, Any], env: str | None = None
    ) -> PromptVersion:
        return asyncio.run(
            self.store.new_version(
                self.gw.org_id, prompt_id, base_version_id=base.id, major=False, body=body, environment=env
            )
        )

    def step(self) -> PromptCompilation:
        step = self.gw.app._gateway._steps[0]
        assert isinstance(step, PromptCompilation)
        return step


@pytest.fixture(scope="module")
def gw(mock_provider: MockProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    url = mock_provider.url
    gateway = start_gateway(
        tmp_path_factory.mktemp("prompts"),
        url,
        provider_env=ENV,
        upstream_overrides={"oai": url, "openai": url, "anthropic": url},  # the proxy's oai, the gateway's two
    )
    gateway.extra["prompts"] = Prompts(gateway)
    yield gateway
    gateway.stop()


@pytest.fixture
def prompts(gw: Gateway) -> Prompts:
    p: Prompts = gw.extra["prompts"]
    return p


@pytest.fixture(autouse=True)
def _fresh(mock_provider: MockProvider) -> None:
    mock_provider.clear()


def sdk(gw: Gateway, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=gw.key, max_retries=0, **kwargs)


def sent(mock_provider: MockProvider) -> dict[str, Any]:
    (request,) = mock_provider.requests
    body: dict[str, Any] = msgspec.json.decode(request.body)
    return body


def texts(messages: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(m["role"], m["content"]) for m in messages]


# -- assembly ----------------------------------------------------------------------------------------


def test_the_saved_prompt_is_compiled_and_the_request_overrides_and_appends(
    gw: Gateway, prompts: Prompts, mock_provider: MockProvider
) -> None:
    prompt_id, version = prompts.create(SUPPORT)
    completion = sdk(gw).chat.completions.with_raw_response.create(
        model=GPT,
        temperature=0.4,
        messages=[{"role": "user", "content": "Actually, I want to cancel my subscription."}],
        extra_body={"prompt_id": prompt_id, "inputs": {"company": "Acme Corp"}},
    )
    assert completion.parse().choices[0].message.content
    body = sent(mock_provider)
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("gpt-4o-mini", 0.4, 1000)
    assert texts(body["messages"]) == [
        ("system", "You are a helpful customer support agent for Acme Corp."),
        ("user", "Hello, I need help with my account."),
        ("user", "Actually, I want to cancel my subscription."),
    ]
    assert not {"prompt_id", "environment", "version_id", "inputs"} & body.keys()

    record = gw.record(completion.headers["helicone-id"])
    assert record.prompt_id == prompt_id
    assert record.facts["prompt"] == {
        "id": prompt_id,
        "version_id": version.id,
        "version": "0.0",
        "environment": "production",
        "inputs": {"company": "Acme Corp"},
        "store_reads": 1,
    }
    assert record.request_body is not None and "Acme Corp" in record.request_body  # the compiled body is logged
    assert "inputs" not in msgspec.json.decode(record.request_body)


def test_model_and_messages_are_optional_with_a_prompt(
    gw: Gateway, prompts: Prompts, mock_provider: MockProvider
) -> None:
    prompt_id, _ = prompts.create(SUPPORT)
    completion = sdk(gw).chat.completions.create(
        model=openai.omit,  # the SDK leaves both out of the body: the saved prompt supplies them
        messages=openai.omit,
        extra_body={"prompt_id": prompt_id, "inputs": {"company": "Initech"}},
    )
    assert completion.choices[0].message.content
    body = sent(mock_provider)
    assert body["model"] == "gpt-4o-mini"
    assert len(body["messages"]) == 2 and "Initech" in body["messages"][0]["content"]


def test_environment_wins_over_version_id_and_production_is_the_default(
    gw: Gateway, prompts: Prompts, mock_provider: MockProvider
) -> None:
    def saying(text: str) -> dict[str, Any]:
        return {"model": "gpt-4o-mini", "messages": [{"role": "system", "content": text}]}

    prompt_id, production = prompts.create(saying("production"))
    staging = prompts.version(prompt_id, production, saying("staging"), env="staging")
    draft = prompts.version(prompt_id, staging, saying("draft"))
    client = sdk(gw)
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({}, "production", production.id),
        ({"environment": "staging"}, "staging", staging.id),
        ({"version_id": draft.id}, "draft", draft.id),
        ({"version_id": draft.id, "environment": "staging"}, "staging", staging.id),
    ]
    for selector, expected, version_id in cases:
        mock_provider.clear()
        raw = client.chat.completions.with_raw_response.create(
            model=GPT, messages=openai.omit, extra_body={"prompt_id": prompt_id, **selector}
        )
        assert sent(mock_provider)["messages"][0]["content"] == expected, selector
        fact = gw.record(raw.headers["helicone-id"]).facts["prompt"]
        assert fact["version_id"] == version_id
        assert fact["environment"] == selector.get("environment", "production" if not selector else None)


def test_variables_in_tool_schemas_and_response_format_become_typed_values(
    gw: Gateway, prompts: Prompts, mock_provider: MockProvider
) -> None:
    saved = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Recommend a movie for a {{hc:tier:string}} user"}],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "search_movies",
                    "description": "Search the {{hc:tier:string}} catalogue",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "{{hc:filter:string}}": {"type": "string", "enum": "{{hc:genres:array}}"},
                            "limit": {"type": "integer", "maximum": "{{hc:limit:number}}"},
                        },
                    },
                },
            }
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "moviebot_response",
                "strict": "{{hc:strict:boolean}}",
                "schema": {
                    "type": "object",
                    "properties": {"tier": {"type": "string", "enum": "{{hc:tiers:array}}"}},
                    "required": ["tier"],
                    "additionalProperties": False,
                },
            },
        },
    }
    prompt_id, _ = prompts.create(saved)
    inputs = {
        "tier": "premium",
        "filter": "genre",
        "genres": ["drama", "comedy"],
        "limit": "5",
        "strict": "yes",
        "tiers": ["basic", "premium"],
    }
    sdk(gw).chat.completions.create(
        model=GPT, messages=openai.omit, extra_body={"prompt_id": prompt_id, "inputs": inputs}
    )
    body = sent(mock_provider)
    function = body["tools"][0]["function"]
    assert function["description"] == "Search the premium catalogue"
    assert function["parameters"]["properties"] == {
        "genre": {"type": "string", "enum": ["drama", "comedy"]},
        "limit": {"type": "integer", "maximum": 5},
    }
    schema = body["response_format"]["json_schema"]
    assert schema["strict"] is True
    assert schema["schema"]["properties"]["tier"]["enum"] == ["basic", "premium"]
    assert body["messages"][0]["content"] == "Recommend a movie for a premium user"


def test_partials_take_a_message_of_another_prompt_and_the_main_inputs(
    gw: Gateway, prompts: Prompts, mock_provider: MockProvider
) -> None:
    greeting = {
        "messages": [{"role": "user", "content": "Hello {{hc:customer:string}}, welcome to {{hc:company:string}}!"}]
    }
    greeting_id, greeting_v0 = prompts.create(greeting, name="greeting")
    staged = {"messages": [{"role": "user", "content": "Hi {{hc:customer:string}} (staging)."}]}
    prompts.version(greeting_id, greeting_v0, staged, env="staging")
    main = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "{{hcp:" + greeting_id + ":0:staging}}"},
            {"role": "user", "content": "{{hcp:" + greeting_id + ":0}} How can you help me?"},
        ],
    }
    main_id, _ = prompts.create(main, name="main")
    raw = sdk(gw).chat.completions.with_raw_response.create(
        model=GPT,
        messages=openai.omit,
        extra_body={"prompt_id": main_id, "inputs": {"customer": "Alice", "company": "TechCorp"}},
    )
    assert texts(sent(mock_provider)["messages"]) == [
        ("system", "Hi Alice (staging)."),
        ("user", "Hello Alice, welcome to TechCorp! How can you help me?"),
    ]
    fact = gw.record(raw.headers["helicone-id"]).facts["prompt"]
    assert fact["partials"] == [
        {"prompt_id": greeting_id, "index": 0, "environment": "staging"},
        {"prompt_id": greeting_id, "index": 0, "environment": "production"},
    ]
    assert fact["store_reads"] == 3  # the version, and each (prompt, environment) a partial reads


def test_a_compiled_request_costs_one_read_then_none_while_cached(
    gw: Gateway, prompts: Prompts, mock_provider: MockProvider
) -> None:
    prompt_id, base = prompts.create(SUPPORT)
    client = sdk(gw)
    extra = {"prompt_id": prompt_id, "inputs": {"company": "A"}}
    reads = []
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(model=GPT, messages=openai.omit, extra_body=extra)
        reads.append(gw.record(raw.headers["helicone-id"]).facts["prompt"]["store_reads"])
    assert reads == [1, 0, 0]
    # A moved production is seen once the entry expires (cleared here instead of waiting for the TTL).
    moved = prompts.version(prompt_id, base, {**SUPPORT, "temperature": 0.1}, env="production")
    prompts.step().cache.clear()  # type: ignore[union-attr]
    mock_provider.clear()
    raw = client.chat.completions.with_raw_response.create(model=GPT, messages=openai.omit, extra_body=extra)
    assert sent(mock_provider)["temperature"] == 0.1
    assert gw.record(raw.headers["helicone-id"]).facts["prompt"]["version_id"] == moved.id


# -- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "param"),
    [({}, "prompt_id"), ({"version_id": "no-such-version"}, "version_id"), ({"environment": "qa"}, "environment")],
)
def test_a_missing_prompt_version_or_environment_is_a_404_naming_it(
    gw: Gateway, prompts: Prompts, mock_provider: MockProvider, selector: dict[str, str], param: str
) -> None:
    prompt_id = "nope00" if param == "prompt_id" else prompts.create(SUPPORT)[0]
    with pytest.raises(openai.NotFoundError) as caught:
        sdk(gw).chat.completions.create(
            model=GPT, messages=openai.omit, extra_body={"prompt_id": prompt_id, "inputs": {"company": "A"}, **selector}
        )
    error = caught.value.body
    assert isinstance(error, dict)
    assert (error["param"], error["code"]) == (param, "prompt_not_found")
    assert mock_provider.requests == []
    record = gw.record(caught.value.response.headers["helicone-id"])
    assert record.status == 404 and record.errors


def test_a_missing_partial_is_a_404(gw: Gateway, prompts: Prompts, mock_provider: MockProvider) -> None:
    prompt_id, _ = prompts.create(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "{{hcp:gone00:0}}"}]}
    )
    with pytest.raises(openai.NotFoundError):
        sdk(gw).chat.completions.create(model=GPT, messages=openai.omit, extra_body={"prompt_id": prompt_id})
    assert mock_provider.requests == []


@pytest.mark.parametrize(
    ("inputs", "param"),
    [
        ({}, "inputs.company"),
        ({"company": "A", "age": "old"}, "inputs.age"),
        ({"company": "A", "age": 3, "vip": "perhaps"}, "inputs.vip"),
    ],
)
def test_a_missing_or_mistyped_input_is_a_400_naming_it(
    gw: Gateway, prompts: Prompts, mock_provider: MockProvider, inputs: dict[str, Any], param: str
) -> None:
    saved = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "For {{hc:company:string}}."},
            {"role": "user", "content": "I am {{hc:age:number}}; VIP: {{hc:vip:boolean}}"},
        ],
    }
    prompt_id, _ = prompts.create(saved)
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(gw).chat.completions.create(
            model=GPT, messages=openai.omit, extra_body={"prompt_id": prompt_id, "inputs": inputs}
        )
    error = caught.value.body
    assert isinstance(error, dict) and error["param"] == param
    assert mock_provider.requests == []


def test_malformed_prompt_fields_are_400s_naming_them(gw: Gateway, mock_provider: MockProvider) -> None:
    client = sdk(gw)
    for extra, param in (({"prompt_id": 5}, "prompt_id"), ({"prompt_id": "p", "inputs": "x"}, "inputs")):
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model=GPT, messages=openai.omit, extra_body=extra)
        assert isinstance(caught.value.body, dict) and caught.value.body["param"] == param
    assert mock_provider.requests == []


# -- routes, labels, and the other checks ------------------------------------------------------------


def test_the_pass_through_proxy_forwards_prompt_id_unchanged(
    gw: Gateway, prompts: Prompts, mock_provider: MockProvider
) -> None:
    prompt_id, _ = prompts.create(SUPPORT)
    raw = gw.openai().chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"prompt_id": prompt_id, "inputs": {"company": "A"}},
    )
    body = sent(mock_provider)
    assert (body["prompt_id"], body["inputs"]) == (prompt_id, {"company": "A"})
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert "prompt" not in gw.record(raw.headers["helicone-id"]).facts


def test_a_prompt_id_null_only_loses_the_prompt_fields(gw: Gateway, mock_provider: MockProvider) -> None:
    sdk(gw).chat.completions.create(
        model=GPT, messages=[{"role": "user", "content": "hi"}], extra_body={"prompt_id": None, "inputs": {}}
    )
    assert not {"prompt_id", "inputs"} & sent(mock_provider).keys()


def test_the_legacy_header_still_labels_and_the_compiled_id_wins(gw: Gateway, prompts: Prompts) -> None:
    client = sdk(gw, default_headers={"Helicone-Prompt-Id": "legacy-label"})
    raw = client.chat.completions.with_raw_response.create(model=GPT, messages=[{"role": "user", "content": "hi"}])
    assert gw.record(raw.headers["helicone-id"]).prompt_id == "legacy-label"

    prompt_id, _ = prompts.create(SUPPORT)
    raw = client.chat.completions.with_raw_response.create(
        model=GPT, messages=openai.omit, extra_body={"prompt_id": prompt_id, "inputs": {"company": "A"}}
    )
    record = gw.record(raw.headers["helicone-id"])
    assert record.prompt_id == prompt_id
    assert record.facts["prompt"]["label"] == "legacy-label"


def test_the_safety_checks_screen_the_compiled_prompt(
    gw: Gateway, prompts: Prompts, mock_provider: MockProvider
) -> None:
    saved = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Tell me about {{hc:topic:string}}"}]}
    prompt_id, _ = prompts.create(saved)
    client = sdk(gw, default_headers={"Helicone-Moderations-Enabled": "true"})
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=GPT, messages=openai.omit, extra_body={"prompt_id": prompt_id, "inputs": {"topic": "mock-flag"}}
        )
    assert "PROMPT_FLAGGED_FOR_MODERATION" in str(caught.value.body)
    (moderation,) = mock_provider.requests
    assert moderation.path.endswith("/v1/moderations")
    assert "Tell me about mock-flag" in moderation.body.decode()


def test_omit_request_keeps_the_inputs_off_the_row(gw: Gateway, prompts: Prompts) -> None:
    prompt_id, _ = prompts.create(SUPPORT)
    client = sdk(gw, default_headers={"Helicone-Omit-Request": "true"})
    raw = client.chat.completions.with_raw_response.create(
        model=GPT, messages=openai.omit, extra_body={"prompt_id": prompt_id, "inputs": {"company": "Secret Co"}}
    )
    fact = gw.record(raw.headers["helicone-id"]).facts["prompt"]
    assert fact["id"] == prompt_id and "inputs" not in fact


def test_streaming_a_compiled_prompt(gw: Gateway, prompts: Prompts, mock_provider: MockProvider) -> None:
    prompt_id, _ = prompts.create({**SUPPORT, "stream": False})
    stream = sdk(gw).chat.completions.create(
        model=GPT, messages=openai.omit, stream=True, extra_body={"prompt_id": prompt_id, "inputs": {"company": "A"}}
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert sent(mock_provider)["stream"] is True


# -- /v1/responses -----------------------------------------------------------------------------------


def test_responses_on_openai_get_the_prompt_as_input_items(
    gw: Gateway, prompts: Prompts, mock_provider: MockProvider
) -> None:
    prompt_id, _ = prompts.create(SUPPORT)
    response = sdk(gw).responses.create(
        model=GPT, input="Cancel it", extra_body={"prompt_id": prompt_id, "inputs": {"company": "Acme"}}
    )
    assert response.output_text
    (request,) = mock_provider.requests
    assert request.path.endswith("/v1/responses")
    body = msgspec.json.decode(request.body)
    assert texts(body["input"]) == [
        ("system", "You are a helpful customer support agent for Acme."),
        ("user", "Hello, I need help with my account."),
        ("user", "Cancel it"),
    ]
    assert (body["max_output_tokens"], body["temperature"]) == (1000, 0.6)
    assert not {"prompt_id", "inputs", "messages", "max_tokens"} & body.keys()


def test_responses_translated_for_anthropic_carry_the_compiled_prompt(
    gw: Gateway, prompts: Prompts, mock_provider: MockProvider
) -> None:
    prompt_id, _ = prompts.create(SUPPORT)
    response = sdk(gw).responses.create(
        model=CLAUDE, input="Cancel it", extra_body={"prompt_id": prompt_id, "inputs": {"company": "Acme"}}
    )
    assert response.output_text
    (request,) = mock_provider.requests
    assert request.path.endswith("/v1/messages")
    body = msgspec.json.decode(request.body)
    assert "Acme" in msgspec.json.encode(body["system"]).decode()
    conversation = msgspec.json.encode(body["messages"]).decode()
    assert conversation.index("Hello, I need help with my account.") < conversation.index("Cancel it")
    assert body["max_tokens"] == 1000


def test_a_body_that_is_not_json_is_still_the_gateways_400(gw: Gateway) -> None:
    response = httpx.post(
        f"{gw.url}/v1/chat/completions",
        content=b'{"prompt_id": ',
        headers={"Authorization": f"Bearer {gw.key}", "content-type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("The body must be a JSON object")
