"""``Helicone-Token-Limit-Exception-Handler``: truncate, middle-out and fallback.

End to end first: the official ``openai`` (and ``anthropic``) SDK calls a live heliport on the
pass-through proxy and on the AI gateway, in front of the mock provider, which records the body it
received; each test asserts what the provider got and what the log record says. The budget is made
small with a large requested output (``max_tokens``), as a caller would leave room for a long answer:
gpt-4o's 128,000 tokens less 120,000 for the output less the 1% margin leaves 6,720.

Then :func:`heliport.steps.token_limit.fit` directly, over a registry with one small model, for the
cases that need no network: tool calls removed with their results, Anthropic's and Responses' shapes,
what cannot fit, model names with dates and providers.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import msgspec
import openai
import pytest

from heliport.gateway.registry import Capabilities, ModelEntry, ProviderEndpoint, Registry
from heliport.headers import TokenLimitHandler
from heliport.steps.token_limit import IMAGE_TOKENS, fit, safety_margin
from heliport.steps.tokens import ELISION, estimate
from tests.harness import Gateway
from tests.mock_provider import MockProvider

StartGateway = Callable[..., Gateway]

HEADER = "Helicone-Token-Limit-Exception-Handler"
ROUTES = ["proxy", "ai-gateway"]
#: gpt-4o's context (128,000) minus this output minus the margin (1,280): 6,720 tokens of input.
OUTPUT = 120_000
BUDGET = 128_000 - OUTPUT - safety_margin(128_000)

_WORDS = (
    "the gateway reads every request before the model does and keeps a record of what it saw while "
    "operators watch latency budgets tokens costs errors sessions users properties retries caching"
)


def prose(words: int, seed: int) -> str:
    """English-like filler of ``words`` words, in sentences and paragraphs (deterministic)."""
    rng = random.Random(seed)
    vocabulary = _WORDS.split()
    out: list[str] = []
    for index in range(words):
        word = rng.choice(vocabulary)
        out.append(word.capitalize() if index % 12 == 0 else word)
        if index % 12 == 11:
            out[-1] += "."
        if index % 60 == 59:
            out[-1] += "\n\n"
    return " ".join(out)


@pytest.fixture(scope="module")
def gw(step_gateway: StartGateway) -> Gateway:
    return step_gateway()


@pytest.fixture(autouse=True)
def _fresh(mock_provider: MockProvider) -> None:
    mock_provider.clear()


def sdk(gateway: Gateway, route: str, handler: str | None) -> openai.OpenAI:
    headers = {} if handler is None else {HEADER: handler}
    if route == "proxy":
        return openai.OpenAI(
            base_url=gateway.oai_base,
            api_key="sk-caller-openai",
            default_headers={"Helicone-Auth": f"Bearer {gateway.key}", **headers},
            max_retries=0,
        )
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.key, default_headers=headers, max_retries=0)


def on(route: str, model: str) -> str:
    """The model string for ``route``: the AI gateway's names the provider."""
    return model if route == "proxy" else f"{model}/openai"


def chat(gateway: Gateway, route: str, handler: str | None, **body: Any) -> str:
    """One chat completion; its request id (the call must succeed)."""
    raw = sdk(gateway, route, handler).chat.completions.with_raw_response.create(**body)
    raw.parse()
    return raw.headers["helicone-id"]


def received(mock: MockProvider) -> dict[str, Any]:
    """The body the provider got for the one model call of the test."""
    (request,) = [r for r in mock.requests if r.path.endswith(("/chat/completions", "/responses", "/messages"))]
    body: dict[str, Any] = msgspec.json.decode(request.body)
    return body


def facts(gateway: Gateway, request_id: str) -> dict[str, Any]:
    record = gateway.record(request_id)
    found: dict[str, Any] = record.facts["token_limit"]
    return found


