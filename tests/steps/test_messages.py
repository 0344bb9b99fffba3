"""The user messages the safety checks screen, read from each body format heliport carries."""

from __future__ import annotations

import pytest

from heliport.steps.messages import UserMessage, decode_object, user_messages

PNG = "data:image/png;base64,iVBORw0KGgo="


def test_decode_object_takes_json_objects_only() -> None:
    assert decode_object(b'{"model": "m"}') == {"model": "m"}
    assert decode_object(b"[1, 2]") is None
    assert decode_object(b"not json") is None
    assert decode_object(b"") is None
    assert decode_object(b"[" * 100_000) is None  # deeper than the decoder goes: no messages, no 500


def test_chat_completions_user_turns_in_order_others_left_out() -> None:
    body: dict[str, object] = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "an answer"},
            {"role": "tool", "tool_call_id": "c1", "content": "tool output"},
            {"role": "user", "content": "second question"},
        ],
    }
    assert user_messages(body) == [
        UserMessage("messages[1]", "first question"),
        UserMessage("messages[4]", "second question"),
    ]


def test_chat_completions_parts_text_joined_and_images_kept() -> None:
    body: dict[str, object] = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
                    {"type": "text", "text": "these pictures?"},
                    {"type": "image_url", "image_url": {"url": PNG}},
                    {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
                ],
            }
        ]
    }
    assert user_messages(body) == [
        UserMessage("messages[0]", "What is in\nthese pictures?", ("https://example.com/cat.png", PNG))
    ]


def test_an_image_alone_is_a_message_and_empty_turns_are_not() -> None:
    body: dict[str, object] = {
        "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG}}]},
            {"role": "user", "content": ""},
            {"role": "user", "content": None},
            {"role": "user", "content": [{"type": "image_url", "image_url": {}}]},
        ]
    }
    assert user_messages(body) == [UserMessage("messages[0]", "", (PNG,))]


def test_responses_input_string() -> None:
    assert user_messages({"model": "gpt-4.1-mini", "input": "Tell me a joke"}) == [
        UserMessage("input", "Tell me a joke")
    ]


def test_responses_input_items() -> None:
    body: dict[str, object] = {
        "instructions": "Be brief.",
        "input": [
            {"role": "developer", "content": "not the user"},
            {"type": "message", "role": "user", "content": "plain string turn"},
            {"type": "function_call_output", "call_id": "c1", "output": "42"},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "and this one"},
                    {"type": "input_image", "image_url": "https://example.com/dog.jpg"},
                    {"type": "input_image", "file_id": "file-123"},  # nothing to screen without a download
                ],
            },
        ],
    }
    assert user_messages(body) == [
        UserMessage("input[1]", "plain string turn"),
        UserMessage("input[3]", "and this one", ("https://example.com/dog.jpg",)),
    ]


def test_anthropic_messages_with_base64_and_url_images() -> None:
    body: dict[str, object] = {
        "model": "claude-sonnet-4-6",
        "system": "You are terse.",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/a.webp"}},
                    {"type": "text", "text": "Compare them."},
                ],
            },
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
            # A tool result travels as a user turn, but it is not the user speaking: nothing to screen.
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "result"}]},
        ],
    }
    assert user_messages(body) == [UserMessage("messages[0]", "Compare them.", (PNG, "https://example.com/a.webp"))]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("Once upon a time", [UserMessage("prompt", "Once upon a time")]),
        (["first prompt", "second prompt"], [UserMessage("prompt", "first prompt\nsecond prompt")]),
        ([[1, 2, 3]], []),  # token ids: no text to screen
    ],
)
def test_legacy_completions_prompt(prompt: object, expected: list[UserMessage]) -> None:
    assert user_messages({"model": "gpt-3.5-turbo-instruct", "prompt": prompt}) == expected


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"messages": "not a list"},
        {"messages": [None, 3, "user", {"role": "user"}]},
        {"messages": [{"role": "user", "content": [None, {"type": "text", "text": 5}, {"type": "image"}]}]},
        {"input": 7},
        {"input": [{"role": "user", "content": {"not": "a list"}}]},
    ],
)
def test_bodies_without_readable_user_text_give_nothing(body: dict[str, object]) -> None:
    assert user_messages(body) == []
