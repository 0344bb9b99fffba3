"""OpenAI chat <-> Bedrock Converse translation; its wire (the event-stream decoder, SigV4 signing); the mock's Bedrock.

Fixtures under ``fixtures/bedrock`` are in Converse's real JSON shape. botocore's own model of the
bedrock-runtime service checks that: translated requests pass its parameter validation, and
fixture responses and the mock's streams parse with its response and event-stream parsers into
exactly the fixture content (its parsers drop any member the service does not define).
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import hashlib
import hmac
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import quote, urlsplit

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.credentials import Credentials
from botocore.eventstream import EventStream
from botocore.exceptions import EventStreamError
from botocore.model import ServiceModel
from botocore.parsers import EventStreamJSONParser, RestJSONParser
from botocore.validate import validate_parameters
from starlette.responses import Response

from heliport.config import ConfigError
from heliport.errors import InvalidBodyError
from heliport.gateway import bedrock, bedrock_wire
from heliport.gateway.chat import ProviderStreamError
from tests.mock_provider import bedrock as mock_bedrock
from tests.mock_provider.app import EventsResponse, MockStreamAbort
from tests.mock_provider.eventstream import encode_message, event_message, exception_message

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "bedrock"
MODEL = "us.anthropic.claude-sonnet-4-20250514-v1:0"
CREATED = 1_735_689_600
COMPLETION_ID = "chatcmpl-bedrock-test"
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
FROZEN = datetime.datetime(2025, 3, 4, 5, 6, 7)


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def load_stream(name: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines():
        ((event_type, payload),) = json.loads(line).items()
        events.append((event_type, payload))
    return events


def frames(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(event_message(event_type, payload) for event_type, payload in events)


def chat(messages: list[Any], **extra: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4", "messages": messages, **extra}


def chunk(delta: dict[str, Any] | None, finish: str | None = None, usage: dict[str, Any] | None = None) -> Any:
    out: dict[str, Any] = {
        "id": COMPLETION_ID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "choices": [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if usage is not None:
        out["usage"] = usage
    return out


def translate(data: bytes, *, pieces: list[bytes] | None = None, include_usage: bool = True) -> list[Any]:
    decoder = bedrock_wire.EventStreamDecoder()
    translator = bedrock.ConverseStreamTranslator(
        model=MODEL, created=CREATED, completion_id=COMPLETION_ID, include_usage=include_usage
    )
    out: list[Any] = []
    for piece in pieces if pieces is not None else [data]:
        for event_type, payload in decoder.feed(piece):
            out.extend(translator.feed(event_type, payload))
    return out


def without_padding(events: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The fixture as boto3 shows it: one-key dicts, without Bedrock's ``p`` padding field."""
    return [{event_type: {k: v for k, v in payload.items() if k != "p"}} for event_type, payload in events]


@pytest.fixture(scope="module")
def service() -> ServiceModel:
    return botocore.session.get_session().get_service_model("bedrock-runtime")


def assert_valid_converse_request(service: ServiceModel, body: dict[str, Any], model_id: str = MODEL) -> None:
    validate_parameters({**body, "modelId": model_id}, service.operation_model("Converse").input_shape)


def parse_converse_response(service: ServiceModel, raw: bytes) -> dict[str, Any]:
    parsed = RestJSONParser().parse(
        {"status_code": 200, "headers": {}, "body": raw}, service.operation_model("Converse").output_shape
    )
    parsed.pop("ResponseMetadata", None)
    return parsed


class _RawStream:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self) -> Iterator[bytes]:
        yield self._data


def parse_converse_stream(service: ServiceModel, data: bytes) -> list[dict[str, Any]]:
    shape = service.operation_model("ConverseStream").output_shape.members["stream"]
    return list(EventStream(_RawStream(data), shape, EventStreamJSONParser(), "ConverseStream"))


# -- request translation ---------------------------------------------------------------------------


def test_request_fixture_translates_to_the_converse_fixture(service: ServiceModel) -> None:
    body = bedrock.chat_to_converse(load("chat_request.json"), model_id=MODEL)
    assert body == load("converse_request.json")
    assert_valid_converse_request(service, body)


