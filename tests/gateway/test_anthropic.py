"""OpenAI chat <-> Anthropic Messages translation: requests, answers, streams and errors.

Fixtures under ``fixtures/anthropic`` are in Anthropic's wire format: Message JSON bodies and raw
SSE streams (``event:`` + ``data:`` blocks, compact JSON, pings) as ``/v1/messages`` sends them.
Each stream fixture has a non-stream twin, so the two translations can be checked against each other.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from heliport.errors import InvalidBodyError, UpstreamError
from heliport.gateway import anthropic
from heliport.gateway.chat import ProviderStreamError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "anthropic"
MODEL = "claude-sonnet-4-5-20250929"
CREATED = 1_735_689_600
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
HELLO = [{"role": "user", "content": "Hello"}]
TEXT_ANSWER = "Berlin is nicer for a walk today: 21 °C and sunny, while Paris has light rain at 18 °C."


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def sse_events(name: str) -> list[tuple[str, dict[str, Any]]]:
    """A recorded stream as ``(event name, decoded data)`` pairs."""
    events = []
    for block in (FIXTURES / name).read_text(encoding="utf-8").split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def translate(body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return anthropic.chat_to_messages(body, model=MODEL, **kwargs)


def run_stream(name: str, *, include_usage: bool = True) -> list[dict[str, Any]]:
    translator = anthropic.MessagesStreamTranslator(model=MODEL, created=CREATED, include_usage=include_usage)
    return [chunk for event, data in sse_events(name) for chunk in translator.feed(event, data)]


def chunk(completion_id: str, delta: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "choices": []
        if delta is None
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": extra.get("finish_reason")}],
    }
    if "usage" in extra:
        out["usage"] = extra["usage"]
    return out


def bad_request(body: dict[str, Any], param: str) -> InvalidBodyError:
    with pytest.raises(InvalidBodyError) as info:
        translate(body)
    assert info.value.param == param
    assert info.value.status == 400
    return info.value


# -- request -------------------------------------------------------------------------------------


def test_full_request_matches_the_expected_messages_body() -> None:
    assert translate(load("chat_request.json")) == load("messages_request.json")


def test_the_request_is_not_modified() -> None:
    chat = load("chat_request.json")
    before = copy.deepcopy(chat)
    translate(chat)
    assert chat == before


def test_minimal_request_uses_default_max_tokens_and_string_content() -> None:
    assert translate({"model": "x", "messages": HELLO}) == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Hello"}],
        "max_tokens": 4096,
    }
    assert translate({"messages": HELLO}, default_max_tokens=256)["max_tokens"] == 256


def test_one_system_message_becomes_a_system_string() -> None:
    body = translate({"messages": [{"role": "system", "content": "Be brief."}, *HELLO]})
    assert body["system"] == "Be brief."
    parts = [{"type": "text", "text": "Be "}, {"type": "text", "text": ""}]
    assert translate({"messages": [{"role": "developer", "content": parts}, *HELLO]})["system"] == "Be "


def test_several_system_messages_become_text_blocks_in_order() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "developer", "content": "Use metric units."},
        {"role": "user", "content": "Weather?"},
    ]
    body = translate({"messages": messages})
    assert body["system"] == [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use metric units."}]
    # The system message between them no longer separates the two user messages.
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "Weather?"}]}
    ]


def test_system_cache_control_is_kept_on_its_block() -> None:
    part = {"type": "text", "text": "A long shared prompt.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    body = translate({"messages": [{"role": "system", "content": [part]}, *HELLO]})
    assert body["system"] == [part]
    # A message-level cache_control marks the message's last block.
    message = {"role": "system", "content": "Shared prompt.", "cache_control": {"type": "ephemeral"}}
    body = translate({"messages": [message, *HELLO]})
    assert body["system"] == [{"type": "text", "text": "Shared prompt.", "cache_control": {"type": "ephemeral"}}]


def test_user_parts_keep_cache_control() -> None:
    content = [{"type": "text", "text": "Summarise this.", "cache_control": {"type": "ephemeral"}}]
    body = translate({"messages": [{"role": "user", "content": content}]})
    assert body["messages"][0]["content"] == content


def test_only_system_messages_is_a_400() -> None:
    bad_request({"messages": [{"role": "system", "content": "Be brief."}]}, "messages")


@pytest.mark.parametrize("messages", [None, [], "Hello"])
def test_messages_must_be_a_non_empty_array(messages: Any) -> None:
    bad_request({"messages": messages}, "messages")


def test_unknown_role_names_the_message() -> None:
    bad_request({"messages": [*HELLO, {"role": "function", "name": "f", "content": "x"}]}, "messages[1].role")


@pytest.mark.parametrize(
    ("url", "media_type"),
    [
        (f"data:image/png;base64,{PNG_B64}", "image/png"),
        (f"data:image/jpg;base64,{PNG_B64}", "image/jpeg"),
        (f"data:image/webp;charset=binary;base64,{PNG_B64}", "image/webp"),
    ],
)
def test_data_url_images_become_base64_sources(url: str, media_type: str) -> None:
    content = [{"type": "image_url", "image_url": {"url": url}}]
    body = translate({"messages": [{"role": "user", "content": content}]})
    source = {"type": "base64", "media_type": media_type, "data": PNG_B64}
    assert body["messages"][0]["content"] == [{"type": "image", "source": source}]


def test_https_images_become_url_sources() -> None:
    url = "https://example.com/cat.jpg"
    content = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": url}}]
    body = translate({"messages": [{"role": "user", "content": content}]})
    assert body["messages"][0]["content"][1] == {"type": "image", "source": {"type": "url", "url": url}}


@pytest.mark.parametrize("url", ["data:image/bmp;base64,Qk0=", "ftp://example.com/cat.jpg", ""])
def test_unusable_images_name_the_url(url: str) -> None:
    content = [{"type": "text", "text": "Look"}, {"type": "image_url", "image_url": {"url": url}}]
    bad_request({"messages": [{"role": "user", "content": content}]}, "messages[0].content[1].image_url.url")


def test_pdf_and_text_files_become_documents() -> None:
    content = [
        {"type": "file", "file": {"filename": "report.pdf", "file_data": "data:application/pdf;base64,JVBERi0xLjQK"}},
        {"type": "file", "file": {"file_data": "data:text/plain;base64,aGVsbG8gd29ybGQ="}},
    ]
    body = translate({"messages": [{"role": "user", "content": content}]})
    assert body["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQK"},
            "title": "report.pdf",
        },
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hello world"}},
    ]
    bad_request(
        {"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc123"}}]}]},
        "messages[0].content[0].file.file_data",
    )


def test_unsupported_part_type_names_the_part() -> None:
    content = [{"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}]
    bad_request({"messages": [{"role": "user", "content": content}]}, "messages[0].content[0].type")


def test_assistant_tool_calls_become_tool_use_blocks() -> None:
    call = {"id": "call_9aZ", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}
    messages = [*HELLO, {"role": "assistant", "content": None, "tool_calls": [call]}]
    body = translate({"messages": messages, "tools": [WEATHER_TOOL]})
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "call_9aZ", "name": "get_weather", "input": {"city": "Oslo"}}],
    }


def test_empty_arguments_are_an_empty_input_and_foreign_ids_are_made_safe() -> None:
    call = {"id": "call:9/aZ", "type": "function", "function": {"name": "now", "arguments": ""}}
    messages = [
        *HELLO,
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call:9/aZ", "content": "12:00"},
    ]
    body = translate({"messages": messages, "tools": [{"type": "function", "function": {"name": "now"}}]})
    assert body["messages"][1]["content"] == [{"type": "tool_use", "id": "call_9_aZ", "name": "now", "input": {}}]
    assert body["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "call_9_aZ", "content": "12:00"}]
    assert body["tools"] == [{"name": "now", "input_schema": {"type": "object", "properties": {}}}]


@pytest.mark.parametrize("arguments", ['{"city": "Oslo"', "[1, 2]", 7])
def test_bad_tool_arguments_name_the_field(arguments: Any) -> None:
    calls = [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}},
        {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": arguments}},
    ]
    messages = [*HELLO, {"role": "assistant", "content": "", "tool_calls": calls}]
    bad_request({"messages": messages, "tools": [WEATHER_TOOL]}, "messages[1].tool_calls[1].function.arguments")


def test_tool_message_without_id_is_a_400() -> None:
    bad_request({"messages": [*HELLO, {"role": "tool", "content": "x"}]}, "messages[1].tool_call_id")


def test_consecutive_tool_results_share_one_user_turn() -> None:
    calls = [
        {"id": f"toolu_0{i}", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
        for i in (1, 2)
    ]
    messages = [
        *HELLO,
        {"role": "assistant", "content": "Checking.", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "toolu_01", "content": "rain"},
        {"role": "tool", "tool_call_id": "toolu_02", "content": ""},
        {"role": "assistant", "content": "Rain in one, no data for the other."},
        {"role": "assistant", "content": [{"type": "text", "text": "Anything else?"}]},
    ]
    body = translate({"messages": messages, "tools": [WEATHER_TOOL]})
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user", "assistant"]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_01", "content": "rain"},
        {"type": "tool_result", "tool_use_id": "toolu_02"},
    ]
    assert body["messages"][3]["content"] == [
        {"type": "text", "text": "Rain in one, no data for the other."},
        {"type": "text", "text": "Anything else?"},
    ]


def test_tool_history_without_tools_declares_stub_tools_and_forbids_calls() -> None:
    call = {"id": "toolu_01", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}
    messages = [
        *HELLO,
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "toolu_01", "content": "y"},
    ]
    body = translate({"messages": messages})
    assert body["tools"] == [{"name": "lookup", "input_schema": {"type": "object"}}]
    assert body["tool_choice"] == {"type": "none"}


def test_tools_map_to_input_schema() -> None:
    tool = {**WEATHER_TOOL, "cache_control": {"type": "ephemeral"}}
    body = translate({"messages": HELLO, "tools": [tool]})
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
            "cache_control": {"type": "ephemeral"},
        }
    ]
    assert "tool_choice" not in body


@pytest.mark.parametrize(
    ("tool", "param"),
    [
        ({"type": "custom", "custom": {"name": "grammar"}}, "tools[1].type"),
        ({"type": "function", "function": {"description": "no name"}}, "tools[1].function.name"),
        ({"type": "function", "function": {"name": "f", "parameters": "object"}}, "tools[1].function.parameters"),
    ],
)
def test_bad_tools_name_the_field(tool: Any, param: str) -> None:
    bad_request({"messages": HELLO, "tools": [WEATHER_TOOL, tool]}, param)


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        ({"type": "function", "function": {"name": "get_weather"}}, None, {"type": "tool", "name": "get_weather"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        ("none", False, {"type": "none"}),
        ("auto", True, {"type": "auto"}),
    ],
)
def test_tool_choice_mapping(choice: Any, parallel: bool | None, expected: dict[str, Any]) -> None:
    chat: dict[str, Any] = {"messages": HELLO, "tools": [WEATHER_TOOL], "tool_choice": choice}
    if parallel is not None:
        chat["parallel_tool_calls"] = parallel
    assert translate(chat)["tool_choice"] == expected


def test_tool_choice_without_tools() -> None:
    assert "tool_choice" not in translate({"messages": HELLO, "tool_choice": "none"})
    assert "tool_choice" not in translate({"messages": HELLO, "tool_choice": "auto", "parallel_tool_calls": False})
    bad_request({"messages": HELLO, "tool_choice": "required"}, "tool_choice")


@pytest.mark.parametrize(
    ("choice", "param"),
    [("any", "tool_choice"), ({"type": "function", "function": {}}, "tool_choice.function.name")],
)
def test_bad_tool_choice_names_the_field(choice: Any, param: str) -> None:
    bad_request({"messages": HELLO, "tools": [WEATHER_TOOL], "tool_choice": choice}, param)


@pytest.mark.parametrize(
    ("stop", "expected"), [("END", ["END"]), (["a", "", "b"], ["a", "b"]), ("", None), (None, None)]
)
def test_stop_becomes_stop_sequences(stop: Any, expected: list[str] | None) -> None:
    assert translate({"messages": HELLO, "stop": stop}).get("stop_sequences") == expected


def test_bad_stop_is_a_400() -> None:
    bad_request({"messages": HELLO, "stop": ["a", 1]}, "stop")


def test_max_tokens_fields() -> None:
    assert translate({"messages": HELLO, "max_tokens": 300})["max_tokens"] == 300
    assert translate({"messages": HELLO, "max_tokens": 300, "max_completion_tokens": 200})["max_tokens"] == 200
    bad_request({"messages": HELLO, "max_completion_tokens": 0}, "max_completion_tokens")
    bad_request({"messages": HELLO, "max_tokens": "lots"}, "max_tokens")


def test_sampling_parameters() -> None:
    body = translate({"messages": HELLO, "temperature": 1.7, "top_p": 0.5})
    assert (body["temperature"], body["top_p"]) == (1.0, 0.5)
    bad_request({"messages": HELLO, "temperature": "hot"}, "temperature")


def test_user_becomes_metadata_user_id() -> None:
    assert translate({"messages": HELLO, "user": "u-7"})["metadata"] == {"user_id": "u-7"}
    assert translate({"messages": HELLO, "safety_identifier": "hash-1"})["metadata"] == {"user_id": "hash-1"}
    # Helicone's prompt-caching doc: prompt_cache_key, safety_identifier and user all map; the cache key wins.
    both = {"messages": HELLO, "user": "u-7", "safety_identifier": "hash-1", "prompt_cache_key": "doc-v1"}
    assert translate(both)["metadata"] == {"user_id": "doc-v1"}
    assert translate({**both, "prompt_cache_key": None})["metadata"] == {"user_id": "hash-1"}
    bad_request({"messages": HELLO, "prompt_cache_key": 3}, "prompt_cache_key")
    bad_request({"messages": HELLO, "user": 7}, "user")


def test_stream_flag() -> None:
    assert translate({"messages": HELLO, "stream": True})["stream"] is True
    assert "stream" not in translate({"messages": HELLO, "stream": False})


@pytest.mark.parametrize(("effort", "budget"), [("minimal", 1024), ("low", 1024), ("medium", 4096), ("high", 16384)])
def test_reasoning_effort_becomes_a_thinking_budget(effort: str, budget: int) -> None:
    body = translate({"messages": HELLO, "reasoning_effort": effort, "max_completion_tokens": 32000})
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == 32000


def test_max_tokens_is_raised_above_the_budget() -> None:
    # Default 4096 is not above medium's 4096 budget, so the budget goes on top of it.
    assert translate({"messages": HELLO, "reasoning_effort": "medium"})["max_tokens"] == 8192
    assert translate({"messages": HELLO, "reasoning_effort": "low"})["max_tokens"] == 4096
    body = translate({"messages": HELLO, "reasoning_effort": "high", "max_tokens": 2000})
    assert (body["max_tokens"], body["thinking"]["budget_tokens"]) == (18384, 16384)


def test_thinking_drops_sampling_changes_it_does_not_accept() -> None:
    body = translate({"messages": HELLO, "reasoning_effort": "low", "temperature": 0.2, "top_p": 0.5})
    assert "temperature" not in body and "top_p" not in body
    body = translate({"messages": HELLO, "reasoning_effort": "low", "top_p": 0.97})
    assert body["top_p"] == 0.97


def test_caller_thinking_is_passed_through_and_wins_over_effort() -> None:
    thinking = {"type": "enabled", "budget_tokens": 2048, "display": "summarized"}
    body = translate({"messages": HELLO, "thinking": thinking, "reasoning_effort": "high", "max_tokens": 1000})
    assert body["thinking"] == thinking
    assert body["max_tokens"] == 3048
    adaptive = translate({"messages": HELLO, "thinking": {"type": "adaptive"}, "temperature": 0.5})
    assert adaptive["thinking"] == {"type": "adaptive"} and "temperature" not in adaptive
    disabled = translate({"messages": HELLO, "thinking": {"type": "disabled"}, "temperature": 0.5})
    assert disabled["temperature"] == 0.5
    bad_request({"messages": HELLO, "thinking": True}, "thinking")


def test_effort_is_ignored_when_a_tool_is_forced_or_a_tool_loop_is_pending() -> None:
    forced = translate(
        {"messages": HELLO, "tools": [WEATHER_TOOL], "tool_choice": "required", "reasoning_effort": "low"}
    )
    assert "thinking" not in forced
    call = {"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    loop = [
        *HELLO,
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "toolu_01", "content": "ok"},
    ]
    assert "thinking" not in translate({"messages": loop, "tools": [WEATHER_TOOL], "reasoning_effort": "low"})
    later = [*loop, {"role": "assistant", "content": "Done."}, {"role": "user", "content": "And now?"}]
    assert "thinking" in translate({"messages": later, "tools": [WEATHER_TOOL], "reasoning_effort": "low"})


@pytest.mark.parametrize("effort", ["extreme", 3])
def test_bad_reasoning_effort_is_a_400(effort: Any) -> None:
    bad_request({"messages": HELLO, "reasoning_effort": effort}, "reasoning_effort")


def test_reasoning_effort_none_leaves_thinking_off() -> None:
    assert "thinking" not in translate({"messages": HELLO, "reasoning_effort": "none"})


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}},
            "response_format.type",
        ),
        ({"response_format": {"type": "json_object"}}, "response_format.type"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"web_search_options": {}}, "web_search_options"),
    ],
)
def test_parameters_anthropic_cannot_honour_are_400s(extra: dict[str, Any], param: str) -> None:
    bad_request({"messages": HELLO, **extra}, param)


def test_harmless_openai_parameters_are_dropped() -> None:
    chat = {
        "messages": [{"role": "user", "content": "Hello", "name": "alice"}],
        "n": 1,
        "logprobs": False,
        "logit_bias": {},
        "modalities": ["text"],
        "response_format": {"type": "text"},
        "seed": 7,
        "frequency_penalty": 0.5,
        "presence_penalty": 0.5,
        "store": True,
        "metadata": {"team": "search"},
        "service_tier": "auto",
        "prediction": {"type": "content", "content": "x"},
        "verbosity": "low",
        "stream_options": {"include_usage": True},
    }
    assert translate(chat) == {"model": MODEL, "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 4096}


# -- response ------------------------------------------------------------------------------------


def test_text_message_becomes_a_chat_completion() -> None:
    assert anthropic.messages_to_chat(load("message_text.json"), model=MODEL, created=CREATED) == {
        "id": "chatcmpl-msg_01XFDUDYJgAACzvnptvVoYEL",
        "object": "chat.completion",
        "created": CREATED,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": TEXT_ANSWER,
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 2008,
            "completion_tokens": 31,
            "total_tokens": 2039,
            "prompt_tokens_details": {"cached_tokens": 1536, "cache_write_tokens": 0},
        },
    }


def test_tool_use_message_becomes_tool_calls() -> None:
    completion = anthropic.messages_to_chat(load("message_tool_use.json"), model="my-claude", created=CREATED)
    assert completion["model"] == "my-claude"
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "I'll look up the current weather in both cities."
    assert choice["message"]["tool_calls"] == [
        {
            "id": "toolu_01A09q90qw90lq917835lq9",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris","unit":"celsius"}'},
        },
        {
            "id": "toolu_01RzE3Lg8tJ5PqVbX2mWkD7H",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Berlin","unit":"celsius"}'},
        },
    ]
    assert completion["usage"] == {
        "prompt_tokens": 1234,
        "completion_tokens": 112,
        "total_tokens": 1346,
        "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 210},
    }


def test_content_is_null_when_there_are_only_tool_calls() -> None:
    message = load("message_tool_use.json")
    message["content"] = message["content"][1:]
    chat_message = anthropic.messages_to_chat(message, model=MODEL, created=CREATED)["choices"][0]["message"]
    assert chat_message["content"] is None and len(chat_message["tool_calls"]) == 2
    message["content"] = []
    message["stop_reason"] = "max_tokens"
    choice = anthropic.messages_to_chat(message, model=MODEL, created=CREATED)["choices"][0]
    assert (choice["message"]["content"], choice["finish_reason"]) == ("", "length")
    assert "tool_calls" not in choice["message"]


def test_thinking_becomes_reasoning_content_and_redacted_thinking_is_ignored() -> None:
    message = anthropic.messages_to_chat(load("message_thinking.json"), model=MODEL, created=CREATED)["choices"][0][
        "message"
    ]
    assert message["content"] == "27 × 453 = 12,231."
    assert message["reasoning_content"] == (
        "The user wants 27 * 453. 27 * 453 = 27 * 400 + 27 * 53 = 10800 + 1431 = 12231."
    )


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        (None, "stop"),
    ],
)
def test_stop_reasons(stop_reason: str | None, finish_reason: str) -> None:
    message = {**load("message_text.json"), "stop_reason": stop_reason}
    assert (
        anthropic.messages_to_chat(message, model=MODEL, created=CREATED)["choices"][0]["finish_reason"]
        == finish_reason
    )


def test_a_message_without_content_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamError):
        anthropic.messages_to_chat(load("error_overloaded.json"), model=MODEL, created=CREATED)


def test_answer_round_trips_into_the_next_request() -> None:
    """A translated tool-use answer, sent back as history, is Anthropic's original content again."""
    original = load("message_tool_use.json")
    reply = anthropic.messages_to_chat(original, model=MODEL, created=CREATED)["choices"][0]["message"]
    history = [*HELLO, {k: reply[k] for k in ("role", "content", "tool_calls")}]
    body = translate({"messages": history, "tools": [WEATHER_TOOL]})
    assert body["messages"][1] == {"role": "assistant", "content": original["content"]}