# -- end to end: the official SDKs on both routes -------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("handler", ["truncate", "middle-out", "fallback"])
@pytest.mark.parametrize("words", [20, 1500], ids=["small", "under-the-budget"])
def test_an_input_that_fits_reaches_the_provider_byte_for_byte(
    gw: Gateway, mock_provider: MockProvider, route: str, handler: str, words: int
) -> None:
    """Small (sure to fit by its size alone) or estimated under the budget: nothing is rewritten."""
    body = {
        "model": on(route, "gpt-4o"),
        "max_tokens": OUTPUT,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": prose(words, 1)}],
    }
    chat(gw, route, None, **body)
    (plain,) = mock_provider.requests
    mock_provider.clear()
    request_id = chat(gw, route, handler, **body)
    (handled,) = mock_provider.requests
    assert handled.body == plain.body
    found = facts(gw, request_id)
    assert found["fits"] is True and found["changed"] is False
    assert found["estimate"] == ("byte bound" if words == 20 else "heuristic")
    assert found["tokens_before"] <= found["budget"] == BUDGET
    assert gw.record(request_id).errors == []


@pytest.mark.parametrize("route", ROUTES)
def test_truncate_normalises_whitespace_and_cuts_the_long_message_from_its_end(
    gw: Gateway, mock_provider: MockProvider, route: str
) -> None:
    document = "Report  follows:\n\n\n" + prose(12_000, 2)
    messages = [
        {"role": "system", "content": "Summarise   the report."},
        {"role": "user", "content": document},
        {"role": "assistant", "content": "Which part?"},
        {"role": "user", "content": "The conclusion,  please."},
    ]
    request_id = chat(gw, route, "truncate", model=on(route, "gpt-4o"), max_tokens=OUTPUT, messages=messages)
    sent = received(mock_provider)["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    # Short messages stay whole (normalised); the long one keeps its beginning and loses its end.
    assert sent[0]["content"] == "Summarise the report."
    assert sent[2]["content"] == "Which part?"
    assert sent[3]["content"] == "The conclusion, please."
    kept = sent[1]["content"]
    assert kept.startswith("Report follows:\n")
    assert "  " not in kept and "\n\n" not in kept
    normalised = " ".join(document.split())
    assert len(kept) < len(normalised) / 2 and normalised.startswith(kept.replace("\n", " "))
    assert sum(estimate(m["content"]) for m in sent) <= BUDGET
    found = facts(gw, request_id)
    assert found["strategy"] == "truncate" and found["model"] == on(route, "gpt-4o")
    assert found["context_length"] == 128_000 and found["output_reserve"] == OUTPUT
    assert found["tokens_before"] > BUDGET >= found["tokens_after"]
    # Normalised: every text but "Which part?"; cut: the report alone.
    assert (found["fits"], found["changed"], found["cut_texts"], found["normalised_texts"]) == (True, True, 1, 3)
    record = gw.record(request_id)
    assert record.errors == []
    assert record.request_body is not None and len(record.request_body) < len(document)


@pytest.mark.parametrize("route", ROUTES)
def test_middle_out_keeps_the_system_prompt_the_first_and_the_latest_turns(
    gw: Gateway, mock_provider: MockProvider, route: str
) -> None:
    turns = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i}: " + prose(300, i)} for i in range(30)
    ]
    messages = [{"role": "system", "content": "You are a careful assistant."}, *turns]
    request_id = chat(gw, route, "middle-out", model=on(route, "gpt-4o"), max_tokens=OUTPUT, messages=messages)
    sent = received(mock_provider)["messages"]
    assert sent[0] == messages[0]
    kept = sent[1:]
    assert kept[0] == turns[0] and kept[-1] == turns[-1]
    # What is gone is one block from the middle: the rest is a head and a tail of the conversation, unchanged.
    head = next(i for i, m in enumerate(kept) if m != turns[i])
    tail = len(kept) - head
    assert kept == turns[:head] + turns[len(turns) - tail :]
    removed = len(turns) - len(kept)
    assert removed > 0 and abs(head - tail) <= 2  # removed around the centre
    found = facts(gw, request_id)
    assert (found["removed_messages"], found["cut_texts"], found["fits"]) == (removed, 0, True)
    assert found["tokens_after"] <= BUDGET < found["tokens_before"]