def test_assistant_reply_round_trips_into_the_next_request(service: ServiceModel) -> None:
    native = load("converse_tool_use.json")
    reply = bedrock.converse_to_chat(native, model=MODEL, created=CREATED, completion_id=COMPLETION_ID)
    assistant = reply["choices"][0]["message"]
    request = chat(
        [
            {"role": "user", "content": "Weather in Paris?"},
            {k: v for k, v in assistant.items() if k in ("role", "content", "tool_calls")},
            {"role": "tool", "tool_call_id": assistant["tool_calls"][0]["id"], "content": "18 C, cloudy"},
        ],
        tools=[WEATHER_TOOL],
    )
    body = bedrock.chat_to_converse(request, model_id=MODEL)
    assert body["messages"][1] == native["output"]["message"]
    assert body["messages"][2] == {
        "role": "user",
        "content": [
            {
                "toolResult": {
                    "toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
                    "content": [{"text": "18 C, cloudy"}],
                    "status": "success",
                }
            }
        ],
    }
    assert_valid_converse_request(service, body)


def test_minimal_request_uses_the_default_max_tokens() -> None:
    body = bedrock.chat_to_converse(chat([{"role": "user", "content": "Hi"}]), default_max_tokens=1000)
    assert body == {"messages": [{"role": "user", "content": [{"text": "Hi"}]}], "inferenceConfig": {"maxTokens": 1000}}


def test_max_tokens_and_single_stop_string() -> None:
    body = bedrock.chat_to_converse(
        chat([{"role": "user", "content": "Hi"}], max_tokens=77, stop="###", temperature=1.6)
    )
    assert body["inferenceConfig"] == {"maxTokens": 77, "temperature": 1.0, "stopSequences": ["###"]}


def test_consecutive_same_role_messages_merge_and_empty_ones_drop(service: ServiceModel) -> None:
    body = bedrock.chat_to_converse(
        chat(
            [
                {"role": "user", "content": "first"},
                {"role": "user", "content": [{"type": "text", "text": "second"}]},
                {"role": "assistant", "content": ""},
                {"role": "user", "content": "third"},
                {"role": "system", "content": "late system note"},
                {
                    "role": "assistant",
                    "content": [{"type": "text", "text": "ok"}, {"type": "refusal", "refusal": "no"}],
                },
            ]
        )
    )
    assert body["messages"] == [
        {"role": "user", "content": [{"text": "first"}, {"text": "second"}, {"text": "third"}]},
        {"role": "assistant", "content": [{"text": "ok"}, {"text": "no"}]},
    ]
    assert body["system"] == [{"text": "late system note"}]
    assert_valid_converse_request(service, body)


def test_images_from_s3_and_documents_from_data_urls(service: ServiceModel) -> None:
    pdf = "JVBERi0xLjQKJcfsj6IK"
    body = bedrock.chat_to_converse(
        chat(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "s3://my-bucket/photos/skyline.JPG"}},
                        {"type": "image_url", "image_url": {"url": f"data:image/webp;base64,{PNG_B64}"}},
                        {
                            "type": "file",
                            "file": {
                                "filename": "Q3 report_final!.pdf",
                                "file_data": f"data:application/pdf;base64,{pdf}",
                            },
                        },
                        {"type": "text", "text": "Summarise."},
                    ],
                }
            ]
        )
    )
    assert body["messages"][0]["content"] == [
        {"image": {"format": "jpeg", "source": {"s3Location": {"uri": "s3://my-bucket/photos/skyline.JPG"}}}},
        {"image": {"format": "webp", "source": {"bytes": PNG_B64}}},
        {"document": {"format": "pdf", "name": "Q3 report final", "source": {"bytes": pdf}}},
        {"text": "Summarise."},
    ]
    assert_valid_converse_request(service, body)


def test_foreign_tool_call_ids_are_made_converse_safe_on_both_sides(service: ServiceModel) -> None:
    body = bedrock.chat_to_converse(
        chat(
            [
                {"role": "user", "content": "time?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "functions.get_time:0",
                            "type": "function",
                            "function": {"name": "get_time", "arguments": ""},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "functions.get_time:0", "content": "12:00"},
            ],
            tools=[{"type": "function", "function": {"name": "get_time"}}],
        ),
        model_id="mistral.mistral-large-2407-v1:0",
    )
    assert body["messages"][1]["content"] == [
        {"toolUse": {"toolUseId": "functions_get_time_0", "name": "get_time", "input": {}}}
    ]
    # Not a Claude/Nova model: no toolResult.status.
    assert body["messages"][2]["content"] == [
        {"toolResult": {"toolUseId": "functions_get_time_0", "content": [{"text": "12:00"}]}}
    ]
    assert_valid_converse_request(service, body, "mistral.mistral-large-2407-v1:0")


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, {"auto": {}}),
        ("auto", {"auto": {}}),
        ("required", {"any": {}}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"tool": {"name": "get_weather"}}),
    ],
)
def test_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    request = chat([{"role": "user", "content": "Paris?"}], tools=[WEATHER_TOOL])
    if choice is not None:
        request["tool_choice"] = choice
    assert bedrock.chat_to_converse(request)["toolConfig"]["toolChoice"] == expected


