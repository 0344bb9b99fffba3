"""The Responses <-> Chat Completions mapping, checked against real client requests and the openai types.

Requests are what the OpenAI Agents SDK and the Codex CLI send; provider answers are chat completions
and chat chunk streams in OpenAI's wire format (what heliport's chat adapters produce). Every Response
and stream event is validated with the ``openai`` package's own pydantic models, and the Agents SDK
is run for real against the translation through an in-process transport.
"""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
from openai import AsyncOpenAI
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from heliport.errors import InvalidBodyError
from heliport.gateway.responses import (
    ResponsesStreamTranslator,
    chat_to_response,
    dropped_tools,
    responses_to_chat,
    sse,
)

FIXTURES = Path(__file__).parent / "fixtures" / "responses"
EVENT = TypeAdapter(ResponseStreamEvent)
RESPONSE_ID = "resp_68c1f0a2b3d4e5f60718293a4b5c6d7e"
CREATED = 1761234567

JsonObj = dict[str, Any]


def load(name: str) -> JsonObj:
    return json.loads((FIXTURES / name).read_text())


def chunks(name: str) -> list[JsonObj]:
    """The chat chunks of an SSE fixture, as a provider sends them (``[DONE]`` ends the stream)."""
    out = []
    for block in (FIXTURES / name).read_text().split("\n\n"):
        if block.startswith("data: ") and block[6:] != "[DONE]":
            out.append(json.loads(block[6:]))
    return out


def run_stream(request: JsonObj, stream: list[JsonObj], response_id: str = RESPONSE_ID) -> list[tuple[str, JsonObj]]:
    translator = ResponsesStreamTranslator(request=request, response_id=response_id, created_at=CREATED)
    events = translator.start()
    for chunk in stream:
        events += translator.feed(chunk)
    return events + translator.finish()


def validate_events(events: list[tuple[str, JsonObj]]) -> None:
    """Each event parses as the openai package's event type, and sequence numbers count from 0."""
    for number, (name, data) in enumerate(events):
        assert data["type"] == name
        assert data["sequence_number"] == number
        assert EVENT.validate_python(data).type == name


def names(events: list[tuple[str, JsonObj]]) -> list[str]:
    return [name.removeprefix("response.") for name, _ in events]


def text_deltas(events: list[tuple[str, JsonObj]], kind: str) -> str:
    return "".join(d["delta"] for n, d in events if n == f"response.{kind}.delta")


def weather_tool() -> JsonObj:
    return load("agents_turn1_request.json")["tools"][0]


# --- requests ---------------------------------------------------------------------------------------


def test_agents_sdk_first_turn_becomes_chat() -> None:
    assert responses_to_chat(load("agents_turn1_request.json")) == {
        "model": "claude-sonnet-4-5",
        "messages": [
            {"role": "system", "content": "You are a concise travel assistant. Use tools for live data."},
            {"role": "user", "content": "What's the weather in Paris?"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Get the current weather for a city.",
                    "parameters": weather_tool()["parameters"],
                    "strict": True,
                },
            }
        ],
    }