@pytest.mark.parametrize("route", ROUTES)
def test_middle_out_keeps_the_head_and_tail_of_a_message_too_long_alone(
    gw: Gateway, mock_provider: MockProvider, route: str
) -> None:
    question = "BEGIN-OF-DOCUMENT " + prose(12_000, 3) + " What does the last line say? END-OF-QUESTION"
    request_id = chat(
        gw,
        route,
        "middle-out",
        model=on(route, "gpt-4o"),
        max_tokens=OUTPUT,
        messages=[{"role": "user", "content": question}],
    )
    (message,) = received(mock_provider)["messages"]
    content = message["content"]
    assert content.startswith("BEGIN-OF-DOCUMENT") and content.endswith("What does the last line say? END-OF-QUESTION")
    assert ELISION in content and len(content) < len(question) / 2
    head, tail = content.split(ELISION)
    assert question.startswith(head) and question.endswith(tail)
    found = facts(gw, request_id)
    assert (found["removed_messages"], found["cut_texts"], found["fits"]) == (0, 1, True)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("words", [100, 12_000], ids=["under", "over"])
def test_fallback_sends_the_first_model_under_its_context_and_the_second_over_it(
    gw: Gateway, mock_provider: MockProvider, route: str, words: int
) -> None:
    listed = f"{on(route, 'gpt-4o')}, {on(route, 'gpt-4.1')}"
    request_id = chat(
        gw, route, "fallback", model=listed, max_tokens=OUTPUT, messages=[{"role": "user", "content": prose(words, 4)}]
    )
    over = words > 1000
    assert received(mock_provider)["model"] == ("gpt-4.1" if over else "gpt-4o")
    found = facts(gw, request_id)
    assert found["chosen_model"] == on(route, "gpt-4.1" if over else "gpt-4o")
    assert (found["fits"], found["changed"]) == (not over, True)
    if over:
        assert (found["fallback_context_length"], found["fits_fallback"]) == (1_047_576, True)
    record = gw.record(request_id)
    assert record.request_body is not None and listed not in record.request_body
    if route == "ai-gateway":
        assert record.gateway_model == on(route, "gpt-4.1" if over else "gpt-4o")


@pytest.mark.parametrize("route", ROUTES)
def test_an_unknown_model_goes_on_unchanged_with_the_reason_on_the_record(
    gw: Gateway, mock_provider: MockProvider, route: str
) -> None:
    body = {"model": on(route, "house-model-7b"), "messages": [{"role": "user", "content": prose(3000, 5)}]}
    chat(gw, route, None, **body)
    (plain,) = mock_provider.requests
    mock_provider.clear()
    request_id = chat(gw, route, "middle-out", **body)
    (handled,) = mock_provider.requests
    assert handled.body == plain.body
    record = gw.record(request_id)
    assert record.status == 200
    assert any(
        e.startswith(f"{HEADER} (middle-out) not applied: unknown model '{on(route, 'house-model-7b')}'")
        for e in record.errors
    )
    found = record.facts["token_limit"]
    assert found["applied"] is False and "not in the model registry" in found["reason"]