def test_tool_choice_none_without_tool_history_sends_no_tools() -> None:
    body = bedrock.chat_to_converse(
        chat([{"role": "user", "content": "Paris?"}], tools=[WEATHER_TOOL], tool_choice="none")
    )
    assert "toolConfig" not in body


TOOL_HISTORY: Any = [
    {"role": "user", "content": "Paris?"},
    {
        "role": "assistant",
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
]


def test_tool_choice_none_with_tool_history_keeps_the_tools_without_a_choice() -> None:
    body = bedrock.chat_to_converse(chat(TOOL_HISTORY, tools=[WEATHER_TOOL], tool_choice="none"))
    assert body["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_weather",
                    "description": "Current weather for a city.",
                    "inputSchema": {"json": WEATHER_TOOL["function"]["parameters"]},
                }
            }
        ]
    }


def test_tool_history_without_tools_declares_stub_specs(service: ServiceModel) -> None:
    body = bedrock.chat_to_converse(chat(TOOL_HISTORY))
    assert body["toolConfig"] == {
        "tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object"}}}}]
    }
    assert_valid_converse_request(service, body)


def test_reasoning_effort_enables_claude_thinking_above_the_default_room(service: ServiceModel) -> None:
    body = bedrock.chat_to_converse(
        chat([{"role": "user", "content": "17*24?"}], reasoning_effort="medium"),
        default_max_tokens=4096,
        model_id=MODEL,
    )
    assert body["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 4096}}
    assert body["inferenceConfig"] == {"maxTokens": 8192}
    assert_valid_converse_request(service, body)


def test_reasoning_budget_fits_under_the_callers_limit() -> None:
    body = bedrock.chat_to_converse(
        chat([{"role": "user", "content": "17*24?"}], reasoning_effort="high", max_completion_tokens=3000),
        model_id=MODEL,
    )
    assert body["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 2999}}
    assert body["inferenceConfig"] == {"maxTokens": 3000}


@pytest.mark.parametrize(
    ("model_id", "messages", "effort"),
    [
        ("meta.llama3-1-70b-instruct-v1:0", [{"role": "user", "content": "hi"}], "high"),
        (MODEL, [{"role": "user", "content": "hi"}], "none"),
        (MODEL, TOOL_HISTORY, "high"),
    ],
    ids=["not-claude", "effort-none", "tool-loop-pending"],
)
def test_reasoning_effort_left_out(model_id: str, messages: list[Any], effort: str) -> None:
    body = bedrock.chat_to_converse(chat(messages, reasoning_effort=effort, tools=[WEATHER_TOOL]), model_id=model_id)
    assert "additionalModelRequestFields" not in body
    assert body["inferenceConfig"] == {"maxTokens": 4096}


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"n": 2}, "n"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]}
                ]
            },
            "messages[0].content[0].image_url.url",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AAAA"}}],
                    }
                ]
            },
            "messages[0].content[0].image_url.url",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}],
                    }
                ]
            },
            "messages[0].content[0].image_url.url",
        ),
        ({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "messages[0].content[0].type"),
        (
            {"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]},
            "messages[0].content[0].file.file_data",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{'a': 1}"}}
                        ],
                    },
                ]
            },
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}],
                    },
                ]
            },
            "messages[1].tool_calls[0].function.arguments",
        ),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"tools": [WEATHER_TOOL], "tool_choice": "sometimes"}, "tool_choice"),
        ({"response_format": {"type": "json_object"}}, "response_format.type"),
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
        ({"temperature": "hot"}, "temperature"),
        ({"stop": [1, 2]}, "stop"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"reasoning_effort": "low", "max_tokens": 1024}, "max_tokens"),
    ],
)
def test_untranslatable_input_is_a_400_naming_the_field(change: dict[str, Any], param: str) -> None:
    request = {**chat([{"role": "user", "content": "hi"}]), **change}
    with pytest.raises(InvalidBodyError) as caught:
        bedrock.chat_to_converse(request, model_id=MODEL)
    assert caught.value.param == param
    assert caught.value.status == 400


# -- response translation ---------------------------------------------------------------------------


