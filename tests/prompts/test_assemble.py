"""Prompt assembly as pure functions: a saved version, a request and its inputs -> the provider's body."""

from __future__ import annotations

from typing import Any

import pytest

from heliport.errors import InvalidBodyError
from heliport.prompts.assemble import (
    PartialRef,
    UnknownPromptError,
    assemble_chat,
    assemble_responses,
    partial_refs,
    partial_text,
    read_call,
    referenced_versions,
    strip_prompt_fields,
)

SUPPORT: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "temperature": 0.6,
    "max_tokens": 1000,
    "messages": [
        {"role": "system", "content": "You are a helpful customer support agent for {{hc:company:string}}."},
        {"role": "user", "content": "Hello, I need help with my account."},
    ],
}


def chat(saved: dict[str, Any], request: dict[str, Any], partials: dict[PartialRef, str] | None = None) -> Any:
    inputs = request.get("inputs") or {}
    return assemble_chat(saved, request, inputs, partials or {}, default_environment="production")


def param_of(error: pytest.ExceptionInfo[InvalidBodyError]) -> str | None:
    return error.value.param


# -- the docs' own example ---------------------------------------------------------------------------


def test_the_assembly_page_example_compiles_to_its_final_request() -> None:
    request = {
        "prompt_id": "abc123",
        "temperature": 0.4,
        "inputs": {"company": "Acme Corp"},
        "messages": [{"role": "user", "content": "Actually, I want to cancel my subscription."}],
    }
    assert chat(SUPPORT, request) == {
        "model": "gpt-4o-mini",
        "temperature": 0.4,
        "max_tokens": 1000,
        "messages": [
            {"role": "system", "content": "You are a helpful customer support agent for Acme Corp."},
            {"role": "user", "content": "Hello, I need help with my account."},
            {"role": "user", "content": "Actually, I want to cancel my subscription."},
        ],
    }


def test_prompt_fields_and_a_saved_stream_never_reach_the_provider() -> None:
    saved = {**SUPPORT, "stream": True, "stream_options": {"include_usage": True}, "inputs": {"x": 1}}
    body = chat(saved, {"prompt_id": "p", "environment": "staging", "version_id": "v", "inputs": {"company": "A"}})
    assert not {"prompt_id", "environment", "version_id", "inputs", "stream", "stream_options"} & body.keys()


def test_the_caller_still_chooses_to_stream() -> None:
    body = chat(SUPPORT, {"prompt_id": "p", "stream": True, "inputs": {"company": "A"}})
    assert body["stream"] is True


def test_the_request_overrides_every_saved_parameter_including_tools_and_format() -> None:
    saved = {**SUPPORT, "tools": [{"type": "function", "function": {"name": "a"}}], "response_format": {"type": "text"}}
    mine = [{"type": "function", "function": {"name": "b"}}]
    body = chat(
        saved,
        {"prompt_id": "p", "model": "claude-sonnet-4", "tools": mine, "response_format": {"type": "json_object"}}
        | {"inputs": {"company": "A"}},
    )
    assert (body["model"], body["tools"], body["response_format"]) == ("claude-sonnet-4", mine, {"type": "json_object"})
    assert (body["temperature"], body["max_tokens"]) == (0.6, 1000)


def test_the_callers_own_messages_are_not_templates() -> None:
    mine = [{"role": "user", "content": "What does {{hc:secret:string}} mean?"}]
    body = chat(SUPPORT, {"prompt_id": "p", "messages": mine, "inputs": {"company": "A"}})
    assert body["messages"][-1] == mine[0]  # neither substituted nor refused for a missing input


# -- variables ---------------------------------------------------------------------------------------


def test_a_missing_input_is_a_400_naming_it() -> None:
    with pytest.raises(InvalidBodyError) as caught:
        chat(SUPPORT, {"prompt_id": "p", "inputs": {}})
    assert (caught.value.status, param_of(caught)) == (400, "inputs.company")


def test_a_null_input_counts_as_missing() -> None:
    with pytest.raises(InvalidBodyError) as caught:
        chat(SUPPORT, {"prompt_id": "p", "inputs": {"company": None}})
    assert param_of(caught) == "inputs.company"