# -- stream --------------------------------------------------------------------------------------


def test_text_stream_chunks() -> None:
    cid = "chatcmpl-msg_01XFDUDYJgAACzvnptvVoYEL"
    usage = {
        "prompt_tokens": 2008,
        "completion_tokens": 31,
        "total_tokens": 2039,
        "prompt_tokens_details": {"cached_tokens": 1536, "cache_write_tokens": 0},
    }
    texts = ["Berlin", " is nicer for a walk", " today: 21 °C and", " sunny, while Paris has", " light rain at 18 °C."]
    assert run_stream("stream_text.sse") == [
        chunk(cid, {"role": "assistant", "content": ""}),
        *(chunk(cid, {"content": text}) for text in texts),
        chunk(cid, {}, finish_reason="stop"),
        chunk(cid, None, usage=usage),
    ]


def test_tool_use_stream_counts_tool_calls_not_blocks() -> None:
    cid = "chatcmpl-msg_01Aq9w938a90dw8q7lZkV3sB"

    def start(index: int, call_id: str) -> dict[str, Any]:
        call = {"index": index, "id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": ""}}
        return chunk(cid, {"tool_calls": [call]})

    def arguments(index: int, text: str) -> dict[str, Any]:
        return chunk(cid, {"tool_calls": [{"index": index, "function": {"arguments": text}}]})

    usage = {
        "prompt_tokens": 1234,
        "completion_tokens": 112,
        "total_tokens": 1346,
        "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 210},
    }
    assert run_stream("stream_tool_use.sse") == [
        chunk(cid, {"role": "assistant", "content": ""}),
        chunk(cid, {"content": "I'll look up"}),
        chunk(cid, {"content": " the current weather in both cities."}),
        start(0, "toolu_01A09q90qw90lq917835lq9"),
        arguments(0, '{"city": "Par'),
        arguments(0, 'is", "unit": "cel'),
        arguments(0, 'sius"}'),
        start(1, "toolu_01RzE3Lg8tJ5PqVbX2mWkD7H"),
        arguments(1, '{"city": "Berlin"'),
        arguments(1, ', "unit": "celsius"}'),
        chunk(cid, {}, finish_reason="tool_calls"),
        chunk(cid, None, usage=usage),
    ]