def test_text_response(service: ServiceModel) -> None:
    native = load("converse_text.json")
    assert parse_converse_response(service, (FIXTURES / "converse_text.json").read_bytes()) == native
    assert bedrock.converse_to_chat(native, model=MODEL, created=CREATED, completion_id=COMPLETION_ID) == {
        "id": COMPLETION_ID,
        "object": "chat.completion",
        "created": CREATED,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello! How can I help you today?",
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 12,
            "completion_tokens": 12,
            "total_tokens": 24,
            "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        },
    }


def test_tool_use_response(service: ServiceModel) -> None:
    native = load("converse_tool_use.json")
    assert parse_converse_response(service, (FIXTURES / "converse_tool_use.json").read_bytes()) == native
    out = bedrock.converse_to_chat(native, model=MODEL, created=CREATED, completion_id=COMPLETION_ID)
    assert out["choices"][0] == {
        "index": 0,
        "message": {
            "role": "assistant",
            "content": "I'll check the current weather in Paris for you.",
            "refusal": None,
            "annotations": [],
            "tool_calls": [
                {
                    "id": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        "logprobs": None,
        "finish_reason": "tool_calls",
    }
    assert out["usage"] == {"prompt_tokens": 389, "completion_tokens": 62, "total_tokens": 451}


def test_reasoning_response_counts_cached_input_in_prompt_tokens(service: ServiceModel) -> None:
    native = load("converse_reasoning.json")
    assert parse_converse_response(service, (FIXTURES / "converse_reasoning.json").read_bytes()) == native
    out = bedrock.converse_to_chat(native, model=MODEL, created=CREATED, completion_id=COMPLETION_ID)
    message = out["choices"][0]["message"]
    assert message["content"] == "17 × 24 = 408."
    assert (
        message["reasoning_content"] == "The user wants 17 × 24. 17 × 20 = 340 and 17 × 4 = 68, so the product is 408."
    )
    assert out["usage"] == {
        "prompt_tokens": 18 + 1536 + 512,
        "completion_tokens": 96,
        "total_tokens": 2162,
        "prompt_tokens_details": {"cached_tokens": 1536, "cache_write_tokens": 512},
    }


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("malformed_model_output", "stop"),
    ],
)
def test_stop_reasons(stop_reason: str, finish: str) -> None:
    native = {**load("converse_text.json"), "stopReason": stop_reason}
    out = bedrock.converse_to_chat(native, model=MODEL, created=CREATED, completion_id=COMPLETION_ID)
    assert out["choices"][0]["finish_reason"] == finish
    translator = bedrock.ConverseStreamTranslator(
        model=MODEL, created=CREATED, completion_id=COMPLETION_ID, include_usage=False
    )
    assert translator.feed("messageStop", {"stopReason": stop_reason}) == [chunk({}, finish)]


# -- streams ---------------------------------------------------------------------------------------


def test_text_stream_chunks(service: ServiceModel) -> None:
    events = load_stream("converse_stream_text.jsonl")
    data = frames(events)
    assert parse_converse_stream(service, data) == without_padding(events)
    assert translate(data) == [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hello"}),
        chunk({"content": "! How can I"}),
        chunk({"content": " help you today?"}),
        chunk({}, "stop"),
        chunk(None, usage={"prompt_tokens": 12, "completion_tokens": 12, "total_tokens": 24}),
    ]


def test_tool_use_stream_chunks(service: ServiceModel) -> None:
    events = load_stream("converse_stream_tool_use.jsonl")
    data = frames(events)
    assert parse_converse_stream(service, data) == without_padding(events)
    assert translate(data, include_usage=False) == [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "I'll check the current"}),
        chunk({"content": " weather in Paris for you."}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Pa'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ris"}'}}]}),
        chunk({}, "tool_calls"),
    ]


def test_reasoning_stream_chunks(service: ServiceModel) -> None:
    events = load_stream("converse_stream_reasoning.jsonl")
    data = frames(events)
    assert parse_converse_stream(service, data) == without_padding(events)
    decoder = bedrock_wire.EventStreamDecoder()
    translator = bedrock.ConverseStreamTranslator(
        model=MODEL, created=CREATED, completion_id=COMPLETION_ID, include_usage=True
    )
    out = [c for event in decoder.feed(data) for c in translator.feed(*event)]
    assert out == [
        chunk({"role": "assistant", "content": ""}),
        chunk({"reasoning_content": "The user wants 17 × 24."}),
        chunk({"reasoning_content": " 17 × 20 = 340 and 17 × 4 = 68, so the product is 408."}),
        chunk({"content": "17 × 24"}),
        chunk({"content": " = 408."}),
        chunk({}, "stop"),
        chunk(None, usage=translator.usage),
    ]
    assert translator.usage == {
        "prompt_tokens": 2066,
        "completion_tokens": 96,
        "total_tokens": 2162,
        "prompt_tokens_details": {"cached_tokens": 1536, "cache_write_tokens": 512},
    }


