"""Usage extraction from every wire format heliport relays, plus the bodies it must shrug off."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from heliport.logs.usage import Usage, extract_usage, resolve_model, stream_error_status

FIXTURES = Path(__file__).with_name("fixtures")
MOCK_FIXTURES = Path(__file__).parents[1] / "mock_provider" / "fixtures"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_bytes().decode("utf-8")  # Bytes: keep CRLF as the provider sent it.


def usage_of(body: str | None, *, provider: str = "OPENAI", path: str = "/v1/chat/completions", stream: bool = False):
    return extract_usage(provider=provider, path=path, response_body=body, is_stream=stream)


# -- provider fixtures: the whole Usage is asserted, so no field can drift silently ------------------

EXPECTED: dict[str, tuple[str, Usage]] = {
    "openai/chat_completion.json": (
        "OPENAI",
        Usage(
            prompt_tokens=2006,
            completion_tokens=300,
            total_tokens=2306,
            prompt_cache_read_tokens=1920,
            reasoning_tokens=192,
            prompt_audio_tokens=0,
            completion_audio_tokens=0,
            source="response",
            response_model="o4-mini-2025-04-16",
        ),
    ),
    "openai/chat_stream_usage.sse": (
        "OPENAI",
        Usage(
            prompt_tokens=1543,
            completion_tokens=17,
            total_tokens=1560,
            prompt_cache_read_tokens=1408,
            reasoning_tokens=0,
            prompt_audio_tokens=0,
            completion_audio_tokens=0,
            source="stream",
            response_model="gpt-4o-mini-2024-07-18",
        ),
    ),
    # No include_usage: nothing is invented, but the model is still known.
    "openai/chat_stream_no_usage.sse": ("OPENAI", Usage(source="absent", response_model="gpt-4o-mini-2024-07-18")),
    "openai/responses.json": (
        "OPENAI",
        Usage(
            prompt_tokens=1500,
            completion_tokens=900,
            total_tokens=2400,
            prompt_cache_read_tokens=1024,
            reasoning_tokens=640,
            source="response",
            response_model="o4-mini-2025-04-16",
        ),
    ),
    "openai/responses_stream.sse": (
        "OPENAI",
        Usage(
            prompt_tokens=3120,
            completion_tokens=14,
            total_tokens=3134,
            prompt_cache_read_tokens=2048,
            reasoning_tokens=0,
            source="stream",
            response_model="gpt-4.1-mini-2025-04-14",
        ),
    ),
    # Anthropic's input_tokens (100) excludes cache reads (2000) and writes (800): prompt is 2900.
    "anthropic/message.json": (
        "ANTHROPIC",
        Usage(
            prompt_tokens=2900,
            completion_tokens=250,
            total_tokens=3150,
            prompt_cache_read_tokens=2000,
            prompt_cache_write_tokens=800,
            prompt_cache_write_5m_tokens=500,
            prompt_cache_write_1h_tokens=300,
            source="response",
            response_model="claude-opus-4-1-20250805",
        ),
    ),
    # message_start's usage merged with message_delta's (output 1 -> 387).
    "anthropic/message_stream.sse": (
        "ANTHROPIC",
        Usage(
            prompt_tokens=42 + 12000 + 1600,
            completion_tokens=387,
            total_tokens=42 + 12000 + 1600 + 387,
            prompt_cache_read_tokens=12000,
            prompt_cache_write_tokens=1600,
            prompt_cache_write_5m_tokens=1200,
            prompt_cache_write_1h_tokens=400,
            source="stream",
            response_model="claude-sonnet-4-5-20250929",
        ),
    ),
    "anthropic/message_stream_error.sse": (
        "ANTHROPIC",
        Usage(
            prompt_tokens=812,
            completion_tokens=1,
            total_tokens=813,
            prompt_cache_read_tokens=0,
            prompt_cache_write_tokens=0,
            source="stream",
            response_model="claude-sonnet-4-5-20250929",
            stream_error="overloaded_error: Overloaded",
            stream_error_status=529,
        ),
    ),
    # Gemini: promptTokenCount includes the cache; thoughts (400) are output beside the candidates (210).
    "gemini/generate_content.json": (
        "GOOGLE",
        Usage(
            prompt_tokens=5300,
            completion_tokens=610,
            total_tokens=5910,
            prompt_cache_read_tokens=4096,
            reasoning_tokens=400,
            prompt_audio_tokens=1000,
            prompt_cache_read_audio_tokens=0,
            source="response",
            response_model="gemini-2.5-flash",
        ),
    ),
    "gemini/stream.sse": (
        "GOOGLE",
        Usage(
            prompt_tokens=1200,
            completion_tokens=830,
            total_tokens=2030,
            prompt_cache_read_tokens=1024,
            reasoning_tokens=480,
            prompt_cache_read_audio_tokens=0,
            source="stream",
            response_model="gemini-2.5-flash",
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_provider_fixture(name: str) -> None:
    provider, expected = EXPECTED[name]
    assert usage_of(fixture(name), provider=provider, stream=name.endswith(".sse")) == expected


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_format_is_read_from_content_not_label(name: str) -> None:
    """A wrong label or stream flag changes nothing: Anthropic via Bedrock, OpenAI-compatible providers."""
    _, expected = EXPECTED[name]
    got = usage_of(fixture(name), provider="https://llm.internal.example", stream=not name.endswith(".sse"))
    assert got == expected


def test_gemini_sse_uses_crlf_line_endings() -> None:
    assert "\r\n\r\n" in fixture("gemini/stream.sse")  # The fixture exercises CRLF, as Google sends it.


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_truncated_bodies_never_raise_nor_invent(name: str) -> None:
    """Every prefix of every fixture (a body cut at the proxy's copy cap) parses without raising and
    reports either no prompt count or the real one."""
    body = fixture(name)
    full = EXPECTED[name][1]
    for cut in range(0, len(body), 7):
        got = usage_of(body[:cut], provider=EXPECTED[name][0])
        assert got.source in ("absent", "response", "stream")
        assert got.prompt_tokens in (None, full.prompt_tokens)
        if got.source == "absent":
            assert got.prompt_tokens is None and got.completion_tokens is None


def test_cut_stream_loses_usage_but_keeps_model() -> None:
    body = fixture("openai/chat_stream_usage.sse")
    cut = body[: body.index('"choices":[],"usage":{') + 30]
    assert usage_of(cut, stream=True) == Usage(source="absent", response_model="gpt-4o-mini-2024-07-18")


# -- the project's mock-provider fixtures (the formats heliport relays in its own tests) ------------


def _sse(events: list[dict[str, object]], *, named: bool) -> str:
    if named:
        return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"


@pytest.mark.parametrize(
    ("json_name", "stream_name"),
    [
        ("openai/chat_completion.json", "openai/chat_stream.jsonl"),
        ("openai/responses.json", "openai/responses_stream.jsonl"),
        ("anthropic/message.json", "anthropic/message_stream.jsonl"),
        ("anthropic/message_tool_use.json", "anthropic/message_stream_tool_use.jsonl"),
    ],
)
def test_mock_provider_json_and_stream_agree(json_name: str, stream_name: str) -> None:
    whole = usage_of((MOCK_FIXTURES / json_name).read_text())
    lines = (MOCK_FIXTURES / stream_name).read_text().splitlines()
    events = [json.loads(line) for line in lines if line.strip()]
    streamed = usage_of(_sse(events, named="type" in events[0]), stream=True)
    assert whole.source == "response" and streamed.source == "stream"
    assert whole.prompt_tokens is not None and whole.prompt_tokens > 0
    assert msgspec_fields(whole, drop=("source",)) == msgspec_fields(streamed, drop=("source",))


def msgspec_fields(usage: Usage, *, drop: tuple[str, ...]) -> dict[str, object]:
    return {f: getattr(usage, f) for f in usage.__struct_fields__ if f not in drop}


def test_mock_anthropic_fixture_counts_cache_in_prompt() -> None:
    got = usage_of((MOCK_FIXTURES / "anthropic/message.json").read_text(), provider="ANTHROPIC")
    assert (got.prompt_tokens, got.prompt_cache_read_tokens, got.prompt_cache_write_tokens) == (21 + 12 + 6, 12, 6)


# -- other OpenAI-compatible and Anthropic carriers --------------------------------------------------


def test_groq_x_groq_usage_in_stream() -> None:
    chunks = [
        {"id": "c1", "object": "chat.completion.chunk", "model": "llama-3.3-70b-versatile", "choices": []},
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "model": "llama-3.3-70b-versatile",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "x_groq": {"id": "req_01", "usage": {"prompt_tokens": 48, "completion_tokens": 9, "total_tokens": 57}},
        },
    ]
    got = usage_of(_sse(chunks, named=False), provider="GROQ", stream=True)
    assert (got.prompt_tokens, got.completion_tokens, got.total_tokens, got.source) == (48, 9, 57, "stream")


def test_deepseek_cache_hits() -> None:
    body = {
        "model": "deepseek-chat",
        "usage": {
            "prompt_tokens": 900,
            "completion_tokens": 50,
            "total_tokens": 950,
            "prompt_cache_hit_tokens": 640,
            "prompt_cache_miss_tokens": 260,
        },
    }
    got = usage_of(json.dumps(body), provider="DEEPSEEK")
    assert (got.prompt_tokens, got.prompt_cache_read_tokens) == (900, 640)


def test_openai_stream_error_chunk() -> None:
    chunks = [
        {"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o", "choices": [{"index": 0, "delta": {}}]},
        {"error": {"message": "The server had an error", "type": "server_error", "code": None}},
    ]
    got = usage_of(_sse(chunks, named=False), stream=True)
    assert (got.source, got.stream_error, got.stream_error_status) == (
        "absent",
        "server_error: The server had an error",
        500,
    )


def test_bedrock_converse_json() -> None:
    body = {
        "output": {"message": {"role": "assistant", "content": [{"text": "Hi"}]}},
        "stopReason": "end_turn",
        "usage": {
            "inputTokens": 30,
            "outputTokens": 12,
            "totalTokens": 1042,
            "cacheReadInputTokens": 800,
            "cacheWriteInputTokens": 200,
        },
        "metrics": {"latencyMs": 812},
    }
    got = usage_of(json.dumps(body), provider="AWS", path="/model/anthropic.claude-3-5-haiku-20241022-v1:0/converse")
    assert (got.prompt_tokens, got.completion_tokens, got.total_tokens) == (1030, 12, 1042)
    assert (got.prompt_cache_read_tokens, got.prompt_cache_write_tokens) == (800, 200)


def test_bedrock_invoke_stream_event_frames() -> None:
    """invoke-with-response-stream: binary frames whose payloads carry base64 Anthropic events."""
    events = [
        {
            "type": "message_start",
            "message": {"model": "claude-3-5-haiku-20241022", "usage": {"input_tokens": 15, "output_tokens": 1}},
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 33}},
        {"type": "message_stop"},
    ]
    frames = "".join(
        "\x00\x00\x01\x0b\x00\x00\x00K\x9a\x0f:event-type\x07\x00\x05chunk"
        + json.dumps({"bytes": base64.b64encode(json.dumps(e).encode()).decode(), "p": "abcd"})
        + "\x8a\x1f\x02\x11"
        for e in events
    )
    got = usage_of(frames, provider="AWS", stream=True)
    assert (got.prompt_tokens, got.completion_tokens, got.response_model) == (15, 33, "claude-3-5-haiku-20241022")


def test_anthropic_delta_with_cumulative_input_and_nulls() -> None:
    """Newer message_delta events repeat the cumulative counts; a null never erases a known count."""
    events = [
        {
            "type": "message_start",
            "message": {
                "model": "claude-haiku-4-5",
                "usage": {"input_tokens": 10, "cache_read_input_tokens": 90, "output_tokens": 1},
            },
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {
                "input_tokens": 10,
                "cache_read_input_tokens": None,
                "output_tokens": 120,
                "output_tokens_details": {"thinking_tokens": 70},
            },
        },
    ]
    got = usage_of(_sse(events, named=True), provider="ANTHROPIC", stream=True)
    assert (got.prompt_tokens, got.prompt_cache_read_tokens, got.completion_tokens, got.reasoning_tokens) == (
        100,
        90,
        120,
        70,
    )


@pytest.mark.parametrize(
    ("error_type", "status"),
    [("overloaded_error", 529), ("rate_limit_error", 429), ("api_error", 500), ("brand_new_error", 500)],
)
def test_anthropic_error_before_any_content(error_type: str, status: int) -> None:
    body = f'event: error\ndata: {{"type":"error","error":{{"type":"{error_type}","message":"boom"}}}}\n\n'
    got = usage_of(body, provider="ANTHROPIC", stream=True)
    assert got == Usage(source="absent", stream_error=f"{error_type}: boom", stream_error_status=status)


def test_stream_error_status_table() -> None:
    assert [stream_error_status(t) for t in ("overloaded_error", "rate_limit_error", "api_error", None)] == [
        529,
        429,
        500,
        500,
    ]


def test_responses_failed_and_incomplete() -> None:
    failed = [
        {"type": "response.created", "response": {"model": "gpt-5", "usage": None}},
        {
            "type": "response.failed",
            "response": {"model": "gpt-5", "error": {"code": "server_error", "message": "oops"}, "usage": None},
        },
    ]
    got = usage_of(_sse(failed, named=True), stream=True)
    assert (got.source, got.stream_error, got.stream_error_status, got.response_model) == (
        "absent",
        "server_error: oops",
        500,
        "gpt-5",
    )
    incomplete = [
        {"type": "response.created", "response": {"model": "gpt-5", "usage": None}},
        {
            "type": "response.incomplete",
            "response": {
                "model": "gpt-5",
                "usage": {"input_tokens": 20, "output_tokens": 4096, "total_tokens": 4116},
            },
        },
    ]
    got = usage_of(_sse(incomplete, named=True), stream=True)
    assert (got.prompt_tokens, got.completion_tokens, got.stream_error) == (20, 4096, None)


def test_gemini_json_array_stream() -> None:
    """streamGenerateContent without alt=sse answers one JSON array of chunks."""
    chunks = [
        {
            "candidates": [],
            "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
            "modelVersion": "gemini-2.0-flash",
        },
        {
            "candidates": [],
            "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 5, "totalTokenCount": 12},
            "modelVersion": "gemini-2.0-flash",
        },
    ]
    got = usage_of(json.dumps(chunks), provider="GOOGLE", stream=True)
    assert (got.prompt_tokens, got.completion_tokens, got.total_tokens, got.source) == (7, 5, 12, "response")


def test_large_stream_without_usage_is_absent() -> None:
    chunk = (
        'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"delta":{"content":"x"}}]}'
        "\n\n"
    )
    got = usage_of(chunk * 50_000 + "data: [DONE]\n\n", stream=True)
    assert got == Usage(source="absent", response_model="gpt-4o-mini")


# -- manual logger payloads ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "counts"),
    [
        ("manual/openai_style.json", (10, 8, 18)),
        ("manual/anthropic_style.json", (10, 20, 30)),
        ("manual/google_style.json", (10, 20, 30)),
        ("manual/alternative_style.json", (10, 20, 30)),
        ("manual/streamed_data.json", (12, 4, 16)),
    ],
)
def test_manual_logger_payloads(name: str, counts: tuple[int, int, int]) -> None:
    got = usage_of(fixture(name), provider="CUSTOM", path="/custom/v1/log")
    assert (got.prompt_tokens, got.completion_tokens, got.total_tokens, got.source) == (*counts, "manual")


def test_manual_text_body_has_no_usage() -> None:
    assert usage_of(fixture("manual/text_body.json"), provider="CUSTOM") == Usage(source="absent")


def test_manual_provider_response_json_alone() -> None:
    """What the async-log endpoint relays: just ``providerResponse.json``; the path says it is manual."""
    payload = json.loads(fixture("manual/openai_style.json"))["providerResponse"]["json"]
    got = usage_of(json.dumps(payload), provider="OPENAI", path="/oai/v1/log")
    assert (got.prompt_tokens, got.completion_tokens, got.source) == (10, 8, "manual")
    streamed = json.loads(fixture("manual/streamed_data.json"))["providerResponse"]["json"]
    got = usage_of(json.dumps(streamed), provider="OPENAI", path="custom-model-nopath")
    assert (got.prompt_tokens, got.response_model, got.source) == (12, "gpt-4o-mini-2024-07-18", "manual")


# -- garbage -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        None,
        "",
        "   \n",
        "not json at all",
        "<html><body><h1>502 Bad Gateway</h1></body></html>",
        '{"usage": ',
        "[1, 2, 3]",
        "null",
        '"a string"',
        '{"usage": {"prompt_tokens": "ten", "completion_tokens": null}}',
        '{"usage": {"prompt_tokens": -5, "completion_tokens": true}}',
        '{"usage": []}',
        '{"usageMetadata": "nope"}',
        "data: [DONE]\n\n",
        "data: {broken json\n\ndata: also broken\n\n",
        'event: message_start\ndata: {"type":"message_start","message":"not an object"}\n\n',
        "\x00\xff\ufffd\x01 binary junk",
        "[" * 10_000,
    ],
)
def test_garbage_is_absent(body: str | None) -> None:
    assert usage_of(body, stream=True) == Usage(source="absent")
    assert usage_of(body, stream=False) == Usage(source="absent")


# -- model resolution --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"model_override": "my-alias", "response_model": "gpt-4o-2024-08-06", "request_model": "gpt-4o"}, "my-alias"),
        (
            {"model_override": None, "response_model": "gpt-4o-2024-08-06", "request_model": "gpt-4o"},
            "gpt-4o-2024-08-06",
        ),
        ({"model_override": "", "response_model": None, "request_model": "gpt-4o"}, "gpt-4o"),
        ({"path": "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"}, "gemini-2.5-flash"),
        (
            {"path": "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent"},
            "gemini-2.5-pro",
        ),
        ({"path": "/openai/deployments/prod-gpt4o/chat/completions?api-version=2024-10-21"}, "prod-gpt4o"),
        (
            {"path": "/model/anthropic.claude-3-5-sonnet-20241022-v2%3A0/invoke"},
            "anthropic.claude-3-5-sonnet-20241022-v2:0",
        ),
        (
            {"path": "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.amazon.nova-pro-v1:0/converse"},
            "us.amazon.nova-pro-v1:0",
        ),
        ({"path": "/v1/engines/davinci/completions"}, "davinci"),
        ({"path": "/v1/chat/completions"}, None),
        ({"path": ""}, None),
    ],
)
def test_resolve_model(kwargs: dict[str, str | None], expected: str | None) -> None:
    args: dict[str, str | None] = {"model_override": None, "response_model": None, "request_model": None, "path": ""}
    args.update(kwargs)
    assert resolve_model(**args) == expected  # type: ignore[arg-type]


def test_bedrock_converse_stream_usage_is_read_from_its_binary_frames() -> None:
    from tests.mock_provider.eventstream import event_message

    fixture = Path(__file__).parents[1] / "gateway" / "fixtures" / "bedrock" / "converse_stream_reasoning.jsonl"
    frames = b""
    for line in fixture.read_text().splitlines():
        ((event_type, payload),) = json.loads(line).items()
        frames += event_message(event_type, payload)
    usage = extract_usage(
        provider="BEDROCK",
        path="/model/us.anthropic.claude-sonnet-4-20250514-v1:0/converse-stream",
        response_body=frames.decode("utf-8", "replace"),  # as the proxy's tee keeps it
        is_stream=True,
    )
    assert (usage.prompt_tokens, usage.completion_tokens) == (18 + 1536 + 512, 96)
    assert usage.source == "stream"


def test_json_lines_of_chunks_are_read_as_a_stream() -> None:
    """helicone-helpers' log builder sends a stream's chunks as JSON lines (``"\\n".join(json.dumps(chunk))``)."""
    chunk = {"id": "c", "object": "chat.completion.chunk", "model": "gpt-4o-mini"}
    usage = {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}
    chunks = [{**chunk, "choices": [{"delta": {"content": "x"}}]}, {**chunk, "choices": [], "usage": usage}]
    got = usage_of("\n".join(json.dumps(c) for c in chunks), provider="CUSTOM", path="/custom/v1/log")
    assert (got.prompt_tokens, got.completion_tokens, got.total_tokens, got.source) == (5, 1, 6, "manual")
    # A document that is not JSON lines (pretty-printed and cut short) is still nothing.
    assert usage_of(json.dumps(chunks[1], indent=2)[:-3], provider="CUSTOM") == Usage(source="absent")