@pytest.mark.parametrize("route", ROUTES)
def test_a_bad_header_value_is_a_400_naming_the_header(gw: Gateway, mock_provider: MockProvider, route: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(gw, route, "shorten").chat.completions.create(
            model=on(route, "gpt-4o"), messages=[{"role": "user", "content": "hi"}]
        )
    error = caught.value.response.json()["error"]
    assert error["param"] == HEADER
    assert HEADER in error["message"] and "truncate, middle-out, fallback" in error["message"]
    assert mock_provider.requests == []


@pytest.mark.parametrize("route", ROUTES)
def test_responses_input_is_trimmed_from_the_middle(gw: Gateway, mock_provider: MockProvider, route: str) -> None:
    items: list[dict[str, Any]] = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"item {i}: " + prose(400, 10 + i)}
        for i in range(20)
    ]
    raw = sdk(gw, route, "middle-out").responses.with_raw_response.create(
        model=on(route, "gpt-4o"),
        instructions="Answer from the conversation.",
        input=items,  # type: ignore[arg-type]
        max_output_tokens=OUTPUT,
    )
    raw.parse()
    sent = received(mock_provider)
    assert sent["instructions"] == "Answer from the conversation."
    kept = sent["input"]
    assert kept[0] == items[0] and kept[-1] == items[-1] and len(kept) < len(items)
    found = facts(gw, raw.headers["helicone-id"])
    assert found["removed_messages"] == len(items) - len(kept) and found["fits"] is True


def test_anthropic_messages_on_the_proxy_keep_the_system_prompt_and_tool_turns_whole(
    gw: Gateway, mock_provider: MockProvider
) -> None:
    def tool_turns(i: int) -> list[dict[str, Any]]:
        return [
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": f"toolu_{i}", "name": "search", "input": {"q": i}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": f"toolu_{i}", "content": prose(500, i)}],
            },
        ]

    messages: list[dict[str, Any]] = [{"role": "user", "content": "Research the topic."}]
    for i in range(12):
        messages += tool_turns(i)
    messages.append({"role": "assistant", "content": "Done searching."})
    messages.append({"role": "user", "content": "Now summarise."})
    client = gw.anthropic(default_headers={HEADER: "middle-out"})
    raw = client.messages.with_raw_response.create(
        model="claude-sonnet-4-20250514",
        max_tokens=190_000,
        timeout=30,  # given, so that the SDK does not insist on streaming for so large an output
        system="You are a research assistant.",
        messages=messages,  # type: ignore[arg-type]
    )
    raw.parse()
    sent = received(mock_provider)
    assert sent["system"] == "You are a research assistant."
    kept = sent["messages"]
    assert kept[0] == messages[0] and kept[-1] == messages[-1] and len(kept) < len(messages)
    # Every tool_use that stayed still has its tool_result right after it, and no result lost its call.
    uses = [p["id"] for m in kept if isinstance(m["content"], list) for p in m["content"] if p["type"] == "tool_use"]
    results = [
        p["tool_use_id"]
        for m in kept
        if isinstance(m["content"], list)
        for p in m["content"]
        if p["type"] == "tool_result"
    ]
    assert uses == results
    found = facts(gw, raw.headers["helicone-id"])
    assert found["model"] == "claude-sonnet-4-20250514" and found["context_length"] == 200_000
    assert found["fits"] is True and found["removed_messages"] == len(messages) - len(kept)


def test_the_model_override_header_names_the_model_of_a_body_without_one(
    gw: Gateway, mock_provider: MockProvider
) -> None:
    """Bodies of URL-routed providers carry no model: ``Helicone-Model-Override`` names it."""
    raw = openai.OpenAI(
        base_url=gw.oai_base,
        api_key="sk-caller-openai",
        default_headers={"Helicone-Auth": f"Bearer {gw.key}", HEADER: "truncate", "Helicone-Model-Override": "gpt-4o"},
        max_retries=0,
    ).chat.completions.with_raw_response.create(
        model="deployment-without-registry-name",
        max_tokens=OUTPUT,
        messages=[{"role": "user", "content": prose(12_000, 6)}],
    )
    raw.parse()
    assert estimate(received(mock_provider)["messages"][0]["content"]) <= BUDGET
    found = facts(gw, raw.headers["helicone-id"])
    assert (found["model"], found["fits"], found["cut_texts"]) == ("gpt-4o", True, 1)


# -- fit() directly, over a registry with one small model -------------------------------------------------