def test_second_tool_call_gets_the_next_index() -> None:
    translator = bedrock.ConverseStreamTranslator(
        model=MODEL, created=CREATED, completion_id=COMPLETION_ID, include_usage=False
    )
    start = {"contentBlockIndex": 3, "start": {"toolUse": {"toolUseId": "tooluse_b", "name": "get_time"}}}
    translator.feed(
        "contentBlockStart", {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "a", "name": "f"}}}
    )
    first = translator.feed("contentBlockStart", start)
    delta = translator.feed("contentBlockDelta", {"contentBlockIndex": 3, "delta": {"toolUse": {"input": "{}"}}})
    assert first[0]["choices"][0]["delta"]["tool_calls"][0]["index"] == 1
    assert delta == [chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]})]


def _cuts(data: bytes, strategy: str) -> list[bytes]:
    if strategy == "one-byte":
        return [data[i : i + 1] for i in range(len(data))]
    if strategy == "mid-prelude":
        # Every frame boundary plus 5 bytes: each piece ends inside the next frame's prelude.
        points, offset = [], 0
        while offset < len(data):
            points.append(offset + 5)
            offset += int.from_bytes(data[offset : offset + 4], "big")
        points = [p for p in points if p < len(data)]
        return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    rng = random.Random(20250304)
    points = sorted(rng.sample(range(1, len(data)), 40))
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@pytest.mark.parametrize("strategy", ["one-byte", "mid-prelude", "random"])
def test_decoder_reassembles_frames_cut_anywhere(strategy: str) -> None:
    events = load_stream("converse_stream_tool_use.jsonl")
    data = frames(events)
    pieces = _cuts(data, strategy)
    assert b"".join(pieces) == data and len(pieces) > len(events)
    decoder = bedrock_wire.EventStreamDecoder()
    decoded = [event for piece in pieces for event in decoder.feed(piece)]
    assert decoded == events
    assert translate(data, pieces=pieces) == translate(data)


@pytest.mark.parametrize(
    ("exception_type", "status"),
    [
        ("throttlingException", 429),
        ("validationException", 400),
        ("modelStreamErrorException", 500),
        ("internalServerException", 500),
        ("serviceUnavailableException", 503),
        ("someFutureException", 500),
    ],
)
def test_exception_frame_raises_with_its_http_status(exception_type: str, status: int) -> None:
    decoder = bedrock_wire.EventStreamDecoder()
    start = event_message("messageStart", {"p": "abcd", "role": "assistant"})
    assert decoder.feed(start) == [("messageStart", {"p": "abcd", "role": "assistant"})]
    error = exception_message(exception_type, {"message": "Too many requests, please wait before trying again."})
    # Fed a byte at a time, nothing happens until the frame is whole.
    assert [decoder.feed(error[i : i + 1]) for i in range(len(error) - 1)] == [[]] * (len(error) - 1)
    with pytest.raises(ProviderStreamError) as caught:
        decoder.feed(error[-1:])
    assert caught.value.status == status
    assert caught.value.kind == exception_type
    assert caught.value.message == "Too many requests, please wait before trying again."


def test_error_frame_raises() -> None:
    frame = encode_message(
        {":message-type": "error", ":error-code": "InternalFailure", ":error-message": "stream broke"}, b""
    )
    with pytest.raises(ProviderStreamError) as caught:
        bedrock_wire.EventStreamDecoder().feed(frame)
    assert (caught.value.status, caught.value.kind, caught.value.message) == (500, "InternalFailure", "stream broke")