def test_agents_sdk_history_replays_text_call_and_output_as_one_assistant_turn() -> None:
    chat = responses_to_chat(load("agents_turn2_request.json"))
    assert chat["messages"] == [
        {"role": "system", "content": "You are a concise travel assistant. Use tools for live data."},
        {"role": "user", "content": "What's the weather in Paris?"},
        {
            "role": "assistant",
            "content": "I'll look that up.",
            "tool_calls": [
                {
                    "id": "toolu_01A09q90qw90lq917835lq9",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_01A09q90qw90lq917835lq9", "content": "Sunny, 24°C, light breeze."},
    ]


def test_codex_request_becomes_chat() -> None:
    request = load("codex_request.json")
    chat = responses_to_chat(request)
    # OpenAI-only bookkeeping never leaves: store, include, client_metadata, reasoning.summary. The
    # prompt_cache_key stays (Anthropic's cache key; hosts that reject it drop it).
    assert set(chat) == {
        "model",
        "messages",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning_effort",
        "stream",
        "stream_options",
        "prompt_cache_key",
    }
    assert chat["reasoning_effort"] == "medium"
    assert chat["stream_options"] == {"include_usage": True}
    assert [m["role"] for m in chat["messages"]] == ["system", "system", "user", "user", "assistant", "tool", "tool"]
    assert chat["messages"][1]["content"].startswith("<permissions instructions>")  # developer -> system
    assert chat["messages"][2]["content"][1]["text"].startswith("<environment_context>")
    # The reasoning item is gone; the assistant's text and both calls (one namespaced) are one turn.
    assert chat["messages"][4] == {
        "role": "assistant",
        "content": "I'll look at the repository layout first.",
        "tool_calls": [
            {
                "id": "call_00_Qm3hTz9UgYv1pLr4aXc0Wn2E",
                "type": "function",
                "function": {"name": "shell_command", "arguments": '{"command":"ls","workdir":"/home/dev/parser"}'},
            },
            {
                "id": "call_01_Bd7kPq2rNs8tVw0xYz4aCe6G",
                "type": "function",
                "function": {"name": "mcp__docs__search", "arguments": '{"query":"unicode identifiers"}'},
            },
        ],
    }
    # A list output is flattened to its text parts.
    assert chat["messages"][6] == {
        "role": "tool",
        "tool_call_id": "call_01_Bd7kPq2rNs8tVw0xYz4aCe6G",
        "content": "tokenizer.md: identifiers are NFC-normalized before lookup.\nSee also: lexer.md",
    }
    assert [t["function"]["name"] for t in chat["tools"]] == [
        "shell_command",
        "update_plan",
        "apply_patch",
        "mcp__docs__search",
    ]
    apply_patch = chat["tools"][2]["function"]
    assert apply_patch["parameters"]["required"] == ["input"]
    assert "*** Begin Patch" in apply_patch["parameters"]["properties"]["input"]["description"]
    assert dropped_tools(request) == ["web_search"]


def test_consecutive_calls_group_and_interleaved_outputs_split_turns() -> None:
    def call(call_id: str) -> JsonObj:
        return {"type": "function_call", "call_id": call_id, "name": "get_weather", "arguments": "{}"}

    def output(call_id: str) -> JsonObj:
        return {"type": "function_call_output", "call_id": call_id, "output": call_id.upper()}

    items = [{"role": "user", "content": "go"}, call("a"), call("b"), output("a"), output("b"), call("c"), output("c")]
    messages = responses_to_chat({"model": "m", "input": items})["messages"]
    assert [(m["role"], [c["id"] for c in m.get("tool_calls", [])]) for m in messages] == [
        ("user", []),
        ("assistant", ["a", "b"]),
        ("tool", []),
        ("tool", []),
        ("assistant", ["c"]),
        ("tool", []),
    ]
    assert messages[1]["content"] is None
    assert [m["content"] for m in messages if m["role"] == "tool"] == ["A", "B", "C"]


def test_user_images_and_custom_tool_history() -> None:
    image = {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "high"}
    request = {
        "model": "m",
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "What is it?"}, image]},
            {"type": "custom_tool_call", "call_id": "call_9", "name": "apply_patch", "input": "*** Begin Patch\n"},
            {"type": "custom_tool_call_output", "call_id": "call_9", "output": "Done!"},
        ],
    }
    assert responses_to_chat(request)["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is it?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_9",
                    "type": "function",
                    "function": {"name": "apply_patch", "arguments": '{"input": "*** Begin Patch\\n"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_9", "content": "Done!"},
    ]


def test_sampling_format_and_identity_settings_map_to_chat_names() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    chat = responses_to_chat(
        {
            "model": "m",
            "input": "hi",
            "temperature": 0.2,
            "top_p": 0.9,
            "max_output_tokens": 256,
            "reasoning": {"effort": "high", "summary": "detailed"},
            "text": {"format": {"type": "json_schema", "name": "place", "schema": schema, "strict": True}},
            "safety_identifier": "user-7f3a",
            "store": True,
            "metadata": {"team": "travel"},
            "truncation": "auto",
            "service_tier": "flex",
            "prompt_cache_key": "k",
            "background": False,
        }
    )
    assert chat == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 256,
        "reasoning_effort": "high",
        "response_format": {"type": "json_schema", "json_schema": {"name": "place", "schema": schema, "strict": True}},
        "user": "user-7f3a",
        "prompt_cache_key": "k",
    }
    assert responses_to_chat({"model": "m", "input": "hi", "text": {"format": {"type": "json_object"}}})[
        "response_format"
    ] == {"type": "json_object"}


