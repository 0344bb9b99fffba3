"""Logged exchanges as OpenAI fine-tuning messages: the formats the API tests do not store, and the
reasons an exchange has no example. (Chat, chat streams and Anthropic are in tests/api/test_datasets.py,
through the export.)"""

from __future__ import annotations

import json
from typing import Any

import pytest

from heliport.datasets.messages import NotConvertibleError, answer_text, finetune_messages, last_user_text


def sse(*events: dict[str, Any]) -> str:
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"


def test_legacy_completions_and_their_streams() -> None:
    request = {"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi"}
    assert finetune_messages(request, {"choices": [{"text": "hi"}]}) == [
        {"role": "user", "content": "Say hi"},
        {"role": "assistant", "content": "hi"},
    ]
    streamed = sse({"choices": [{"text": "h"}]}, {"choices": [{"text": "i"}]})
    assert finetune_messages(request, streamed)[-1] == {"role": "assistant", "content": "hi"}


def test_the_responses_api() -> None:
    request = {
        "model": "gpt-4o",
        "instructions": "Be kind.",
        "input": [{"role": "developer", "content": "Short."}, {"role": "user", "content": [
            {"type": "input_text", "text": "Hello"}]}],
    }  # fmt: skip
    response = {
        "output": [{"type": "reasoning"}, {"type": "message", "content": [{"type": "output_text", "text": "Hi!"}]}]
    }
    assert finetune_messages(request, response) == [
        {"role": "system", "content": "Be kind."},
        {"role": "system", "content": "Short."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi!"},
    ]
    streamed = sse(
        {"type": "response.output_text.delta", "delta": "H"}, {"type": "response.output_text.delta", "delta": "i"}
    )
    assert finetune_messages({"input": "Hello"}, streamed)[-1] == {"role": "assistant", "content": "Hi"}


def test_anthropic_tool_results_become_tool_messages() -> None:
    request = {
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "t1", "name": "weather", "input": {"c": "Oslo"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                          "content": [{"type": "text", "text": "5C"}]}]},
        ],
    }  # fmt: skip
    response = {"type": "message", "content": [{"type": "text", "text": "It is 5C."}]}
    messages = finetune_messages(request, response)
    assert messages == [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "weather", "arguments": '{"c": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "t1", "content": "5C"},
        {"role": "assistant", "content": "It is 5C."},
    ]  # fmt: skip
    assert last_user_text(messages) == "Weather in Oslo?" and answer_text(messages) == "It is 5C."


def test_an_anthropic_stream_with_a_tool_call() -> None:
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "t", "name": "f",
                                                                      "input": {}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"a"'}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": ": 1}"}},
    ]  # fmt: skip
    stream = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
    answer = finetune_messages({"messages": [{"role": "user", "content": "go"}]}, stream)[-1]
    call = {"id": "t", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    assert answer == {"role": "assistant", "content": None, "tool_calls": [call]}
    assert answer_text([answer]) == json.dumps(answer["tool_calls"])


@pytest.mark.parametrize(
    ("request_body", "response_body", "reason"),
    [
        (None, None, "the request body was not logged or is not JSON"),
        ("plain text", "x", "the request body was not logged or is not JSON"),
        ({"messages": [{"role": "user", "content": "hi"}]}, None, "the response body was not logged"),
        ({"model": "x"}, {"ok": True}, "the request is not a chat: it has no messages, prompt or input"),
        ({"messages": []}, {"choices": [{"message": {"content": "a"}}]}, "the request has no messages"),
        ({"messages": [{"role": "user", "content": "hi"}]}, {"error": {"message": "rate limited"}},
         "the response has no choices (an error, or not a chat completion)"),
        ({"messages": [{"role": "user", "content": "hi"}]}, {"choices": [{"message": {"content": ""}}]},
         "the assistant's answer is empty or not in a known format"),
        ({"messages": [{"role": "user", "content": "hi"}]}, sse({"choices": [{"delta": {}}]}),
         "the assistant's answer is empty or not in a known format"),
        ({"prompt": "x"}, {"choices": []}, "the response has no completion text"),
    ],
)  # fmt: skip
def test_exchanges_without_an_example_say_why(request_body: Any, response_body: Any, reason: str) -> None:
    with pytest.raises(NotConvertibleError) as raised:
        finetune_messages(request_body, response_body)
    assert str(raised.value) == reason