def test_corrupt_frame_is_a_stream_error() -> None:
    frame = bytearray(event_message("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "hi"}}))
    frame[-6] ^= 0xFF
    with pytest.raises(ProviderStreamError) as caught:
        bedrock_wire.EventStreamDecoder().feed(bytes(frame))
    assert caught.value.status == 502 and caught.value.kind == "invalid_stream"


# -- URL, signing, credentials, errors ----------------------------------------------------------------


def test_converse_url() -> None:
    assert (
        bedrock_wire.converse_url("eu-west-3", "anthropic.claude-3-5-haiku-20241022-v1:0", stream=False)
        == "https://bedrock-runtime.eu-west-3.amazonaws.com/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
    )
    assert (
        bedrock_wire.converse_url(
            "us-east-1", "arn:aws:bedrock:us-east-1:123456789012:inference-profile/x", stream=True
        )
        == "https://bedrock-runtime.us-east-1.amazonaws.com/model/"
        "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fx/converse-stream"
    )
    assert (
        bedrock_wire.converse_url("", "amazon.nova-lite-v1:0", stream=True, endpoint="http://127.0.0.1:9000/")
        == "http://127.0.0.1:9000/model/amazon.nova-lite-v1%3A0/converse-stream"
    )
    with pytest.raises(ConfigError):
        bedrock_wire.converse_url("us-east-1.evil.test/", "m", stream=False)


CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "FwoGZXIvYXdzEXAMPLETOKEN")


def _boto3_request(model_id: str, credentials: Credentials) -> dict[str, Any]:
    """What boto3's own bedrock-runtime client sends for Converse (captured before it leaves)."""
    client = botocore.session.get_session().create_client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key=credentials.secret_key,
        aws_session_token=credentials.token,
    )
    seen: dict[str, Any] = {}

    def capture(request: Any, **_: Any) -> AWSResponse:
        seen.update(url=request.url, body=request.body, headers=dict(request.headers.items()))
        return AWSResponse(request.url, 200, {}, _RawStream((FIXTURES / "converse_text.json").read_bytes()))

    client.meta.events.register("before-send.bedrock-runtime.Converse", capture)
    client.converse(modelId=model_id, messages=[{"role": "user", "content": [{"text": "Hi"}]}])
    client.close()
    return seen