TINY = ModelEntry(
    id="tiny",
    name="Tiny",
    author="test",
    release_date="2025-01-01",
    context_length=3000,
    max_output_tokens=500,
    input_modalities=("text", "image"),
    output_modalities=("text",),
    capabilities=Capabilities(vision=True),
    providers=(
        ProviderEndpoint("openai", "tiny-2025"),
        ProviderEndpoint("openrouter", "test/tiny", context_length=6000),
    ),
)
REGISTRY = Registry([TINY])
#: 3,000 less the default reserve (the model's 500 maximum output) less the 256-token minimum margin.
TINY_BUDGET = 3000 - 500 - 256


def encode(body: dict[str, Any]) -> bytes:
    return msgspec.json.encode(body)


def decode(body: bytes | None) -> dict[str, Any]:
    assert body is not None
    result: dict[str, Any] = msgspec.json.decode(body)
    return result


def number(facts: dict[str, object], name: str) -> int:
    value = facts[name]
    assert isinstance(value, int)
    return value


def test_middle_out_removes_a_tool_call_with_its_results() -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "start"}]
    for i in range(8):
        call = {"id": f"call_{i}", "type": "function", "function": {"name": "lookup", "arguments": '{"n": 1}'}}
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        messages.append({"role": "tool", "tool_call_id": f"call_{i}", "content": prose(400, i)})
        messages.append({"role": "tool", "tool_call_id": f"call_{i}", "content": "second result"})
    messages.append({"role": "user", "content": "and now?"})
    fitted = fit(encode({"model": "tiny", "messages": messages}), "middle-out", REGISTRY, None, False)
    assert fitted.problem is None
    kept = decode(fitted.body)["messages"]
    assert kept[0] == messages[0] and kept[-1] == messages[-1]
    calls = [m["tool_calls"][0]["id"] for m in kept if m.get("tool_calls")]
    answered = [m["tool_call_id"] for m in kept if m["role"] == "tool"]
    assert answered == [c for c in calls for _ in range(2)]  # each kept call with both its results
    assert 0 < len(calls) < 8
    assert fitted.facts["removed_messages"] == len(messages) - len(kept)


def test_the_budget_subtracts_the_requested_output_and_the_margin() -> None:
    text = prose(900, 7)
    body = {"model": "tiny", "messages": [{"role": "user", "content": text}]}
    fits_default = fit(encode(body), "truncate", REGISTRY, None, False)
    assert fits_default.facts["budget"] == TINY_BUDGET and fits_default.facts["output_reserve"] == 500
    asked = fit(encode(body | {"max_completion_tokens": 2000}), "truncate", REGISTRY, None, False)
    assert asked.facts["budget"] == 3000 - 2000 - 256 and number(asked.facts, "tokens_after") <= 744
    none_left = fit(encode(body | {"max_tokens": 2900}), "truncate", REGISTRY, None, False)
    assert none_left.body is None and "leaves no room" in str(none_left.problem)


def test_what_is_not_text_over_the_budget_cannot_fit_and_goes_on_unchanged() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    content = [{"type": "text", "text": prose(200, 8)}, image]
    body = {"model": "tiny", "messages": [{"role": "user", "content": content}]}
    assert IMAGE_TOKENS > TINY_BUDGET
    strategies: tuple[TokenLimitHandler, ...] = ("truncate", "middle-out")
    for strategy in strategies:
        fitted = fit(encode(body), strategy, REGISTRY, None, False)
        assert fitted.body is None
        assert fitted.facts["fits"] is False and fitted.facts["changed"] is False
        assert fitted.problem is not None and fitted.problem.startswith("cannot fit")


def test_fallback_without_a_second_model_goes_on_unchanged() -> None:
    body = {"model": "tiny", "messages": [{"role": "user", "content": prose(5000, 9)}]}
    fitted = fit(encode(body), "fallback", REGISTRY, None, False)
    assert fitted.body is None and "no second model" in str(fitted.problem)
    listed = fit(encode(body | {"model": "tiny , gpt-4o, gpt-4.1"}), "fallback", REGISTRY, None, False)
    assert decode(listed.body)["model"] == "gpt-4o"  # only the first two are considered