def test_tool_choice_maps_and_disappears_with_the_tools() -> None:
    namespace = load("codex_request.json")["tools"][3]
    forced = {"type": "function", "name": "search", "namespace": "mcp__docs__"}
    chat = responses_to_chat({"model": "m", "input": "x", "tools": [namespace], "tool_choice": forced})
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "mcp__docs__search"}}
    hosted_only = {
        "model": "m",
        "input": "x",
        "tools": [{"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["vs_1"]}],
        "tool_choice": "required",
        "parallel_tool_calls": True,
    }
    chat = responses_to_chat(hosted_only)
    assert "tools" not in chat and "tool_choice" not in chat and "parallel_tool_calls" not in chat
    assert dropped_tools(hosted_only) == ["web_search", "file_search"]


def test_namespace_that_is_not_a_function_container_is_hosted() -> None:
    odd = {"type": "namespace", "name": "vendor", "description": "d", "tools": [{"type": "web_search"}]}
    request = {"model": "m", "input": "x", "tools": [odd, weather_tool()]}
    assert [t["function"]["name"] for t in responses_to_chat(request)["tools"]] == ["get_weather"]
    assert dropped_tools(request) == ["namespace"]


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"previous_response_id": "resp_abc"}, "previous_response_id"),
        ({"conversation": "conv_123"}, "conversation"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"background": True}, "background"),
        ({"input": None}, "input"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
        ({"input": [{"type": "computer_call_output", "call_id": "c"}]}, "input[0].type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]},
            "input[0].content[0].file_id",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file-1"}]}]},
            "input[0].content[0].file_id",
        ),
        ({"input": [{"type": "function_call", "call_id": "c", "arguments": "{}"}]}, "input[0].name"),
        ({"input": [{"type": "function_call_output", "call_id": "c", "output": 3}]}, "input[0].output"),
        ({"instructions": ["x"]}, "instructions"),
        ({"tools": [{"type": "function", "parameters": {}}]}, "tools[0].name"),
        ({"tools": [{"type": "function", "name": "f"}], "tool_choice": {"type": "web_search"}}, "tool_choice"),
        ({"tools": [{"type": "function", "name": "f"}], "tool_choice": {"type": "function"}}, "tool_choice.name"),
        ({"text": {"format": {"type": "json_schema", "name": "n"}}}, "text.format.schema"),
    ],
)
def test_unsendable_requests_are_400s_naming_the_field(change: JsonObj, param: str) -> None:
    with pytest.raises(InvalidBodyError) as caught:
        responses_to_chat({"model": "m", "input": "hi", **change})
    assert caught.value.status == 400
    assert caught.value.param == param


# --- non-streaming answers --------------------------------------------------------------------------


def test_tool_call_completion_becomes_exact_response() -> None:
    request = load("agents_turn1_request.json")
    response = chat_to_response(
        load("agents_turn1_completion.json"), request=request, response_id=RESPONSE_ID, created_at=CREATED
    )
    assert response["output"] == [
        {
            "id": "msg_68c1f0a2b3d4e5f60718293a4b5c6d7e_0",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": "I'll look that up."}],
        },
        {
            "id": "fc_68c1f0a2b3d4e5f60718293a4b5c6d7e_1",
            "type": "function_call",
            "status": "completed",
            "arguments": '{"city": "Paris"}',
            "call_id": "toolu_01A09q90qw90lq917835lq9",
            "name": "get_weather",
        },
    ]
    assert response["usage"] == {
        "input_tokens": 412,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 58,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 470,
    }
    parsed = Response.model_validate(response)
    assert (parsed.id, parsed.status, parsed.created_at, parsed.model) == (
        RESPONSE_ID,
        "completed",
        CREATED,
        "claude-sonnet-4-5",
    )
    assert (parsed.instructions, parsed.tool_choice, parsed.parallel_tool_calls) == (
        request["instructions"],
        "auto",
        True,
    )
    assert parsed.tools[0].type == "function" and parsed.tools[0].name == "get_weather"
    assert parsed.output_text == "I'll look that up."
    assert parsed.incomplete_details is None and parsed.error is None