@pytest.mark.parametrize(
    "credentials",
    [CREDENTIALS, Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")],
    ids=["session", "static"],
)
def test_signature_matches_boto3s_own_request(credentials: Credentials) -> None:
    model_id = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0"
    with mock.patch("botocore.auth.get_current_datetime", return_value=FROZEN):
        sent = _boto3_request(model_id, credentials)
        signed = bedrock_wire.sign(
            "POST",
            sent["url"],
            {"Content-Type": "application/json"},
            sent["body"],
            region="us-east-1",
            credentials=credentials,
        )
    assert bedrock_wire.converse_url("us-east-1", model_id, stream=False) == sent["url"]
    expected = {k: v.decode() if isinstance(v, bytes) else v for k, v in sent["headers"].items()}
    assert signed["Authorization"] == expected["Authorization"]
    assert signed["X-Amz-Date"] == expected["X-Amz-Date"] == "20250304T050607Z"
    assert signed.get("X-Amz-Security-Token") == expected.get("X-Amz-Security-Token") == credentials.token


def _sigv4_by_hand(url: str, headers: dict[str, str], body: bytes, secret: str, amz_date: str, region: str) -> str:
    """AWS SigV4 from its specification, without botocore: non-S3 paths are URI-encoded twice."""
    parts = urlsplit(url)
    canonical_headers = {k.lower(): v.strip() for k, v in headers.items() if k.lower() != "authorization"}
    canonical_headers["host"] = parts.netloc
    names = sorted(canonical_headers)
    canonical = "\n".join(
        [
            "POST",
            quote(parts.path, safe="/~"),
            "",
            "".join(f"{name}:{canonical_headers[name]}\n" for name in names),
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{amz_date[:8]}/{region}/bedrock/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (amz_date[:8], region, "bedrock", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def test_signature_recomputed_independently() -> None:
    body = json.dumps(load("converse_request.json")).encode()
    url = bedrock_wire.converse_url("us-east-1", MODEL, stream=True)
    with mock.patch("botocore.auth.get_current_datetime", return_value=FROZEN):
        signed = bedrock_wire.sign(
            "POST", url, {"content-type": "application/json"}, body, region="us-east-1", credentials=CREDENTIALS
        )
    match = re.fullmatch(
        r"AWS4-HMAC-SHA256 Credential=(\S+), SignedHeaders=(\S+), Signature=([0-9a-f]{64})", signed["Authorization"]
    )
    assert match is not None
    assert match.group(1) == "AKIDEXAMPLE/20250304/us-east-1/bedrock/aws4_request"
    assert match.group(2) == "content-type;host;x-amz-date;x-amz-security-token"
    assert signed["content-type"] == "application/json"
    assert signed["X-Amz-Security-Token"] == CREDENTIALS.token
    assert match.group(3) == _sigv4_by_hand(
        url,
        {k: v for k, v in signed.items() if k != "Authorization"},
        body,
        CREDENTIALS.secret_key,
        "20250304T050607Z",
        "us-east-1",
    )
    # A changed body changes the signature: the payload hash is part of what is signed.
    with mock.patch("botocore.auth.get_current_datetime", return_value=FROZEN):
        other = bedrock_wire.sign(
            "POST", url, {"content-type": "application/json"}, body + b" ", region="us-east-1", credentials=CREDENTIALS
        )
    assert other["Authorization"] != signed["Authorization"]


def test_sign_without_credentials_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        bedrock_wire.sign("POST", "https://x.test/model/m/converse", {}, b"{}", region="us-east-1", credentials=None)


@pytest.fixture
def clean_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("BOTO_CONFIG", str(tmp_path / "boto.cfg"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


def test_role_credentials_come_from_the_default_chain(clean_aws_env: pytest.MonkeyPatch) -> None:
    clean_aws_env.setenv("AWS_ACCESS_KEY_ID", "ASIAROLEEXAMPLE")
    clean_aws_env.setenv("AWS_SECRET_ACCESS_KEY", "role-secret")
    clean_aws_env.setenv("AWS_SESSION_TOKEN", "role-token")
    frozen = bedrock_wire.role_credentials().get_frozen_credentials()
    assert (frozen.access_key, frozen.secret_key, frozen.token) == ("ASIAROLEEXAMPLE", "role-secret", "role-token")


def test_role_credentials_missing_is_a_config_error(clean_aws_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError):
        bedrock_wire.role_credentials()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"message": "Too many requests, please wait before trying again."},
            "Too many requests, please wait before trying again.",
        ),
        ({"Message": "User is not authorized"}, "User is not authorized"),
        ({"error": {"message": "odd proxy"}}, "odd proxy"),
        ({"unexpected": 1}, "{'unexpected': 1}"),
    ],
)
def test_error_message(body: dict[str, Any], message: str) -> None:
    assert bedrock_wire.error_message(body) == message


# -- the mock provider's Bedrock -----------------------------------------------------------------------


async def _body(response: Response) -> bytes:
    if isinstance(response, EventsResponse):
        return b"".join(response.events)
    if hasattr(response, "body_iterator"):
        return b"".join([piece async for piece in response.body_iterator])  # type: ignore[misc]
    return bytes(response.body)


def test_mock_routes() -> None:
    assert mock_bedrock.route(f"/model/{MODEL}/converse") == (MODEL, False)
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123"
    assert mock_bedrock.route(f"/model/{arn}/converse-stream") == (arn, True)
    assert mock_bedrock.route("/model/x%3A0/converse") == ("x:0", False)
    assert mock_bedrock.route("/model/x/invoke") is None
    assert mock_bedrock.route("/v1/chat/completions") is None


def test_mock_converse_text_is_the_fixture(service: ServiceModel) -> None:
    response = asyncio.run(mock_bedrock.converse(MODEL, {"messages": []}, {}))
    raw = asyncio.run(_body(response))
    assert response.status_code == 200 and response.headers["x-amzn-requestid"]
    assert parse_converse_response(service, raw) == load("converse_text.json")


def test_mock_converse_calls_the_offered_tool_then_answers_its_result(service: ServiceModel) -> None:
    request = bedrock.chat_to_converse(chat([{"role": "user", "content": "Paris?"}], tools=[WEATHER_TOOL]))
    response = asyncio.run(mock_bedrock.converse(MODEL, request, {}))
    native = parse_converse_response(service, asyncio.run(_body(response)))
    out = bedrock.converse_to_chat(native, model=MODEL, created=CREATED, completion_id=COMPLETION_ID)
    (call,) = out["choices"][0]["message"]["tool_calls"]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert re.fullmatch(r"tooluse_[A-Za-z0-9_-]{22}", call["id"])
    assert out["choices"][0]["finish_reason"] == "tool_calls"

    history = [
        {"role": "user", "content": "Paris?"},
        out["choices"][0]["message"],
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny"},
    ]
    follow_up = bedrock.chat_to_converse(chat(history, tools=[WEATHER_TOOL]))
    again = asyncio.run(mock_bedrock.converse(MODEL, follow_up, {}))
    assert "toolUse" not in asyncio.run(_body(again)).decode()


def test_mock_stream_tool_use_through_boto3_and_the_gateway(service: ServiceModel) -> None:
    search = {
        "type": "function",
        "function": {
            "name": "search_docs",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
                "required": ["query", "limit"],
            },
        },
    }
    request = bedrock.chat_to_converse(
        chat(
            [{"role": "user", "content": "find"}],
            tools=[WEATHER_TOOL, search],
            tool_choice={"type": "function", "function": {"name": "search_docs"}},
        )
    )
    response = asyncio.run(mock_bedrock.converse_stream(MODEL, request, {}))
    assert response.headers["content-type"] == "application/vnd.amazon.eventstream"
    data = asyncio.run(_body(response))
    events = parse_converse_stream(service, data)
    assert [next(iter(e)) for e in events] == [
        next(iter(e)) for e in without_padding(load_stream("converse_stream_tool_use.jsonl"))
    ]
    starts = [e["contentBlockStart"]["start"]["toolUse"] for e in events if "contentBlockStart" in e]
    assert [s["name"] for s in starts] == ["search_docs"]
    chunks = translate(data)
    arguments = "".join(
        call["function"].get("arguments", "")
        for c in chunks
        for choice in c["choices"]
        for call in choice["delta"].get("tool_calls", [])
    )
    assert json.loads(arguments) == {"query": "example", "limit": 1}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"] == {"prompt_tokens": 389, "completion_tokens": 62, "total_tokens": 451}


def test_mock_stream_text(service: ServiceModel) -> None:
    response = asyncio.run(mock_bedrock.converse_stream(MODEL, {"messages": []}, {}))
    data = asyncio.run(_body(response))
    assert data == frames(load_stream("converse_stream_text.jsonl"))


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(429, "ThrottlingException"), (400, "ValidationException"), (503, "ServiceUnavailableException")],
)
@pytest.mark.parametrize("stream", [False, True])
def test_mock_error_status(status: int, error_type: str, stream: bool) -> None:
    handler = mock_bedrock.converse_stream if stream else mock_bedrock.converse
    response = asyncio.run(handler(MODEL, {"messages": []}, {"x-mock-status": str(status)}))
    assert response.status_code == status
    assert response.headers["x-amzn-errortype"].startswith(error_type + ":")
    body = json.loads(asyncio.run(_body(response)))
    assert list(body) == ["message"] and bedrock_wire.error_message(body) == body["message"]