@pytest.mark.parametrize("value", [25, 3.14, -10, "25", " -1.5e3 ", "0"])
def test_numbers_and_numeric_strings_are_numbers(value: Any) -> None:
    saved = {"messages": [{"role": "user", "content": "Age {{hc:age:number}}"}]}
    assert chat(saved, {"inputs": {"age": value}})["messages"][0]["content"] == f"Age {value}"


@pytest.mark.parametrize("value", ["twenty", "nan", "inf", "1_000", True, [], {}, ""])
def test_anything_else_given_for_a_number_is_a_400(value: Any) -> None:
    saved = {"messages": [{"role": "user", "content": "Age {{hc:age:number}}"}]}
    with pytest.raises(InvalidBodyError) as caught:
        chat(saved, {"inputs": {"age": value}})
    assert param_of(caught) == "inputs.age"


@pytest.mark.parametrize(
    ("value", "typed"),
    [(True, True), (False, False), ("yes", True), ("no", False), ("true", True), ("false", False), ("YES", True)],
)
def test_booleans_take_the_documented_forms(value: Any, typed: bool) -> None:
    saved = {
        "messages": [{"role": "user", "content": "Premium: {{hc:premium:boolean}}"}],
        "response_format": {"premium": "{{hc:premium:boolean}}"},
    }
    body = chat(saved, {"inputs": {"premium": value}})
    assert body["response_format"]["premium"] is typed  # a whole tag: the boolean itself
    assert body["messages"][0]["content"] == f"Premium: {str(value).lower() if isinstance(value, bool) else value}"


@pytest.mark.parametrize("value", ["maybe", 1, 0, "1", None])
def test_other_booleans_are_a_400(value: Any) -> None:
    saved = {"messages": [{"role": "user", "content": "{{hc:premium:boolean}}"}]}
    with pytest.raises(InvalidBodyError) as caught:
        chat(saved, {"inputs": {"premium": value}})
    assert param_of(caught) == "inputs.premium"


def test_string_and_custom_types_take_any_value_spliced_as_text() -> None:
    saved = {
        "messages": [
            {
                "role": "user",
                "content": "{{hc:name:string}} / {{ hc : ctx : any }} / {{hc:n:number}} / {{hc:b:boolean}}",
            }
        ]
    }
    body = chat(saved, {"inputs": {"name": 7, "ctx": {"k": [1, "two"]}, "n": 2.5, "b": True}})
    assert body["messages"][0]["content"] == '7 / {"k":[1,"two"]} / 2.5 / true'


def test_variables_reach_text_parts_and_tool_call_arguments_but_not_roles() -> None:
    saved = {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Hi {{hc:name:string}}"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": '{"who": "{{hc:name:string}}"}'},
                    }
                ],
            },
        ]
    }
    body = chat(saved, {"inputs": {"name": "Ann"}})
    assert body["messages"][0]["content"][0]["text"] == "Hi Ann"
    assert body["messages"][1]["tool_calls"][0]["function"]["arguments"] == '{"who": "Ann"}'


SCHEMA: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {
        "name": "moviebot_response",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "tools_used": {"type": "array", "items": {"type": "string", "enum": "{{hc:tools:array}}"}},
                "{{hc:field:string}}": {"type": "string", "description": "For {{hc:tier:string}} users"},
                "limit": {"type": "integer", "maximum": "{{hc:max:number}}"},
                "strict_mode": {"const": "{{hc:strict:boolean}}"},
            },
        },
    },
}


def test_response_format_tags_become_typed_values_and_keys() -> None:
    inputs = {"tools": ["search", "calculator"], "field": "user_tier", "tier": "premium", "max": "5", "strict": "yes"}
    body = chat({"response_format": SCHEMA, "messages": []}, {"inputs": inputs})
    props = body["response_format"]["json_schema"]["schema"]["properties"]
    assert props["tools_used"]["items"]["enum"] == ["search", "calculator"]  # the whole tag: the array itself
    assert props["user_tier"] == {"type": "string", "description": "For premium users"}  # key, and text
    assert props["limit"]["maximum"] == 5 and isinstance(props["limit"]["maximum"], int)
    assert props["strict_mode"]["const"] is True
    assert SCHEMA["json_schema"]["schema"]["properties"]["tools_used"]["items"]["enum"] == "{{hc:tools:array}}"