def test_thinking_stream_chunks() -> None:
    cid = "chatcmpl-msg_01Jc6sQ2Wm8TnYfRkLhBv4Gd"
    assert run_stream("stream_thinking.sse", include_usage=False) == [
        chunk(cid, {"role": "assistant", "content": ""}),
        chunk(cid, {"reasoning_content": "The user wants 27 * 453."}),
        chunk(cid, {"reasoning_content": " 27 * 453 = 27 * 400 + 27 * 53"}),
        chunk(cid, {"reasoning_content": " = 10800 + 1431 = 12231."}),
        chunk(cid, {"content": "27 × 453"}),
        chunk(cid, {"content": " = 12,231."}),
        chunk(cid, {}, finish_reason="stop"),
    ]


def assemble(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """A streamed answer put back together the way an OpenAI client does."""
    content, reasoning = "", ""
    calls: dict[int, dict[str, Any]] = {}
    finish, usage = None, None
    for piece in chunks:
        usage = piece.get("usage", usage)
        for choice in piece["choices"]:
            delta = choice["delta"]
            content += delta.get("content") or ""
            reasoning += delta.get("reasoning_content") or ""
            for call in delta.get("tool_calls") or []:
                slot = calls.setdefault(call["index"], {"type": "function", "function": {"arguments": ""}})
                if "id" in call:
                    slot["id"], slot["function"]["name"] = call["id"], call["function"]["name"]
                slot["function"]["arguments"] += call["function"]["arguments"]
            finish = choice["finish_reason"] or finish
    return {
        "id": chunks[0]["id"],
        "content": content or (None if calls else ""),
        "reasoning": reasoning or None,
        "calls": [calls[i] for i in sorted(calls)],
        "finish": finish,
        "usage": usage,
    }


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        ("stream_text.sse", "message_text.json"),
        ("stream_tool_use.sse", "message_tool_use.json"),
        ("stream_thinking.sse", "message_thinking.json"),
    ],
)
def test_stream_and_non_stream_translations_agree(stream: str, message: str) -> None:
    streamed = assemble(run_stream(stream))
    completion = anthropic.messages_to_chat(load(message), model=MODEL, created=CREATED)
    choice = completion["choices"][0]
    assert streamed["id"] == completion["id"]
    assert streamed["content"] == choice["message"]["content"]
    assert streamed["reasoning"] == choice["message"].get("reasoning_content")
    assert streamed["finish"] == choice["finish_reason"]
    assert streamed["usage"] == completion["usage"]
    expected_calls = choice["message"].get("tool_calls") or []
    assert len(streamed["calls"]) == len(expected_calls)
    for got, want in zip(streamed["calls"], expected_calls, strict=True):
        # Anthropic streams the arguments with its own spacing; the JSON is the same.
        assert (got["id"], got["function"]["name"]) == (want["id"], want["function"]["name"])
        assert json.loads(got["function"]["arguments"]) == json.loads(want["function"]["arguments"])


