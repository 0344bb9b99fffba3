"""Helicone's documented gateway request features, end to end: prompt caching, context editing, image generation.

Each feature is driven through the official ``openai`` SDK (``extra_body`` for the fields OpenAI's
types do not have) over real HTTP into heliport, which talks to the mock provider in each
provider's own wire format. The tests assert the exact upstream body the provider received (the
mock's recorder) and the shape of the answer the SDK got back, for every provider family the
feature applies to, and the 400 naming the field for the ones it does not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import botocore.session
import openai
import pytest
from botocore.validate import validate_parameters

from heliport.gateway import images
from heliport.gateway.chat import ProviderStreamError
from heliport.logs.cost import compute_cost
from heliport.logs.usage import Usage
from tests.gateway import test_vertex as vx
from tests.gateway.conftest import PROVIDER_ENV, client, start_ai_gateway
from tests.harness import Gateway
from tests.logs.test_end_to_end import logdb_of, wait_for_row
from tests.mock_provider import MockProvider
from tests.mock_provider import gemini as mock_gemini
from tests.mock_provider.recorder import RecordedRequest

BETA = "context-management-2025-06-27"
BEDROCK_CLAUDE = "us.anthropic.claude-sonnet-4-20250514-v1:0"
IMAGE_MODEL = "gemini-3-pro-image-preview"
PNG_URL = f"data:image/png;base64,{mock_gemini.PNG_BASE64}"
TOOL: Any = {
    "type": "function",
    "function": {
        "name": "read_file",
        "description": "Read a file.",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    },
    "cache_control": {"type": "ephemeral"},
}
#: A conversation with breakpoints where Helicone's prompt-caching doc puts them: on a whole message
#: (system, with a TTL), on one content part, and on a tool.
CACHED_MESSAGES: Any = [
    {"role": "system", "content": "You are a careful reviewer.", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "Here is the long document.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Summarise it."},
        ],
    },
]
FULL_EDITING: Any = {
    "enabled": True,
    "clear_tool_uses": {
        "trigger": 150000,
        "keep": 10,
        "clear_at_least": 50000,
        "exclude_tools": ["read_file"],
        "clear_tool_inputs": True,
    },
    "clear_thinking": {"keep": 5},
}
#: FULL_EDITING in Claude's native form: clear_thinking first, every number a typed object.
FULL_MANAGEMENT: Any = {
    "edits": [
        {"type": "clear_thinking_20251015", "keep": {"type": "thinking_turns", "value": 5}},
        {
            "type": "clear_tool_uses_20250919",
            "trigger": {"type": "input_tokens", "value": 150000},
            "keep": {"type": "tool_uses", "value": 10},
            "clear_at_least": {"type": "input_tokens", "value": 50000},
            "exclude_tools": ["read_file"],
            "clear_tool_inputs": True,
        },
    ]
}
HELLO: Any = [{"role": "user", "content": "Hello"}]


def sent(mock_provider: MockProvider) -> RecordedRequest:
    (request,) = mock_provider.requests
    return request


def bad_request(gw: Gateway, param: str, **kwargs: Any) -> str:
    """Create a chat completion that must be a 400 naming ``param``; its message."""
    with pytest.raises(openai.BadRequestError) as caught:
        client(gw).chat.completions.create(**kwargs)
    body: Any = caught.value.body
    assert body["param"] == param, body
    return str(body["message"])


# -- prompt caching ----------------------------------------------------------------------------------


def test_anthropic_keeps_every_breakpoint_and_takes_prompt_cache_key_as_user_id(
    ai_gateway: Gateway, mock_provider: MockProvider
) -> None:
    completion = client(ai_gateway).chat.completions.create(
        model="claude-sonnet-4/anthropic",
        messages=CACHED_MESSAGES,
        tools=[TOOL],
        user="u-7",
        extra_body={"prompt_cache_key": "doc-analysis-v1", "safety_identifier": "hash-1"},
    )
    body = sent(mock_provider).json
    assert body["system"] == [
        {"type": "text", "text": "You are a careful reviewer.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ]
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Here is the long document.", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "Summarise it."},
            ],
        }
    ]
    assert body["tools"][0]["cache_control"] == {"type": "ephemeral"}
    assert body["metadata"] == {"user_id": "doc-analysis-v1"}  # the explicit cache key wins over the others
    assert "prompt_cache_key" not in body and "safety_identifier" not in body
    assert completion.choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("extra", "user_id"),
    [({"safety_identifier": "hash-1"}, "hash-1"), ({"user": "u-7"}, "u-7"), ({"prompt_cache_key": "k"}, "k")],
)
def test_each_documented_key_maps_to_anthropic_user_id(
    ai_gateway: Gateway, mock_provider: MockProvider, extra: dict[str, str], user_id: str
) -> None:
    completion = client(ai_gateway).chat.completions.create(
        model="claude-sonnet-4/anthropic", messages=HELLO, extra_body=extra
    )
    assert sent(mock_provider).json["metadata"] == {"user_id": user_id}
    # The mock answers 21 uncached, 12 read and 6 written input tokens: OpenAI counts them all in prompt_tokens.
    assert completion.usage is not None and completion.usage.prompt_tokens == 39
    details = completion.usage.prompt_tokens_details
    assert details is not None and details.cached_tokens == 12
    assert details.to_dict()["cache_write_tokens"] == 6


def test_bedrock_claude_gets_converse_cache_points(ai_gateway: Gateway, mock_provider: MockProvider) -> None:
    client(ai_gateway).chat.completions.create(
        model="claude-sonnet-4/bedrock", messages=CACHED_MESSAGES, tools=[TOOL], user="u-7"
    )
    request = sent(mock_provider)
    assert request.path == f"/model/{BEDROCK_CLAUDE}/converse"
    body = request.json
    point = {"cachePoint": {"type": "default"}}
    assert body["system"] == [{"text": "You are a careful reviewer."}, point]
    assert body["messages"] == [
        {"role": "user", "content": [{"text": "Here is the long document."}, point, {"text": "Summarise it."}]}
    ]
    assert body["toolConfig"]["tools"][1] == point
    assert body["toolConfig"]["tools"][0]["toolSpec"]["name"] == "read_file"
    # What heliport sent is a valid Converse request by Bedrock's own service model.
    service = botocore.session.get_session().get_service_model("bedrock-runtime")
    validate_parameters({**body, "modelId": BEDROCK_CLAUDE}, service.operation_model("Converse").input_shape)


def test_bedrock_models_without_prompt_caching_get_no_cache_points(
    ai_gateway: Gateway, mock_provider: MockProvider
) -> None:
    client(ai_gateway).chat.completions.create(model="llama-3.3-70b/bedrock", messages=CACHED_MESSAGES)
    body = sent(mock_provider).json
    assert "cachePoint" not in json.dumps(body)
    assert body["system"] == [{"text": "You are a careful reviewer."}]


def test_responses_api_carries_prompt_cache_key_to_anthropic(ai_gateway: Gateway, mock_provider: MockProvider) -> None:
    response = client(ai_gateway).responses.create(
        model="claude-sonnet-4/anthropic", input="Hello", prompt_cache_key="doc-analysis-v1"
    )
    assert sent(mock_provider).json["metadata"] == {"user_id": "doc-analysis-v1"}
    assert response.usage is not None and response.usage.input_tokens_details.cached_tokens == 12


def test_hosts_that_reject_prompt_cache_key_do_not_get_it(ai_gateway: Gateway, mock_provider: MockProvider) -> None:
    client(ai_gateway).chat.completions.create(
        model="gemini-2.5-flash/google", messages=HELLO, extra_body={"prompt_cache_key": "k"}
    )
    assert "prompt_cache_key" not in sent(mock_provider).json
    mock_provider.clear()
    client(ai_gateway).chat.completions.create(model="gpt-4o-mini/openai", messages=HELLO, prompt_cache_key="k")
    assert sent(mock_provider).json["prompt_cache_key"] == "k"  # OpenAI's own parameter reaches OpenAI


@pytest.fixture(params=["sqlite", "postgres"])
def logged(
    request: pytest.FixtureRequest, tmp_path: Path, mock_provider: MockProvider, pg_dsn_sync: str
) -> Iterator[tuple[Gateway, str | None]]:
    database_url = pg_dsn_sync if request.param == "postgres" else None
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "AKIDGATEWAYTEST")
        env.setenv("AWS_SECRET_ACCESS_KEY", "gateway-test-secret")
        gw = start_ai_gateway(tmp_path, mock_provider.url, PROVIDER_ENV, pipeline=True, database_url=database_url)
        yield gw, database_url
        gw.stop()


@pytest.mark.parametrize(
    ("spec", "stream", "read", "write"),
    [
        ("claude-sonnet-4/anthropic", False, 12, 6),  # cache_read_input_tokens / cache_creation_input_tokens
        ("claude-sonnet-4/anthropic", True, 12, 6),
        ("claude-sonnet-4/bedrock", False, 8, 4),  # Converse's cacheReadInputTokens / cacheWriteInputTokens
        ("gpt-4o-mini/openai", False, 5, None),  # prompt_tokens_details.cached_tokens
    ],
)
def test_cache_reads_and_writes_are_on_the_row_and_priced(
    logged: tuple[Gateway, str | None], tmp_path: Path, spec: str, stream: bool, read: int, write: int | None
) -> None:
    gw, database_url = logged
    raw = client(gw).chat.completions.with_raw_response.create(model=spec, messages=CACHED_MESSAGES, stream=stream)
    parsed = raw.parse()
    if stream:
        assert "".join(c.choices[0].delta.content or "" for c in parsed if c.choices)  # type: ignore[union-attr]
    row = wait_for_row(logdb_of(gw, tmp_path, database_url), gw.org_id, raw.headers["helicone-id"])
    assert (row.prompt_cache_read_tokens, row.prompt_cache_write_tokens) == (read, write)
    assert row.prompt_tokens is not None and row.completion_tokens is not None
    usage = Usage(
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        prompt_cache_read_tokens=read,
        prompt_cache_write_tokens=write,
        prompt_cache_write_5m_tokens=row.prompt_cache_write_5m_tokens,
        prompt_cache_write_1h_tokens=row.prompt_cache_write_1h_tokens,
        source="provider",
    )
    uncached = Usage(prompt_tokens=row.prompt_tokens, completion_tokens=row.completion_tokens, source="provider")
    expected = compute_cost(model=row.model, provider=row.provider, usage=usage, at=row.created_at).amount
    full_price = compute_cost(model=row.model, provider=row.provider, usage=uncached, at=row.created_at).amount
    assert expected is not None and full_price is not None
    assert row.cost == expected
    # Cache reads are billed below the input price (writes above it), so the cached tokens moved the cost.
    assert row.cost != full_price
    assert isinstance(row.cost, Decimal)


# -- context editing ---------------------------------------------------------------------------------


def test_anthropic_gets_context_management_and_the_beta_header(
    ai_gateway: Gateway, mock_provider: MockProvider
) -> None:
    client(ai_gateway).chat.completions.create(
        model="claude-sonnet-4/anthropic",
        messages=HELLO,
        tools=[TOOL],
        extra_body={"context_editing": FULL_EDITING},
        extra_headers={"anthropic-beta": "files-api-2025-04-14"},
    )
    request = sent(mock_provider)
    assert request.json["context_management"] == FULL_MANAGEMENT
    assert "context_editing" not in request.json
    assert request.header("anthropic-beta") == f"files-api-2025-04-14,{BETA}"  # the caller's flag kept


@pytest.mark.parametrize(
    ("editing", "edits"),
    [
        ({"enabled": True}, [{"type": "clear_tool_uses_20250919"}]),  # the documented default
        ({"enabled": True, "clear_thinking": {"keep": "all"}}, [{"type": "clear_thinking_20251015", "keep": "all"}]),
        (
            {"enabled": True, "clear_tool_uses": {"trigger": 100000, "keep": 5}},
            [
                {
                    "type": "clear_tool_uses_20250919",
                    "trigger": {"type": "input_tokens", "value": 100000},
                    "keep": {"type": "tool_uses", "value": 5},
                }
            ],
        ),
    ],
)
def test_context_editing_shapes_and_defaults(
    ai_gateway: Gateway, mock_provider: MockProvider, editing: Any, edits: Any
) -> None:
    stream = client(ai_gateway).chat.completions.create(
        model="claude-sonnet-4/anthropic", messages=HELLO, stream=True, extra_body={"context_editing": editing}
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    request = sent(mock_provider)
    assert request.json["context_management"] == {"edits": edits}
    assert request.header("anthropic-beta") == BETA


def test_disabled_context_editing_sends_nothing_and_any_provider_takes_it(
    ai_gateway: Gateway, mock_provider: MockProvider
) -> None:
    off = {"context_editing": {"enabled": False, "clear_tool_uses": {"keep": 2}}}
    client(ai_gateway).chat.completions.create(model="claude-sonnet-4/anthropic", messages=HELLO, extra_body=off)
    request = sent(mock_provider)
    assert "context_management" not in request.json and request.header("anthropic-beta") is None
    mock_provider.clear()
    client(ai_gateway).chat.completions.create(model="gpt-4o-mini/openai", messages=HELLO, extra_body=off)
    assert "context_editing" not in sent(mock_provider).json  # Helicone's field never reaches another provider


def test_bedrock_claude_gets_context_management_in_additional_fields(
    ai_gateway: Gateway, mock_provider: MockProvider
) -> None:
    client(ai_gateway).chat.completions.create(
        model="claude-sonnet-4/bedrock",
        messages=HELLO,
        reasoning_effort="medium",
        extra_body={"context_editing": FULL_EDITING},
    )
    body = sent(mock_provider).json
    assert body["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": 4096},
        "anthropic_beta": [BETA],
        "context_management": FULL_MANAGEMENT,
    }


def test_responses_api_carries_context_editing(ai_gateway: Gateway, mock_provider: MockProvider) -> None:
    client(ai_gateway).responses.create(
        model="claude-sonnet-4/anthropic",
        input="Hello",
        extra_body={"context_editing": {"enabled": True, "clear_tool_uses": {"trigger": 100000, "keep": 5}}},
    )
    request = sent(mock_provider)
    assert request.json["context_management"]["edits"][0]["keep"] == {"type": "tool_uses", "value": 5}
    assert request.header("anthropic-beta") == BETA


@pytest.mark.parametrize(
    "spec", ["gpt-4o-mini/openai", "gemini-2.5-flash/google", "gpt-4o/azure/eu-frankfurt", "llama-3.3-70b/bedrock"]
)
def test_providers_that_cannot_honour_context_editing_are_a_400(
    ai_gateway: Gateway, mock_provider: MockProvider, spec: str
) -> None:
    message = bad_request(
        ai_gateway, "context_editing", model=spec, messages=HELLO, extra_body={"context_editing": {"enabled": True}}
    )
    assert "Claude" in message
    assert mock_provider.requests == []  # refused before anything was sent


def test_openai_responses_pass_through_refuses_helicone_only_fields(
    ai_gateway: Gateway, mock_provider: MockProvider
) -> None:
    for field, value in (
        ("context_editing", {"enabled": True}),
        ("image_generation", {"aspect_ratio": "1:1", "image_size": "1K"}),
    ):
        with pytest.raises(openai.BadRequestError) as caught:
            client(ai_gateway).responses.create(model="gpt-4o-mini/openai", input="Hi", extra_body={field: value})
        assert caught.value.body["param"] == field  # type: ignore[index]
    assert mock_provider.requests == []
    client(ai_gateway).responses.create(
        model="gpt-4o-mini/openai", input="Hi", extra_body={"context_editing": {"enabled": False}}
    )
    assert "context_editing" not in sent(mock_provider).json


def test_failover_passes_over_candidates_that_cannot_honour_context_editing(
    ai_gateway: Gateway, mock_provider: MockProvider
) -> None:
    raw = client(ai_gateway).chat.completions.with_raw_response.create(
        model="gpt-4o-mini/openai,claude-sonnet-4/anthropic",
        messages=HELLO,
        extra_body={"context_editing": {"enabled": True}},
    )
    assert raw.headers["helicone-provider"] == "anthropic"
    assert sent(mock_provider).path == "/v1/messages"  # OpenAI was never called
    # And when no candidate can honour it, the answer is a 400 whose details say why for each.
    with pytest.raises(openai.BadRequestError) as caught:
        client(ai_gateway).chat.completions.create(
            model="gpt-4o-mini/openai,gemini-2.5-flash/google",
            messages=HELLO,
            extra_body={"context_editing": {"enabled": True}},
        )
    details: Any = caught.value.body["details"]  # type: ignore[index]
    assert [(d["provider"], d["status"]) for d in details] == [("openai", 400), ("google", 400)]
    assert all("context_editing" in d["message"] for d in details)


@pytest.mark.parametrize(
    ("editing", "param"),
    [
        ("on", "context_editing"),
        ({}, "context_editing.enabled"),
        ({"enabled": "yes"}, "context_editing.enabled"),
        ({"enabled": True, "clear_tool_uses": []}, "context_editing.clear_tool_uses"),
        ({"enabled": True, "clear_tool_uses": {"trigger": 0}}, "context_editing.clear_tool_uses.trigger"),
        ({"enabled": True, "clear_tool_uses": {"keep": -1}}, "context_editing.clear_tool_uses.keep"),
        ({"enabled": True, "clear_tool_uses": {"keep": True}}, "context_editing.clear_tool_uses.keep"),
        (
            {"enabled": True, "clear_tool_uses": {"clear_at_least": 1.5}},
            "context_editing.clear_tool_uses.clear_at_least",
        ),
        (
            {"enabled": True, "clear_tool_uses": {"exclude_tools": "read"}},
            "context_editing.clear_tool_uses.exclude_tools",
        ),
        (
            {"enabled": True, "clear_tool_uses": {"clear_tool_inputs": "yes"}},
            "context_editing.clear_tool_uses.clear_tool_inputs",
        ),
        ({"enabled": True, "clear_tool_uses": {"kep": 1}}, "context_editing.clear_tool_uses.kep"),
        ({"enabled": True, "clear_thinking": {"keep": 0}}, "context_editing.clear_thinking.keep"),
        ({"enabled": True, "clear_thinking": {"keep": "some"}}, "context_editing.clear_thinking.keep"),
        ({"enabled": True, "strategy": "all"}, "context_editing.strategy"),
    ],
)
@pytest.mark.parametrize("spec", ["claude-sonnet-4/anthropic", "claude-sonnet-4/bedrock", "gpt-4o-mini/openai"])
def test_malformed_context_editing_is_a_400_naming_the_field(
    ai_gateway: Gateway, mock_provider: MockProvider, editing: Any, param: str, spec: str
) -> None:
    bad_request(ai_gateway, param, model=spec, messages=HELLO, extra_body={"context_editing": editing})
    assert mock_provider.requests == []


# -- Claude on Vertex AI: the same translation, Vertex's transport ------------------------------------


@pytest.fixture(scope="module")
def vertex_gateway(mock_provider: MockProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    account = vx.new_service_account(mock_provider)
    gw = vx.start_vertex_gateway(tmp_path_factory.mktemp("features-vertex"), mock_provider, account)
    yield gw
    gw.stop()


def test_vertex_claude_gets_breakpoints_cache_key_and_context_management(
    vertex_gateway: Gateway, mock_provider: MockProvider
) -> None:
    client(vertex_gateway).chat.completions.create(
        model=vx.CLAUDE,
        messages=CACHED_MESSAGES,
        tools=[TOOL],
        extra_body={"prompt_cache_key": "doc-analysis-v1", "context_editing": FULL_EDITING},
    )
    (request,) = vx.model_calls(mock_provider)
    assert request.path == vx.CLAUDE_PATH
    body = request.json
    assert body["system"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert body["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert body["tools"][0]["cache_control"] == {"type": "ephemeral"}
    assert body["metadata"] == {"user_id": "doc-analysis-v1"}
    assert body["context_management"] == FULL_MANAGEMENT
    assert body["anthropic_beta"] == [BETA]  # Vertex takes Anthropic's beta flags in the body


def test_vertex_gemini_refuses_image_generation_and_context_editing(
    vertex_gateway: Gateway, mock_provider: MockProvider
) -> None:
    image = {"image_generation": {"aspect_ratio": "1:1", "image_size": "1K"}}
    bad_request(vertex_gateway, "image_generation", model=vx.GEMINI, messages=HELLO, extra_body=image)
    editing = {"context_editing": {"enabled": True}}
    bad_request(vertex_gateway, "context_editing", model=vx.GEMINI, messages=HELLO, extra_body=editing)
    assert vx.model_calls(mock_provider) == []


# -- image generation --------------------------------------------------------------------------------

IMAGE_REQUEST: Any = {
    "contents": [{"role": "user", "parts": [{"text": "Generate an image of a sunset over mountains"}]}],
    "systemInstruction": {"parts": [{"text": "You are an illustrator."}]},
    "generationConfig": {
        "responseModalities": ["TEXT", "IMAGE"],
        "maxOutputTokens": 8192,
        "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"},
    },
}
IMAGE_MESSAGES: Any = [
    {"role": "system", "content": "You are an illustrator."},
    {"role": "user", "content": "Generate an image of a sunset over mountains"},
]
IMAGES = [{"type": "image_url", "image_url": {"url": PNG_URL}}]


@pytest.mark.parametrize("spec", [f"{IMAGE_MODEL}/google", IMAGE_MODEL])
def test_gemini_image_model_is_called_natively_and_returns_message_images(
    ai_gateway: Gateway, mock_provider: MockProvider, spec: str
) -> None:
    raw = client(ai_gateway).chat.completions.with_raw_response.create(
        model=spec,
        messages=IMAGE_MESSAGES,
        max_tokens=8192,
        extra_body={"image_generation": {"aspect_ratio": "16:9", "image_size": "2K"}},
    )
    request = sent(mock_provider)
    assert request.path == f"/v1beta/models/{IMAGE_MODEL}:generateContent"
    assert request.header("x-goog-api-key") == PROVIDER_ENV["GEMINI_API_KEY"]
    assert request.header("authorization") is None
    assert request.json == IMAGE_REQUEST
    assert raw.headers["helicone-provider"] == "google"
    completion: Any = raw.parse().to_dict()
    message: Any = completion["choices"][0]["message"]
    assert message["content"] == mock_gemini.TEXT
    assert message["images"] == IMAGES
    assert message["reasoning_content"] == mock_gemini.THOUGHT  # the model's draft, apart from the answer
    assert completion["choices"][0]["finish_reason"] == "stop"
    # Thinking is billed as output: candidates 1290 + thoughts 100.
    assert completion["usage"] == {
        "prompt_tokens": 12,
        "completion_tokens": 1390,
        "total_tokens": 1402,
        "completion_tokens_details": {"reasoning_tokens": 100},
    }


def test_gemini_image_stream_returns_delta_images(ai_gateway: Gateway, mock_provider: MockProvider) -> None:
    stream = client(ai_gateway).chat.completions.create(
        model=f"{IMAGE_MODEL}/google",
        messages=IMAGE_MESSAGES,
        max_tokens=8192,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"image_generation": {"aspect_ratio": "16:9", "image_size": "2K"}},
    )
    chunks: list[Any] = [chunk.to_dict() for chunk in stream]
    request = sent(mock_provider)
    assert (request.path, request.query) == (f"/v1beta/models/{IMAGE_MODEL}:streamGenerateContent", "alt=sse")
    assert request.json == IMAGE_REQUEST
    deltas: list[Any] = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert [d["images"] for d in deltas if "images" in d] == [IMAGES]
    assert "".join(d.get("content") or "" for d in deltas) == mock_gemini.TEXT
    assert "".join(d.get("reasoning_content") or "" for d in deltas) == mock_gemini.THOUGHT
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 1390


def test_gemini_image_without_settings_and_with_an_image_to_edit(
    ai_gateway: Gateway, mock_provider: MockProvider
) -> None:
    client(ai_gateway).chat.completions.create(
        model=f"{IMAGE_MODEL}/google",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Make the sky purple"},
                    {"type": "image_url", "image_url": {"url": PNG_URL}},
                ],
            }
        ],
    )
    assert sent(mock_provider).json == {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "Make the sky purple"},
                    {"inlineData": {"mimeType": "image/png", "data": mock_gemini.PNG_BASE64}},
                ],
            }
        ],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]},
    }


def test_responses_api_returns_output_image(ai_gateway: Gateway, mock_provider: MockProvider) -> None:
    response = client(ai_gateway).responses.create(
        model=f"{IMAGE_MODEL}/google",
        input="Generate an image of a sunset over mountains",
        max_output_tokens=8192,
        extra_body={"image_generation": {"aspect_ratio": "16:9", "image_size": "2K"}},
    )
    assert sent(mock_provider).json["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "2K"}
    output: Any = response.to_dict(warnings=False)["output"]
    message: Any = next(item for item in output if item["type"] == "message")
    assert message["content"][0]["type"] == "output_text" and message["content"][0]["text"] == mock_gemini.TEXT
    assert message["content"][1] == {"type": "output_image", "image_url": PNG_URL}


def test_responses_api_streams_output_image_parts(ai_gateway: Gateway, mock_provider: MockProvider) -> None:
    events: list[Any] = [
        event.to_dict(warnings=False)
        for event in client(ai_gateway).responses.create(
            model=f"{IMAGE_MODEL}/google", input="Generate an image of a sunset over mountains", stream=True
        )
    ]
    assert sent(mock_provider).path.endswith(":streamGenerateContent")
    image_events: list[Any] = [
        (e["type"], e["part"])
        for e in events
        if e["type"].startswith("response.content_part") and e["part"]["type"] == "output_image"
    ]
    assert image_events == [
        ("response.content_part.added", {"type": "output_image", "image_url": ""}),
        ("response.content_part.done", {"type": "output_image", "image_url": PNG_URL}),
    ]
    completed: Any = events[-1]
    assert completed["type"] == "response.completed"
    content = completed["response"]["output"][-1]["content"]
    assert content[-1] == {"type": "output_image", "image_url": PNG_URL}


@pytest.mark.parametrize(
    ("image_generation", "param"),
    [
        ({"aspect_ratio": "16:9"}, "image_generation.image_size"),
        ({"image_size": "2K"}, "image_generation.aspect_ratio"),
        ({"aspect_ratio": 16, "image_size": "2K"}, "image_generation.aspect_ratio"),
        ({"aspect_ratio": "16:9", "image_size": "2K", "quality": "hd"}, "image_generation.quality"),
        ("16:9", "image_generation"),
    ],
)
def test_malformed_image_generation_is_a_400_naming_the_field(
    ai_gateway: Gateway, mock_provider: MockProvider, image_generation: Any, param: str
) -> None:
    bad_request(
        ai_gateway,
        param,
        model=f"{IMAGE_MODEL}/google",
        messages=HELLO,
        extra_body={"image_generation": image_generation},
    )
    assert mock_provider.requests == []


@pytest.mark.parametrize(
    "spec", ["gpt-4o-mini/openai", "gemini-2.5-flash/google", "claude-sonnet-4/anthropic", "claude-sonnet-4/bedrock"]
)
def test_image_generation_on_a_model_without_image_output_is_a_400(
    ai_gateway: Gateway, mock_provider: MockProvider, spec: str
) -> None:
    message = bad_request(
        ai_gateway,
        "image_generation",
        model=spec,
        messages=HELLO,
        extra_body={"image_generation": {"aspect_ratio": "1:1", "image_size": "1K"}},
    )
    assert IMAGE_MODEL in message
    assert mock_provider.requests == []


def test_image_model_refusals_and_provider_errors(ai_gateway: Gateway, mock_provider: MockProvider) -> None:
    spec = f"{IMAGE_MODEL}/google"
    bad_request(ai_gateway, "tools", model=spec, messages=HELLO, tools=[TOOL])
    bad_request(ai_gateway, "tool_choice", model=spec, messages=HELLO, tool_choice="required")
    bad_request(ai_gateway, "response_format", model=spec, messages=HELLO, response_format={"type": "json_object"})
    bad_request(ai_gateway, "n", model=spec, messages=HELLO, n=2)
    link = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]
    bad_request(ai_gateway, "messages[0].content[0].image_url.url", model=spec, messages=link)
    bad_request(
        ai_gateway, "context_editing", model=spec, messages=HELLO, extra_body={"context_editing": {"enabled": True}}
    )
    assert mock_provider.requests == []
    # Gemini's own error shape is relayed with its status and message.
    with pytest.raises(openai.RateLimitError) as caught:
        client(ai_gateway).chat.completions.create(model=spec, messages=HELLO, extra_headers={"x-mock-status": "429"})
    assert "Mock Gemini error 429" in str(caught.value)


def test_gemini_refusals_and_stream_errors_translate() -> None:
    """What the mock does not send: a prompt Gemini blocks, and an error payload in the middle of a stream."""
    blocked = images.generate_content_to_chat(
        {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 9}},
        model=IMAGE_MODEL,
        created=1,
        completion_id="chatcmpl-x",
    )
    assert blocked["choices"][0]["finish_reason"] == "content_filter"
    assert blocked["choices"][0]["message"]["content"] is None and blocked["usage"]["prompt_tokens"] == 9
    translator = images.GenerateContentStreamTranslator(
        model=IMAGE_MODEL, created=1, completion_id="chatcmpl-x", include_usage=True
    )
    with pytest.raises(ProviderStreamError) as caught:
        translator.feed({"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}})
    assert (caught.value.status, caught.value.kind) == (429, "RESOURCE_EXHAUSTED")
    safety = translator.feed({"candidates": [{"content": {"parts": []}, "finishReason": "IMAGE_SAFETY"}]})
    assert [c["choices"][0]["finish_reason"] for c in safety if c["choices"]][-1] == "content_filter"


def test_image_generation_row_is_logged_with_tokens_and_price(
    logged: tuple[Gateway, str | None], tmp_path: Path
) -> None:
    gw, database_url = logged
    raw = client(gw).chat.completions.with_raw_response.create(model=f"{IMAGE_MODEL}/google-ai-studio", messages=HELLO)
    assert raw.parse().to_dict()["choices"][0]["message"]["images"] == IMAGES  # type: ignore[index]
    row = wait_for_row(logdb_of(gw, tmp_path, database_url), gw.org_id, raw.headers["helicone-id"])
    assert (row.status, row.provider, row.gateway_provider) == (200, "GOOGLE", "google")
    assert (row.prompt_tokens, row.completion_tokens) == (12, 1390)
    assert row.cost is not None and row.cost > 0, row.cost_source