def test_tool_schemas_are_substituted_in_keys_and_values() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "{{hc:tool_name:string}}",
                "parameters": {
                    "type": "object",
                    "properties": {"{{hc:arg:string}}": {"type": "string", "enum": "{{hc:choices:list}}"}},
                },
            },
        }
    ]
    inputs = {"tool_name": "search", "arg": "query", "choices": ["a", "b"]}
    body = chat({"tools": tools, "messages": []}, {"inputs": inputs})
    function = body["tools"][0]["function"]
    assert function["name"] == "search"
    assert function["parameters"]["properties"] == {"query": {"type": "string", "enum": ["a", "b"]}}


def test_a_key_tag_needs_a_string() -> None:
    saved = {"response_format": {"schema": {"{{hc:field:any}}": {}}}, "messages": []}
    with pytest.raises(InvalidBodyError) as caught:
        chat(saved, {"inputs": {"field": ["not", "a", "key"]}})
    assert param_of(caught) == "inputs.field"


def test_a_mistyped_input_in_a_schema_is_a_400() -> None:
    with pytest.raises(InvalidBodyError) as caught:
        chat(
            {"response_format": SCHEMA, "messages": []},
            {"inputs": {"tools": [], "field": "f", "tier": "t", "max": "many"}},
        )
    assert param_of(caught) == "inputs.max"


def test_an_input_value_is_not_itself_a_template() -> None:
    saved = {"messages": [{"role": "user", "content": "{{hc:a:string}}"}]}
    body = chat(saved, {"inputs": {"a": "{{hc:b:string}} {{hcp:abc123:0}}"}})
    assert body["messages"][0]["content"] == "{{hc:b:string}} {{hcp:abc123:0}}"


# -- partials ----------------------------------------------------------------------------------------

MAIN: dict[str, Any] = {
    "messages": [
        {"role": "system", "content": "{{hcp:sysPro:0}} Always be {{hc:tone:string}}."},
        {"role": "user", "content": [{"type": "text", "text": "{{ hcp : greet1 : 1 : staging }} Help?"}]},
    ]
}


def test_partial_refs_default_to_production_and_are_distinct() -> None:
    saved = {"messages": [*MAIN["messages"], {"role": "user", "content": "{{hcp:sysPro:0}}"}]}
    refs = partial_refs(saved, "production")
    assert refs == [PartialRef("sysPro", 0, "production"), PartialRef("greet1", 1, "staging")]
    assert referenced_versions([*refs, PartialRef("sysPro", 3, "production")]) == [
        ("sysPro", "production"),
        ("greet1", "staging"),
    ]


def test_partials_are_resolved_before_variables_which_the_main_inputs_fill() -> None:
    partials = {
        PartialRef("sysPro", 0, "production"): "You are a helpful assistant for {{hc:company:string}}.",
        PartialRef("greet1", 1, "staging"): "Hello {{hc:customer:string}},",
    }
    inputs = {"company": "Acme Corp", "tone": "professional", "customer": "Alice"}
    body = chat(MAIN, {"inputs": inputs}, partials)
    assert body["messages"][0]["content"] == "You are a helpful assistant for Acme Corp. Always be professional."
    assert body["messages"][1]["content"][0]["text"] == "Hello Alice, Help?"


def test_a_variable_inside_a_partial_is_still_required() -> None:
    partials = {
        PartialRef("sysPro", 0, "production"): "For {{hc:company:string}}.",
        PartialRef("greet1", 1, "staging"): "Hi",
    }
    with pytest.raises(InvalidBodyError) as caught:
        chat(MAIN, {"inputs": {"tone": "calm"}}, partials)
    assert param_of(caught) == "inputs.company"


def test_a_partial_tag_outside_message_content_is_left_as_written() -> None:
    """Partials are read from message contents; a tag in a tool call's arguments was never resolved and
    must not fail the request (it did: a KeyError, a 500), it stays as the prompt wrote it."""
    arguments = '{"note": "{{hcp:other1:0}}"}'
    saved = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "user", "content": "Hi"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}],
            },
        ],
    }
    assert partial_refs(saved, "production") == []
    body = chat(saved, {}, {})
    assert body["messages"][1]["tool_calls"][0]["function"]["arguments"] == arguments