def test_usage_is_known_to_the_translator_without_the_usage_chunk() -> None:
    translator = anthropic.MessagesStreamTranslator(model=MODEL, created=CREATED, include_usage=False)
    chunks = [c for event, data in sse_events("stream_tool_use.sse") for c in translator.feed(event, data)]
    assert all(c["choices"] for c in chunks)
    assert translator.usage is not None and translator.usage["completion_tokens"] == 112
    assert translator.finish_reason == "tool_calls"


def test_error_stream_raises_after_the_role_chunk() -> None:
    translator = anthropic.MessagesStreamTranslator(model=MODEL, created=CREATED, include_usage=True)
    events = sse_events("stream_error.sse")
    assert [event for event, _ in events] == ["message_start", "ping", "error"]
    emitted = [c for event, data in events[:-1] for c in translator.feed(event, data)]
    assert emitted == [chunk("chatcmpl-msg_01Vn3kQp8XcRfT5wZmHs2LbE", {"role": "assistant", "content": ""})]
    with pytest.raises(ProviderStreamError) as info:
        translator.feed(*events[-1])
    assert (info.value.status, info.value.kind, info.value.message) == (529, "overloaded_error", "Overloaded")


@pytest.mark.parametrize(
    ("error_type", "status"),
    [
        ("overloaded_error", 529),
        ("rate_limit_error", 429),
        ("api_error", 500),
        ("invalid_request_error", 400),
        ("authentication_error", 401),
        ("permission_error", 403),
        ("not_found_error", 404),
        ("request_too_large", 413),
        ("timeout_error", 504),
        ("brand_new_error", 500),
    ],
)
def test_stream_error_statuses(error_type: str, status: int) -> None:
    translator = anthropic.MessagesStreamTranslator(model=MODEL, created=CREATED, include_usage=True)
    with pytest.raises(ProviderStreamError) as info:
        translator.feed("error", {"type": "error", "error": {"type": error_type, "message": "boom"}})
    assert (info.value.status, info.value.kind) == (status, error_type)


def test_unknown_events_and_server_tool_blocks_are_ignored() -> None:
    translator = anthropic.MessagesStreamTranslator(model=MODEL, created=CREATED, include_usage=True)
    server_tool = {"type": "server_tool_use", "id": "srvtoolu_01", "name": "web_search", "input": {}}
    json_delta = {"type": "input_json_delta", "partial_json": '{"query": "x"}'}
    assert translator.feed("ping", {"type": "ping"}) == []
    assert (
        translator.feed(
            "content_block_start", {"type": "content_block_start", "index": 0, "content_block": server_tool}
        )
        == []
    )
    assert (
        translator.feed("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": json_delta}) == []
    )
    assert translator.feed("something_new", {"type": "something_new"}) == []


# -- errors --------------------------------------------------------------------------------------


def test_error_message() -> None:
    assert anthropic.error_message(load("error_overloaded.json")) == "Overloaded"
    assert anthropic.error_message({"type": "error", "error": {"type": "api_error"}}) == "api_error"
    assert anthropic.error_message({"message": "Bad gateway"}) == "Bad gateway"
    assert anthropic.error_message({"detail": "x"}) == "{'detail': 'x'}"