def test_mock_stream_error_after_the_stream_began(service: ServiceModel) -> None:
    response = asyncio.run(mock_bedrock.converse_stream(MODEL, {"messages": []}, {"x-mock-stream-error": "throttling"}))
    assert response.status_code == 200
    data = asyncio.run(_body(response))
    with pytest.raises(EventStreamError) as boto_error:
        parse_converse_stream(service, data)
    assert boto_error.value.response["Error"]["Code"] == "throttlingException"
    decoder = bedrock_wire.EventStreamDecoder()
    first_frame_length = int.from_bytes(data[:4], "big")
    assert [t for t, _ in decoder.feed(data[:first_frame_length])] == ["messageStart"]
    with pytest.raises(ProviderStreamError) as caught:
        decoder.feed(data[first_frame_length:])
    assert caught.value.status == 429


def test_mock_stream_fail_after_aborts_mid_stream() -> None:
    response = asyncio.run(mock_bedrock.converse_stream(MODEL, {"messages": []}, {"x-mock-fail-after": "2"}))

    async def drain() -> tuple[list[bytes], bool]:
        got: list[bytes] = []
        try:
            async for piece in response.body_iterator:  # type: ignore[attr-defined]
                got.append(piece)
        except MockStreamAbort:
            return got, True
        return got, False

    got, aborted = asyncio.run(drain())
    assert aborted
    assert [t for t, _ in bedrock_wire.EventStreamDecoder().feed(b"".join(got))] == [
        "messageStart",
        "contentBlockDelta",
    ]


def test_mock_tool_fixture_is_not_mutated_between_requests() -> None:
    before = copy.deepcopy(mock_bedrock.load_bedrock_fixtures().tool)
    request = bedrock.chat_to_converse(chat([{"role": "user", "content": "Paris?"}], tools=[WEATHER_TOOL]))
    asyncio.run(mock_bedrock.converse(MODEL, request, {}))
    asyncio.run(mock_bedrock.converse_stream(MODEL, request, {}))
    assert mock_bedrock.load_bedrock_fixtures().tool == before