def test_partial_text_reads_the_indexed_message_and_404s_past_the_end() -> None:
    messages = [{"role": "system", "content": "zero"}, {"role": "user", "content": [{"type": "text", "text": "one"}]}]
    assert partial_text(messages, PartialRef("p", 0, "production")) == "zero"
    assert partial_text(messages, PartialRef("p", 1, "production")) == "one"
    with pytest.raises(UnknownPromptError) as caught:
        partial_text(messages, PartialRef("p", 2, "production"))
    assert caught.value.status == 404


# -- the request's prompt fields ---------------------------------------------------------------------


def test_read_call_reads_and_validates_the_fields() -> None:
    call = read_call({"prompt_id": "abc123", "environment": "staging", "version_id": "v1", "inputs": {"a": 1}})
    assert call is not None
    assert (call.prompt_id, call.environment, call.version_id, call.inputs) == ("abc123", "staging", "v1", {"a": 1})
    assert read_call({"prompt_id": None, "inputs": {}}) is None
    assert strip_prompt_fields({"prompt_id": None, "inputs": {}, "model": "m"}) == {"model": "m"}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt_id": 7}, "prompt_id"),
        ({"prompt_id": " "}, "prompt_id"),
        ({"prompt_id": "p", "environment": 1}, "environment"),
        ({"prompt_id": "p", "version_id": ""}, "version_id"),
        ({"prompt_id": "p", "inputs": ["a"]}, "inputs"),
    ],
)
def test_read_call_names_the_bad_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidBodyError) as caught:
        read_call(body)
    assert param_of(caught) == param


def test_request_messages_must_be_a_list() -> None:
    with pytest.raises(InvalidBodyError) as caught:
        chat(SUPPORT, {"messages": "hi", "inputs": {"company": "A"}})
    assert param_of(caught) == "messages"


# -- the Responses shape -----------------------------------------------------------------------------


def test_a_responses_request_gets_the_saved_prompt_as_input_items_and_responses_fields() -> None:
    saved = {
        **SUPPORT,
        "response_format": SCHEMA,
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "lookup"}},
        "stop": ["END"],
        "reasoning_effort": "low",
    }
    inputs = {"company": "Acme", "tools": ["x"], "field": "f", "tier": "t", "max": 3, "strict": False}
    body = assemble_responses(
        saved,
        {"prompt_id": "p", "inputs": inputs, "input": "Cancel it", "temperature": 0.1},
        inputs,
        {},
        default_environment="production",
    )
    assert body["input"] == [
        {"role": "system", "content": "You are a helpful customer support agent for Acme."},
        {"role": "user", "content": "Hello, I need help with my account."},
        {"role": "user", "content": "Cancel it"},
    ]
    assert (body["model"], body["temperature"], body["max_output_tokens"]) == ("gpt-4o-mini", 0.1, 1000)
    assert body["text"]["format"]["type"] == "json_schema" and body["text"]["format"]["name"] == "moviebot_response"
    assert body["tools"] == [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]
    assert body["tool_choice"] == {"type": "function", "name": "lookup"}
    assert body["reasoning"] == {"effort": "low"}
    assert not {"stop", "max_tokens", "messages", "response_format", "prompt_id", "inputs"} & body.keys()


def test_responses_items_from_the_request_follow_and_parts_are_mapped() -> None:
    saved = {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look {{hc:x:string}}"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}},
                ],
            }
        ],
    }
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "more"}]}
    body = assemble_responses(saved, {"input": [item]}, {"x": "here"}, {}, default_environment="production")
    assert body["input"] == [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "look here"},
                {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "low"},
            ],
        },
        item,
    ]


def test_saved_tool_traffic_cannot_become_responses_input() -> None:
    saved = {"messages": [{"role": "tool", "tool_call_id": "c", "content": "42"}]}
    with pytest.raises(InvalidBodyError) as caught:
        assemble_responses(saved, {"input": "hi"}, {}, {}, default_environment="production")
    assert param_of(caught) == "prompt_id"