def test_codex_completion_maps_reasoning_namespace_and_usage() -> None:
    request = load("codex_request.json")
    response = chat_to_response(
        load("codex_completion.json"), request=request, response_id=RESPONSE_ID, created_at=CREATED
    )
    parsed = Response.model_validate(response)
    assert [item.type for item in parsed.output] == ["reasoning", "message", "function_call", "function_call"]
    assert response["output"][0] == {
        "id": "rs_68c1f0a2b3d4e5f60718293a4b5c6d7e_0",
        "type": "reasoning",
        "summary": [
            {
                "type": "summary_text",
                "text": "The user wants the failing test fixed. First look at the test file and search the docs.",
            }
        ],
    }
    # Codex needs the leaf name and the namespace as separate fields, as OpenAI returns them.
    search = response["output"][3]
    assert (search["name"], search["namespace"], search["call_id"]) == (
        "search",
        "mcp__docs__",
        "call_01_Jv5sYb0c1Wq9LrT2nHd8Ke4p",
    )
    assert "namespace" not in response["output"][2]
    assert response["usage"]["input_tokens_details"]["cached_tokens"] == 8832
    assert response["usage"]["output_tokens_details"]["reasoning_tokens"] == 96
    assert response["reasoning"] == {"effort": "medium", "summary": "auto"}
    assert response["store"] is False
    # The hosted web_search tool was not available, so it is not echoed as one.
    assert [t["type"] for t in response["tools"]] == ["function", "function", "custom", "namespace"]