def test_fallback_keeps_the_gateways_exclusions() -> None:
    body = {"model": "!azure, tiny/openai, tiny/openrouter", "messages": [{"role": "user", "content": prose(3000, 9)}]}
    fitted = fit(encode(body), "fallback", REGISTRY, None, True)
    assert decode(fitted.body)["model"] == "!azure,tiny/openrouter"
    assert fitted.facts["fallback_context_length"] == 6000  # the provider's own context length


def test_model_names_resolve_with_dates_providers_and_the_override() -> None:
    body = {"messages": [{"role": "user", "content": "hi"}]}
    for model, via_gateway, length in (
        ("tiny-2025", False, 3000),  # a provider's id for the model
        ("tiny-2025-06-01", False, 3000),  # a dated snapshot
        ("tiny-latest", False, 3000),
        ("test/tiny", False, 3000),  # OpenRouter's id, on the pass-through proxy
        ("tiny/openrouter", True, 6000),  # the gateway's model/provider: that provider's context
        ("tiny/openai/eu-deployment", True, 3000),
    ):
        fitted = fit(encode(body | {"model": model}), "truncate", REGISTRY, None, via_gateway)
        assert fitted.facts["context_length"] == length, model
    overridden = fit(encode(body | {"model": "unknown-model"}), "truncate", REGISTRY, "tiny", False)
    assert overridden.facts["model"] == "tiny" and overridden.problem is None
    missing = fit(encode(body), "truncate", REGISTRY, None, False)
    assert "no model in the body" in str(missing.problem)


@pytest.mark.parametrize("body", [b"", b"[1, 2]", b"{not json", b'"text"'])
def test_an_unreadable_body_goes_on_unchanged(body: bytes) -> None:
    fitted = fit(body, "middle-out", REGISTRY, None, False)
    assert fitted.body is None and fitted.problem == "body is not a JSON object"
    assert fitted.facts == {"strategy": "middle-out", "applied": False, "reason": "body is not a JSON object"}


def test_a_body_without_a_conversation_goes_on_unchanged() -> None:
    fitted = fit(encode({"model": "tiny", "embedding_input": "x" * 20000}), "truncate", REGISTRY, None, False)
    assert fitted.body is None and "no messages, input or prompt" in str(fitted.problem)


def test_truncate_cuts_long_texts_to_a_common_cap_and_keeps_short_ones_whole() -> None:
    long_a, long_b = prose(2000, 11), prose(1200, 12)
    messages = [
        {"role": "user", "content": [{"type": "text", "text": long_a}, {"type": "text", "text": "short part"}]},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": long_b},
    ]
    fitted = fit(encode({"model": "tiny", "messages": messages}), "truncate", REGISTRY, None, False)
    sent = decode(fitted.body)["messages"]
    first, second = sent[0]["content"][0]["text"], sent[2]["content"]
    assert sent[0]["content"][1]["text"] == "short part" and sent[1]["content"] == "ok"
    assert " ".join(long_a.split()).startswith(" ".join(first.split()))
    assert " ".join(long_b.split()).startswith(" ".join(second.split()))
    assert abs(estimate(first) - estimate(second)) <= 8  # the same cap for both
    assert fitted.facts["cut_texts"] == 2 and number(fitted.facts, "tokens_after") <= TINY_BUDGET


def test_anthropic_system_blocks_and_legacy_prompts_are_texts_too() -> None:
    system = [{"type": "text", "text": prose(3000, 13)}]
    body = {"model": "tiny", "system": system, "messages": [{"role": "user", "content": "hi"}]}
    fitted = fit(encode(body), "middle-out", REGISTRY, None, False)
    kept = decode(fitted.body)
    assert ELISION in kept["system"][0]["text"] and kept["messages"] == body["messages"]
    prompt = fit(encode({"model": "tiny", "prompt": prose(3000, 14)}), "truncate", REGISTRY, None, False)
    assert estimate(decode(prompt.body)["prompt"]) <= TINY_BUDGET
