"""The OpenAI chat reader the translators share: what it reads into neutral parts, and each 400 it raises.

Every 400 about a malformed OpenAI body is written once, in ``chat_request.py``; here each one is
raised through the real reader (no mocks), with its exact message and ``param``. What a provider
cannot take (image kinds, document types, ``n``) is the translators' and is tested beside them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from heliport.errors import InvalidBodyError
from heliport.gateway.chat_request import (
    ANTHROPIC,
    BEDROCK,
    ChatRequest,
    DataUrl,
    Dialect,
    FilePart,
    ImagePart,
    NamedTool,
    TextPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
    Turn,
    data_url,
    safe_tool_id,
)

HELLO: list[Any] = [{"role": "user", "content": "Hello"}]
DEEP_ARGUMENTS = '{"a":' * 2000 + "1" + "}" * 2000
CALL: Any = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}

Read = Callable[[ChatRequest], object]


def read(chat: dict[str, Any], dialect: Dialect = ANTHROPIC) -> ChatRequest:
    return ChatRequest(chat, dialect)


def refused(chat: dict[str, Any], field: Read, dialect: Dialect = ANTHROPIC) -> InvalidBodyError:
    with pytest.raises(InvalidBodyError) as info:
        field(ChatRequest(chat, dialect))
    assert info.value.status == 400
    return info.value


def turns(request: ChatRequest) -> object:
    return request.turns


def with_message(message: Any) -> dict[str, Any]:
    return {"messages": [*HELLO, message]}


def assistant_call(call: Any) -> dict[str, Any]:
    return with_message({"role": "assistant", "tool_calls": [CALL, call]})


def call_with(arguments: Any) -> dict[str, Any]:
    return assistant_call({**CALL, "function": {"name": "f", "arguments": arguments}})


# -- the 400s, each once ------------------------------------------------------------------------------

#: (request, the field read, param, message) for every 400 both translators give alike.
REFUSALS: list[Any] = [
    pytest.param({"messages": None}, turns, "messages", "messages must be a non-empty array.", id="messages-missing"),
    pytest.param({"messages": []}, turns, "messages", "messages must be a non-empty array.", id="messages-empty"),
    pytest.param({"messages": "Hello"}, turns, "messages", "messages must be a non-empty array.", id="messages-str"),
    pytest.param(with_message("hi"), turns, "messages[1]", "Each message must be an object.", id="message-not-object"),
    pytest.param(
        with_message({"role": "system", "content": 5}),
        turns,
        "messages[1].content",
        "content must be a string or an array of content parts.",
        id="system-content-shape",
    ),
    pytest.param(
        {"messages": [{"role": "user", "content": {"text": "hi"}}]},
        turns,
        "messages[0].content",
        "content must be a string or an array of content parts.",
        id="user-content-shape",
    ),
    pytest.param(
        with_message({"role": "assistant", "content": 5}),
        turns,
        "messages[1].content",
        "content must be a string or an array of content parts.",
        id="assistant-content-shape",
    ),
    pytest.param(
        with_message({"role": "tool", "tool_call_id": "call_1", "content": 5}),
        turns,
        "messages[1].content",
        "content must be a string or an array of content parts.",
        id="tool-content-shape",
    ),
    pytest.param(
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"detail": "low"}}]}]},
        turns,
        "messages[0].content[0].image_url.url",
        "image_url.url is required.",
        id="image-without-url",
    ),
    pytest.param(
        {"messages": [{"role": "user", "content": [{"type": "file", "file": "report.pdf"}]}]},
        turns,
        "messages[0].content[0].file",
        "file must be an object.",
        id="file-not-object",
    ),
    pytest.param(
        with_message({"role": "assistant", "tool_calls": {"id": "call_1"}}),
        turns,
        "messages[1].tool_calls",
        "tool_calls must be an array.",
        id="tool-calls-not-array",
    ),
    pytest.param(
        assistant_call({"id": "call_2", "type": "function"}),
        turns,
        "messages[1].tool_calls[1].function",
        "A tool call needs a function object.",
        id="call-without-function",
    ),
    pytest.param(
        assistant_call({**CALL, "id": ""}),
        turns,
        "messages[1].tool_calls[1].id",
        "A tool call needs an id.",
        id="call-without-id",
    ),
    pytest.param(
        assistant_call({**CALL, "function": {"arguments": "{}"}}),
        turns,
        "messages[1].tool_calls[1].function.name",
        "A tool call needs a function name.",
        id="call-without-name",
    ),
    pytest.param(
        call_with({"city": "Oslo"}),
        turns,
        "messages[1].tool_calls[1].function.arguments",
        "function.arguments must be a JSON string.",
        id="arguments-not-string",
    ),
    pytest.param(
        call_with("[1, 2]"),
        turns,
        "messages[1].tool_calls[1].function.arguments",
        "function.arguments must encode a JSON object.",
        id="arguments-not-object",
    ),
    pytest.param(
        call_with(DEEP_ARGUMENTS),
        turns,
        "messages[1].tool_calls[1].function.arguments",
        "function.arguments is JSON nested too deep to read.",
        id="arguments-too-deep",
    ),
    pytest.param(
        with_message({"role": "tool", "content": "sunny"}),
        turns,
        "messages[1].tool_call_id",
        "A tool message needs its tool_call_id.",
        id="tool-without-call-id",
    ),
    pytest.param(
        {"messages": HELLO, "tools": WEATHER_TOOL},
        lambda r: r.tools,
        "tools",
        "tools must be an array.",
        id="tools-not-array",
    ),
    pytest.param(
        {"messages": HELLO, "tools": [WEATHER_TOOL, {"type": "function"}]},
        lambda r: r.tools,
        "tools[1].function",
        "A function tool needs a function object.",
        id="tool-without-function",
    ),
    pytest.param(
        {"messages": HELLO, "tools": [{"type": "function", "function": {"description": "no name"}}]},
        lambda r: r.tools,
        "tools[0].function.name",
        "A function tool needs a name.",
        id="tool-without-name",
    ),
    pytest.param(
        {"messages": HELLO, "tools": [{"type": "function", "function": {"name": "f", "parameters": "object"}}]},
        lambda r: r.tools,
        "tools[0].function.parameters",
        "parameters must be a JSON schema object.",
        id="tool-parameters-not-object",
    ),
    pytest.param(
        {"messages": HELLO, "tool_choice": "any"},
        lambda r: r.tool_choice,
        "tool_choice",
        'tool_choice must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}}.',
        id="tool-choice-unknown",
    ),
    pytest.param(
        {"messages": HELLO, "tool_choice": {"type": "function", "function": {}}},
        lambda r: r.tool_choice,
        "tool_choice.function.name",
        "tool_choice.function.name is required.",
        id="tool-choice-without-name",
    ),
    pytest.param(
        {"messages": HELLO, "max_completion_tokens": 0},
        lambda r: r.max_tokens,
        "max_completion_tokens",
        "max_completion_tokens must be a positive integer.",
        id="max-completion-tokens-zero",
    ),
    pytest.param(
        {"messages": HELLO, "max_tokens": True},
        lambda r: r.max_tokens,
        "max_tokens",
        "max_tokens must be a positive integer.",
        id="max-tokens-bool",
    ),
    pytest.param(
        {"messages": HELLO, "temperature": "hot"},
        lambda r: r.temperature,
        "temperature",
        "temperature must be a number.",
        id="temperature-not-number",
    ),
    pytest.param(
        {"messages": HELLO, "top_p": 10**400},
        lambda r: r.top_p,
        "top_p",
        "top_p must be a finite number.",
        id="top-p-beyond-any-float",
    ),
    pytest.param(
        {"messages": HELLO, "top_p": float("nan")},
        lambda r: r.top_p,
        "top_p",
        "top_p must be a finite number.",
        id="top-p-nan",
    ),
    pytest.param(
        {"messages": HELLO, "stop": ["a", 1]},
        lambda r: r.stop,
        "stop",
        "stop must be a string or a list of strings.",
        id="stop-not-strings",
    ),
    pytest.param(
        {"messages": HELLO, "reasoning_effort": "extreme"},
        lambda r: r.reasoning_effort,
        "reasoning_effort",
        "reasoning_effort must be one of none, minimal, low, medium, high.",
        id="reasoning-effort-unknown",
    ),
]


@pytest.mark.parametrize("dialect", [ANTHROPIC, BEDROCK], ids=["anthropic", "bedrock"])
@pytest.mark.parametrize(("chat", "field", "param", "message"), REFUSALS)
def test_malformed_input_is_a_400_naming_the_field(
    chat: dict[str, Any], field: Read, param: str, message: str, dialect: Dialect
) -> None:
    error = refused(chat, field, dialect)
    assert (error.param, error.message) == (param, message)


def test_invalid_json_arguments_quote_the_decoder() -> None:
    error = refused(call_with('{"city": "Oslo"'), turns)
    assert error.param == "messages[1].tool_calls[1].function.arguments"
    assert error.message.startswith("function.arguments is not valid JSON: ")


# -- the 400s that name the provider, or where the two translators have always differed ----------------


@pytest.mark.parametrize(("dialect", "provider"), [(ANTHROPIC, "Anthropic"), (BEDROCK, "Bedrock")])
def test_refusals_name_the_provider(dialect: Dialect, provider: str) -> None:
    error = refused(with_message({"role": "function", "content": "x"}), turns, dialect)
    assert (error.param, error.message) == (
        "messages[1].role",
        f"Unsupported message role 'function' for {provider} (use system, developer, user, assistant or tool).",
    )
    error = refused({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}, turns, dialect)
    assert (error.param, error.message) == (
        "messages[0].content[0].type",
        f"Unsupported content part type 'input_audio' for {provider} (text, image_url and file are supported).",
    )
    error = refused(
        {"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "f"}}]}]}, turns, dialect
    )
    assert (error.param, error.message) == (
        "messages[0].content[0].file.file_data",
        f"{provider} needs the document inline as file_data (a base64 data: URL); file_id is not supported.",
    )


@pytest.mark.parametrize(
    ("dialect", "message"),
    [(ANTHROPIC, "Anthropic supports only function tools here."), (BEDROCK, "Bedrock supports only function tools.")],
)
def test_a_tool_that_is_not_a_function_is_a_400(dialect: Dialect, message: str) -> None:
    error = refused({"messages": HELLO, "tools": [WEATHER_TOOL, {"type": "web_search"}]}, lambda r: r.tools, dialect)
    assert (error.param, error.message) == ("tools[1].type", message)


@pytest.mark.parametrize(("dialect", "suffix"), [(ANTHROPIC, ".type"), (BEDROCK, "")])
def test_a_refused_part_of_text_only_content_is_named_as_the_dialect_does(dialect: Dialect, suffix: str) -> None:
    image = {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}
    for role in ("system", "developer", "tool"):
        error = refused(with_message({"role": role, "tool_call_id": "c", "content": [image]}), turns, dialect)
        assert (error.param, error.message) == (
            f"messages[1].content[0]{suffix}",
            "Only text parts are supported here.",
        )
    error = refused(with_message({"role": "assistant", "content": [image]}), turns, dialect)
    assert (error.param, error.message) == (
        f"messages[1].content[0]{suffix}",
        "Assistant content parts must be text or refusal.",
    )


def test_anthropic_checks_a_tool_calls_own_shape_bedrock_reads_its_function() -> None:
    error = refused(assistant_call("call_2"), turns, ANTHROPIC)
    assert (error.param, error.message) == ("messages[1].tool_calls[1]", "A tool call must be an object.")
    error = refused(assistant_call({**CALL, "type": "custom"}), turns, ANTHROPIC)
    assert (error.param, error.message) == ("messages[1].tool_calls[1].type", "Only function tool calls are supported.")
    error = refused(assistant_call("call_2"), turns, BEDROCK)
    assert (error.param, error.message) == (
        "messages[1].tool_calls[1].function",
        "A tool call needs a function object.",
    )
    (_, assistant) = read(assistant_call({**CALL, "type": "custom"}), BEDROCK).turns
    assert [part.name for part in assistant.parts if isinstance(part, ToolCallPart)] == ["get_weather", "get_weather"]


# -- what is read -------------------------------------------------------------------------------------


def test_messages_become_system_entries_and_merged_turns() -> None:
    request = read(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {
                    "role": "developer",
                    "content": [{"type": "text", "text": "Use "}, {"type": "text", "text": "metric."}],
                },
                {"role": "user", "content": [{"type": "text", "text": ""}, {"type": "text", "text": "Weather?"}]},
                {"role": "system", "content": ""},
                {"role": "assistant", "content": "", "tool_calls": [CALL]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
                {"role": "user", "content": None},
                {"role": "user", "content": "Thanks."},
            ]
        }
    )
    assert request.system == [[TextPart("Be brief.")], [TextPart("Use "), TextPart("metric.")]]
    assert request.turns == [
        Turn("user", [TextPart("Hi"), TextPart("Weather?")]),
        Turn("assistant", [ToolCallPart("call_1", "get_weather", {"city": "Oslo"})]),
        Turn("user", [ToolResultPart("call_1", "sunny"), TextPart("Thanks.")]),
    ]
    assert request.tool_names == ["get_weather"]
    assert request.has_tool_history


def test_only_system_messages_leave_no_turns() -> None:
    request = read({"messages": [{"role": "system", "content": "Be brief."}]})
    assert request.turns == []
    assert not request.has_tool_history and request.tool_names == []


def test_user_parts_keep_what_the_translators_need() -> None:
    content = [
        {"type": "text", "text": "Look", "cache_control": {"type": "ephemeral"}},
        {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "low"}},
        {"type": "image_url", "image_url": "data:image/png;base64,AAAA"},
        {"type": "file", "file": {"filename": "report.pdf", "file_data": "data:application/pdf;base64,JVBE"}},
        {"type": "file", "file": {"filename": 7, "file_data": "not a data url"}},
    ]
    (turn,) = read({"messages": [{"role": "user", "content": content}]}).turns
    assert turn.parts == [
        TextPart("Look", {"type": "ephemeral"}),
        ImagePart("https://x.test/a.png", "messages[0].content[1].image_url.url"),
        ImagePart("data:image/png;base64,AAAA", "messages[0].content[2].image_url.url"),
        FilePart("data:application/pdf;base64,JVBE", "report.pdf", 3, "messages[0].content[3].file.file_data"),
        FilePart("not a data url", None, 4, "messages[0].content[4].file.file_data"),
    ]


def test_message_cache_control_moves_to_its_last_part() -> None:
    mark = {"type": "ephemeral", "ttl": "1h"}
    part_mark = {"type": "ephemeral"}
    request = read(
        {
            "messages": [
                {"role": "system", "content": "Shared prompt.", "cache_control": mark},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "a", "cache_control": part_mark},
                        {"type": "text", "text": "b"},
                    ],
                    "cache_control": mark,
                },
                {"role": "assistant", "content": "ok", "tool_calls": [CALL], "cache_control": mark},
                {
                    "role": "tool",
                    "tool_call_id": "call_1",
                    "content": [{"type": "text", "text": "sunny"}],
                    "cache_control": mark,
                },
            ]
        }
    )
    assert request.system == [[TextPart("Shared prompt.", mark)]]
    user, assistant, result = request.turns
    assert user.parts == [TextPart("a", part_mark), TextPart("b", mark)]
    assert assistant.parts == [TextPart("ok"), ToolCallPart("call_1", "get_weather", {"city": "Oslo"}, mark)]
    assert result.parts == [ToolResultPart("call_1", [TextPart("sunny")], mark)]


def test_assistant_refusals_are_text_and_arguments_default_to_an_empty_object() -> None:
    calls = [{**CALL, "function": {"name": "now", "arguments": arguments}} for arguments in ("", None)]
    message = {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}], "tool_calls": calls}
    (_, assistant) = read(with_message(message)).turns
    assert assistant.parts == [TextPart("no"), ToolCallPart("call_1", "now", {}), ToolCallPart("call_1", "now", {})]


@pytest.mark.parametrize(
    ("tail", "pending"),
    [
        ([], False),
        ([{"role": "assistant", "tool_calls": [CALL]}], True),
        (
            [{"role": "assistant", "tool_calls": [CALL]}, {"role": "tool", "tool_call_id": "call_1", "content": "ok"}],
            True,
        ),
        ([{"role": "assistant", "tool_calls": []}, {"role": "tool", "tool_call_id": "call_1", "content": "ok"}], False),
        ([{"role": "assistant", "tool_calls": [CALL]}, {"role": "system", "content": "Note."}], False),
        ([{"role": "assistant", "tool_calls": [CALL]}, {"role": "assistant", "content": "Done."}], False),
    ],
)
def test_a_tool_loop_is_pending_while_tool_results_answer_the_last_calls(tail: list[Any], pending: bool) -> None:
    assert read({"messages": [*HELLO, *tail]}).tool_loop_pending is pending


def test_tools_stops_numbers_and_limits() -> None:
    request = read(
        {
            "messages": HELLO,
            "tools": [
                WEATHER_TOOL,
                {"type": "function", "function": {"name": "now", "description": ""}, "cache_control": 1},
            ],
            "stop": ["a", "", "b"],
            "temperature": 2,
            "top_p": 0.5,
            "max_tokens": 300,
            "max_completion_tokens": 200,
            "stream": True,
        }
    )
    assert request.tools == [
        Tool("get_weather", "Current weather for a city.", WEATHER_TOOL["function"]["parameters"]),
        Tool("now", None, {"type": "object", "properties": {}}, 1),
    ]
    assert (request.stop, request.temperature, request.top_p) == (["a", "b"], 2.0, 0.5)
    assert (request.max_tokens, request.max_tokens_field, request.stream) == (200, "max_completion_tokens", True)
    bare = read({"messages": HELLO, "stop": "", "max_tokens": 300, "stream": "yes"})
    assert (bare.stop, bare.temperature, bare.top_p, bare.tools) == ([], None, None, [])
    assert (bare.max_tokens, bare.max_tokens_field, bare.stream) == (300, "max_tokens", False)
    assert read({"messages": HELLO, "stop": "END"}).stop == ["END"]
    assert (read({"messages": HELLO}).max_tokens, read({"messages": HELLO}).max_tokens_field) == (
        None,
        "max_completion_tokens",
    )


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, None),
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ({"type": "function", "function": {"name": "get_weather"}}, NamedTool("get_weather")),
    ],
)
def test_tool_choice(choice: Any, expected: object) -> None:
    assert read({"messages": HELLO, "tool_choice": choice}).tool_choice == expected


@pytest.mark.parametrize(
    ("effort", "expected"), [(None, None), ("none", None), ("minimal", "minimal"), ("high", "high")]
)
def test_reasoning_effort(effort: Any, expected: object) -> None:
    assert read({"messages": HELLO, "reasoning_effort": effort}).reasoning_effort == expected


def test_fields_are_read_when_first_asked_for_then_kept() -> None:
    chat: dict[str, Any] = {"messages": HELLO, "tool_choice": "sometimes", "reasoning_effort": "extreme", "stop": 5}
    request = read(chat)
    # A field nobody asks for is never refused (Bedrock ignores tool_choice without tools).
    assert request.turns == [Turn("user", [TextPart("Hello")])]
    with pytest.raises(InvalidBodyError) as info:
        _ = request.tool_choice
    assert info.value.param == "tool_choice"
    first = request.turns
    chat["messages"] = [{"role": "user", "content": "changed"}]
    assert request.turns is first


def test_the_request_is_not_modified() -> None:
    mark = {"type": "ephemeral"}
    chat: dict[str, Any] = {
        "messages": [
            {
                "role": "system",
                "content": [{"type": "text", "text": "Be brief.", "cache_control": mark}],
                "cache_control": mark,
            },
            {"role": "user", "content": "Hi", "cache_control": mark},
            {"role": "assistant", "tool_calls": [CALL], "cache_control": mark},
            {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
        ],
        "tools": [WEATHER_TOOL],
    }
    before = copy.deepcopy(chat)
    request = read(chat)
    assert request.system and request.turns and request.tools
    assert chat == before


def test_data_urls_and_tool_ids() -> None:
    assert data_url("data:image/PNG;charset=binary;base64,AAAA") == DataUrl("image/PNG", "AAAA")
    assert data_url("data:text/plain;base64,") == DataUrl("text/plain", "")
    assert data_url("data:image/png,AAAA") is None
    assert data_url("https://x.test/a.png") is None
    assert safe_tool_id("functions.get_time:0") == "functions_get_time_0"
    assert safe_tool_id("call_9aZ-1") == "call_9aZ-1"