def test_custom_tool_call_comes_back_as_custom_tool_call() -> None:
    request = load("codex_request.json")
    patch = (
        "*** Begin Patch\n*** Update File: parser/tokenize.py\n@@\n-    return s\n+    return nfc(s)\n*** End Patch\n"
    )
    completion = {
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_00_Fx2",
                            "type": "function",
                            "function": {"name": "apply_patch", "arguments": json.dumps({"input": patch})},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    response = chat_to_response(completion, request=request, response_id=RESPONSE_ID, created_at=CREATED)
    assert response["output"] == [
        {
            "id": "ctc_68c1f0a2b3d4e5f60718293a4b5c6d7e_0",
            "type": "custom_tool_call",
            "status": "completed",
            "input": patch,
            "call_id": "call_00_Fx2",
            "name": "apply_patch",
        }
    ]
    assert response["usage"] is None
    Response.model_validate(response)


@pytest.mark.parametrize(
    ("finish_reason", "reason"), [("length", "max_output_tokens"), ("content_filter", "content_filter")]
)
def test_cut_off_answers_are_incomplete(finish_reason: str, reason: str) -> None:
    completion = load("agents_turn2_completion.json")
    completion["choices"][0]["finish_reason"] = finish_reason
    response = chat_to_response(
        completion, request={"model": "m", "input": "x", "max_output_tokens": 21}, response_id="resp_1", created_at=1
    )
    assert (response["status"], response["incomplete_details"]) == ("incomplete", {"reason": reason})
    assert response["output"][0]["status"] == "incomplete"
    assert response["max_output_tokens"] == 21
    Response.model_validate(response)


# --- streaming --------------------------------------------------------------------------------------


def test_stream_of_text_then_tool_call_follows_openai_event_order() -> None:
    request = {**load("agents_turn1_request.json"), "stream": True}
    events = run_stream(request, chunks("agents_turn1_stream.sse"))
    validate_events(events)
    assert names(events) == [
        "created",
        "in_progress",
        "output_item.added",
        "content_part.added",
        "output_text.delta",
        "output_text.delta",
        "output_text.done",
        "content_part.done",
        "output_item.done",
        "output_item.added",
        "function_call_arguments.delta",
        "function_call_arguments.delta",
        "function_call_arguments.done",
        "output_item.done",
        "completed",
    ]
    added_call = events[9][1]["item"]
    assert added_call == {
        "id": "fc_68c1f0a2b3d4e5f60718293a4b5c6d7e_1",
        "type": "function_call",
        "status": "in_progress",
        "arguments": "",
        "call_id": "toolu_01A09q90qw90lq917835lq9",
        "name": "get_weather",
    }
    assert {d["output_index"] for n, d in events[10:14]} == {1}
    assert text_deltas(events, "function_call_arguments") == '{"city": "Paris"}'
    assert events[1][1]["response"]["status"] == "in_progress" and events[1][1]["response"]["output"] == []
    # The stream's final Response is exactly the non-streaming answer to the same turn.
    non_stream = chat_to_response(
        load("agents_turn1_completion.json"), request=request, response_id=RESPONSE_ID, created_at=CREATED
    )
    assert events[-1][1]["response"] == non_stream
    assert [d["item"] for n, d in events if n == "response.output_item.done"] == non_stream["output"]


def test_codex_stream_reasoning_text_and_two_calls_in_one_chunk() -> None:
    request = load("codex_request.json")
    events = run_stream(request, chunks("codex_stream.sse"))
    validate_events(events)
    assert names(events) == [
        "created",
        "in_progress",
        "output_item.added",
        "reasoning_summary_part.added",
        "reasoning_summary_text.delta",
        "reasoning_summary_text.delta",
        "reasoning_summary_text.done",
        "reasoning_summary_part.done",
        "output_item.done",
        "output_item.added",
        "content_part.added",
        "output_text.delta",
        "output_text.delta",
        "output_text.done",
        "content_part.done",
        "output_item.done",
        "output_item.added",
        "function_call_arguments.delta",
        "function_call_arguments.done",
        "output_item.done",
        "output_item.added",
        "function_call_arguments.delta",
        "function_call_arguments.done",
        "output_item.done",
        "completed",
    ]
    non_stream = chat_to_response(
        load("codex_completion.json"), request=request, response_id=RESPONSE_ID, created_at=CREATED
    )
    final = events[-1][1]["response"]
    assert final == non_stream
    assert text_deltas(events, "reasoning_summary_text") == final["output"][0]["summary"][0]["text"]
    assert text_deltas(events, "output_text") == final["output"][1]["content"][0]["text"]
    assert events[20][1]["item"]["namespace"] == "mcp__docs__" and events[20][1]["item"]["name"] == "search"
    assert final["usage"]["total_tokens"] == 9284
    assert Response.model_validate(final).status == "completed"


def test_interleaved_deltas_keep_every_fragment() -> None:
    request = {"model": "m", "input": "x", "tools": [weather_tool()]}

    def chunk(delta: JsonObj, finish: str | None = None) -> JsonObj:
        return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    def call(index: int, arguments: str, **start: str) -> JsonObj:
        function = {"arguments": arguments, **({"name": start["name"]} if start else {})}
        return {"index": index, **({"id": start["id"]} if start else {}), "function": function}

    stream = [
        chunk({"tool_calls": [call(0, '{"city":', id="call_a", name="get_weather")]}),
        chunk({"content": "Checking both."}),
        chunk({"tool_calls": [call(1, '{"city": "Rome"}', id="call_b", name="get_weather")]}),
        chunk({"tool_calls": [call(0, ' "Oslo"}')]}),  # a late fragment for a call already closed
        chunk({}, "tool_calls"),
    ]
    events = run_stream(request, stream, response_id="resp_x")
    validate_events(events)
    output = events[-1][1]["response"]["output"]
    assert [(i["type"], i.get("arguments")) for i in output] == [
        ("function_call", '{"city": "Oslo"}'),
        ("message", None),
        ("function_call", '{"city": "Rome"}'),
    ]
    assert [d["output_index"] for n, d in events if n == "response.output_item.added"] == [0, 1, 2]
    # Items never overlap: each one is done before the next is added.
    opened: list[int] = []
    for name, data in events:
        if name == "response.output_item.added":
            assert not opened
            opened.append(data["output_index"])
        elif name == "response.output_item.done":
            assert opened.pop() == data["output_index"]


def test_length_cut_stream_ends_incomplete_with_usage() -> None:
    request = {"model": "llama-3.3-70b-versatile", "input": "Airports in Paris?", "max_output_tokens": 8}
    events = run_stream(request, chunks("groq_length_stream.sse"))
    validate_events(events)
    name, data = events[-1]
    assert name == "response.incomplete"
    assert data["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert data["response"]["output"][0]["status"] == "incomplete"
    assert data["response"]["output"][0]["content"][0]["text"] == "Paris has three main airports:"
    assert data["response"]["usage"]["output_tokens"] == 8


def test_refusal_streams_as_refusal_part() -> None:
    stream = [{"choices": [{"index": 0, "delta": {"refusal": "I can't help with that."}, "finish_reason": "stop"}]}]
    events = run_stream({"model": "m", "input": "x"}, stream, response_id="resp_r")
    validate_events(events)
    assert "refusal.delta" in names(events) and "refusal.done" in names(events)
    assert events[-1][1]["response"]["output"][0]["content"] == [
        {"type": "refusal", "refusal": "I can't help with that."}
    ]


def test_provider_error_mid_stream_is_response_failed() -> None:
    translator = ResponsesStreamTranslator(request={"model": "m", "input": "x"}, response_id="resp_f", created_at=1)
    events = translator.start()
    events += translator.feed(chunks("agents_turn2_stream.sse")[1])
    events += translator.fail("Overloaded", "overloaded_error")
    validate_events(events)
    name, data = events[-1]
    assert name == "response.failed"
    assert data["response"]["status"] == "failed"
    assert data["response"]["error"] == {"code": "server_error", "message": "Overloaded"}
    assert data["response"]["output"][0]["status"] == "incomplete"
    assert translator.fail("again", "x") == [] and translator.finish() == [] and translator.feed({}) == []
    rate = ResponsesStreamTranslator(request={"model": "m", "input": "x"}, response_id="resp_g", created_at=1)
    assert rate.fail("Slow down", "rate_limit_error")[-1][1]["response"]["error"]["code"] == "rate_limit_exceeded"


def test_sse_frames_one_event() -> None:
    assert sse("response.in_progress", {"type": "response.in_progress", "sequence_number": 1}) == (
        b'event: response.in_progress\ndata: {"type":"response.in_progress","sequence_number":1}\n\n'
    )


# --- the OpenAI Agents SDK, run for real against the translation ------------------------------------


def _serve(stream_names: list[str], seen: list[JsonObj]) -> httpx.MockTransport:
    """A /v1/responses endpoint answering turn n with fixture n, through this module only."""

    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(copy.deepcopy(body))
        chat = responses_to_chat(body)
        turn = stream_names[len(seen) - 1]
        response_id = f"resp_{len(seen):032x}"
        if chat.get("stream"):
            events = run_stream(body, chunks(f"{turn}_stream.sse"), response_id=response_id)
            wire = b"".join(sse(name, data) for name, data in events)
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=wire)
        completion = load(f"{turn}_completion.json")
        return httpx.Response(
            200, json=chat_to_response(completion, request=body, response_id=response_id, created_at=CREATED)
        )

    return httpx.MockTransport(handle)


def _run_agent(streamed: bool) -> tuple[Any, list[str], list[JsonObj]]:
    set_tracing_disabled(True)
    seen: list[JsonObj] = []
    cities: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Get the current weather for a city."""
        cities.append(city)
        return "Sunny, 24°C, light breeze."

    async def main() -> Any:
        transport = _serve(["agents_turn1", "agents_turn2"], seen)
        async with httpx.AsyncClient(transport=transport) as http:
            client = AsyncOpenAI(api_key="sk-heliport", base_url="http://heliport.test/v1", http_client=http)
            agent = Agent(
                name="travel",
                instructions="You are a concise travel assistant. Use tools for live data.",
                tools=[get_weather],
                model=OpenAIResponsesModel(model="claude-sonnet-4-5", openai_client=client),
            )
            if not streamed:
                return await Runner.run(agent, "What's the weather in Paris?")
            run = Runner.run_streamed(agent, "What's the weather in Paris?")
            async for _ in run.stream_events():
                pass
            return run

    return asyncio.run(main()), cities, seen


@pytest.mark.parametrize("streamed", [False, True])
def test_agents_sdk_runs_a_tool_turn_through_the_translation(streamed: bool) -> None:
    result, cities, seen = _run_agent(streamed)
    assert cities == ["Paris"]
    assert result.final_output == "It's sunny in Paris right now: 24°C with a light westerly breeze."
    assert [body.get("stream", False) for body in seen] == [streamed, streamed]
    # Both bodies are the fixtures: turn 2 resends our output items (ids included) plus the tool's output.
    without_stream = [{k: v for k, v in body.items() if k != "stream"} for body in seen]
    assert without_stream == [
        load("agents_turn1_request.json"),
        {k: v for k, v in load("agents_turn2_request.json").items() if k != "stream"},
    ]
    assert result.context_wrapper.usage.input_tokens == 412 + 507
    assert result.context_wrapper.usage.output_tokens == 58 + 21
