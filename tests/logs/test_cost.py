"""Cost from usage: hand-computed expectations from genai-prices' own price data, the override table,
and agreement with genai-prices' ``calc_price`` across whole provider catalogues."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from genai_prices import Usage as PriceUsage
from genai_prices import __version__ as genai_prices_version
from genai_prices import calc_price
from genai_prices.data_snapshot import get_snapshot
from genai_prices.types import ModelInfo

from heliport.logs import cost as cost_module
from heliport.logs.cost import (
    GENAI_PRICES_SOURCE,
    OVERRIDES_PATH,
    PROVIDER_IDS,
    Cost,
    PriceOverride,
    compute_cost,
    load_price_overrides,
)
from heliport.logs.usage import Usage, extract_usage

FIXTURES = Path(__file__).with_name("fixtures")
#: Fixed request time: a few genai-prices tables change by date or time of day.
AT = datetime(2025, 9, 1, 12, 0, tzinfo=UTC)


def price_of(provider_id: str, model: str, key: str) -> Decimal:
    """The USD/MTok price genai-prices holds, so a data update fails here, loudly, not in the arithmetic."""
    _, info = get_snapshot().find_provider_model(model, None, provider_id, None)
    value = info.get_prices(AT).__dict__[key]
    if not isinstance(value, Decimal):
        value = value.base
    return value


def usage_from(name: str, provider: str) -> Usage:
    body = (FIXTURES / name).read_bytes().decode()
    return extract_usage(provider=provider, path="/", response_body=body, is_stream=name.endswith(".sse"))


def test_source_names_installed_version() -> None:
    assert GENAI_PRICES_SOURCE.removeprefix("genai-prices@") == genai_prices_version


def test_gpt_4o_mini_stream_by_hand() -> None:
    assert (price_of("openai", "gpt-4o-mini", "input_mtok"), price_of("openai", "gpt-4o-mini", "output_mtok")) == (
        Decimal("0.15"),
        Decimal("0.6"),
    )
    assert price_of("openai", "gpt-4o-mini", "cache_read_mtok") == Decimal("0.075")
    usage = usage_from("openai/chat_stream_usage.sse", "OPENAI")  # 1543 prompt of which 1408 cached, 17 out.
    expected = (Decimal(1543 - 1408) * Decimal("0.15") + 1408 * Decimal("0.075") + 17 * Decimal("0.6")) / 1_000_000
    assert expected == Decimal("0.00013605")
    assert compute_cost(model=usage.response_model, provider="OPENAI", usage=usage, at=AT) == Cost(
        amount=expected, source=GENAI_PRICES_SOURCE
    )


def test_reasoning_tokens_are_not_billed_twice() -> None:
    """o4-mini: 300 completion tokens of which 192 reasoning -> 300 output tokens billed, not 492."""
    assert (price_of("openai", "o4-mini", "input_mtok"), price_of("openai", "o4-mini", "output_mtok")) == (
        Decimal("1.1"),
        Decimal("4.4"),
    )
    assert price_of("openai", "o4-mini", "cache_read_mtok") == Decimal("0.275")
    usage = usage_from("openai/chat_completion.json", "OPENAI")
    assert (usage.prompt_tokens, usage.prompt_cache_read_tokens, usage.completion_tokens) == (2006, 1920, 300)
    got = compute_cost(model=usage.response_model, provider="OPENAI", usage=usage, at=AT)
    assert got.amount == (86 * Decimal("1.1") + 1920 * Decimal("0.275") + 300 * Decimal("4.4")) / 1_000_000
    assert got.amount == Decimal("0.0019426")


def test_claude_cache_reads_and_5m_1h_writes_by_hand() -> None:
    prices = {
        key: price_of("anthropic", "claude-opus-4-1", key)
        for key in ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok", "cache_write_1h_mtok")
    }
    assert prices == {
        "input_mtok": Decimal("15"),
        "output_mtok": Decimal("75"),
        "cache_read_mtok": Decimal("1.5"),
        "cache_write_mtok": Decimal("18.75"),  # the 5-minute write price
        "cache_write_1h_mtok": Decimal("30"),
    }
    usage = usage_from("anthropic/message.json", "ANTHROPIC")  # 100 uncached, 2000 read, 500 5m + 300 1h, 250 out
    got = compute_cost(model=usage.response_model, provider="ANTHROPIC", usage=usage, at=AT)
    expected = (100 * 15 + 2000 * Decimal("1.5") + 500 * Decimal("18.75") + 300 * 30 + 250 * 75) / Decimal(1_000_000)
    assert got == Cost(amount=expected, source=GENAI_PRICES_SOURCE)
    assert got.amount == Decimal("0.041625")


def test_claude_sonnet_stream_and_long_context_tier() -> None:
    usage = usage_from("anthropic/message_stream.sse", "ANTHROPIC")
    got = compute_cost(model=usage.response_model, provider="ANTHROPIC", usage=usage, at=AT)
    # 42 uncached x $3, 12000 read x $0.30, 1200 5m-write x $3.75, 400 1h-write x $6, 387 out x $15 (per MTok)
    assert got.amount == Decimal("0.016431")
    # Over 200k input tokens the whole request moves to the long-context tier ($6 in / $22.50 out).
    big = Usage(prompt_tokens=250_000, completion_tokens=1000, source="response")
    assert compute_cost(model="claude-sonnet-4-5", provider="ANTHROPIC", usage=big, at=AT).amount == Decimal("1.5225")


def test_gemini_audio_cache_and_thoughts_by_hand() -> None:
    usage = usage_from("gemini/generate_content.json", "GOOGLE")
    assert price_of("google", "gemini-2.5-flash", "input_audio_mtok") == Decimal("1")
    got = compute_cost(model=usage.response_model, provider="GOOGLE", usage=usage, at=AT)
    # input 5300 = 4096 cached ($0.03) + 1000 audio ($1) + 204 text ($0.30); output 610 incl. thoughts ($2.50)
    expected = (4096 * Decimal("0.03") + 1000 * 1 + 204 * Decimal("0.3") + 610 * Decimal("2.5")) / 1_000_000
    assert got.amount == expected == Decimal("0.00270908")


def test_cached_audio_split_unknown_is_unpriced() -> None:
    """Cache reads and audio input without the cache's modality split: genai-prices will not guess how
    much cached audio (its own price) there was, and neither do we."""
    usage = Usage(
        prompt_tokens=5300,
        completion_tokens=10,
        prompt_cache_read_tokens=4096,
        prompt_audio_tokens=1000,
        source="response",
    )
    got = compute_cost(model="gemini-2.5-flash", provider="GOOGLE", usage=usage, at=AT)
    assert got == Cost(
        amount=None, source="unpriced: cache_read_tokens and input_audio_tokens leave cache_audio_read_tokens ambiguous"
    )


@pytest.mark.parametrize("provider", ["AZURE", "https://api.openai.com", "https://myres.openai.azure.com"])
def test_other_labels_for_openai_models(provider: str) -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=10, source="response")
    got = compute_cost(model="gpt-4o-mini", provider=provider, usage=usage, at=AT)
    assert got == Cost(amount=Decimal("0.000156"), source=GENAI_PRICES_SOURCE)


def test_zero_usage_costs_zero() -> None:
    usage = Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0, source="response")
    assert compute_cost(model="gpt-4o-mini", provider="OPENAI", usage=usage, at=AT) == Cost(
        amount=Decimal(0), source=GENAI_PRICES_SOURCE
    )


@pytest.mark.parametrize(
    ("model", "provider", "usage", "source"),
    [
        ("gpt-4o-mini", "OPENAI", Usage(source="absent"), "no usage"),
        (None, "OPENAI", Usage(prompt_tokens=5, completion_tokens=5, source="response"), "unpriced: no model"),
        (
            "totally-unknown-model-9000",
            "OPENAI",
            Usage(prompt_tokens=5, completion_tokens=5, source="response"),
            "unpriced: unknown model 'totally-unknown-model-9000' for provider 'openai'",
        ),
        (
            "gpt-4o-mini",
            "DEEPINFRA",
            Usage(prompt_tokens=5, completion_tokens=5, source="response"),
            "unpriced: provider 'DEEPINFRA' has no genai-prices table",
        ),
        (
            "gpt-4o-mini",
            "https://llm.internal.example",
            Usage(prompt_tokens=5, completion_tokens=5, source="response"),
            "unpriced: unknown model 'gpt-4o-mini' for provider 'https://llm.internal.example'",
        ),
    ],
)
def test_unpriced_says_why(model: str | None, provider: str, usage: Usage, source: str) -> None:
    assert compute_cost(model=model, provider=provider, usage=usage, at=AT) == Cost(amount=None, source=source)


def test_inconsistent_usage_is_unpriced_not_negative() -> None:
    usage = Usage(prompt_tokens=10, completion_tokens=1, prompt_cache_read_tokens=50, source="response")
    got = compute_cost(model="gpt-4o-mini", provider="OPENAI", usage=usage, at=AT)
    assert got.amount is None and got.source.startswith("unpriced: ")


def test_time_dependent_prices_use_request_time() -> None:
    """DeepSeek's table has an off-peak window (UTC); the price follows ``at``."""
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=0, source="response")
    peak = compute_cost(model="deepseek-chat", provider="DEEPSEEK", usage=usage, at=datetime(2025, 9, 1, 3, tzinfo=UTC))
    off = compute_cost(model="deepseek-chat", provider="DEEPSEEK", usage=usage, at=datetime(2025, 9, 1, 20, tzinfo=UTC))
    for at, got in ((datetime(2025, 9, 1, 3, tzinfo=UTC), peak), (datetime(2025, 9, 1, 20, tzinfo=UTC), off)):
        reference = calc_price(
            PriceUsage(input_tokens=1_000_000), "deepseek-chat", provider_id="deepseek", genai_request_timestamp=at
        )
        assert got.amount == reference.total_price
    assert peak.amount != off.amount


# -- override table ----------------------------------------------------------------------------------


def test_repo_override_table_example() -> None:
    table = load_price_overrides(OVERRIDES_PATH)
    assert table["acme-llama-3.1-70b-selfhosted"] == PriceOverride(
        input=Decimal("0.20"), output=Decimal("0.60"), cache_read=Decimal("0.02"), cache_write=Decimal("0.25")
    )
    usage = Usage(prompt_tokens=1000, completion_tokens=100, prompt_cache_read_tokens=500, source="response")
    got = compute_cost(model="acme-llama-3.1-70b-selfhosted", provider="http://10.0.0.7:8000", usage=usage)
    # 500 uncached x $0.20 + 500 read x $0.02 + 100 out x $0.60, per million
    assert got == Cost(amount=Decimal("0.00017"), source="override")


def test_override_wins_only_on_exact_model(tmp_path: Path) -> None:
    path = tmp_path / "overrides.json"
    path.write_text('{"gpt-4o-mini": {"input": 1, "output": "2"}}')
    table = load_price_overrides(path)
    usage = Usage(prompt_tokens=1000, completion_tokens=500, prompt_cache_read_tokens=400, source="response")
    exact = compute_cost(model="gpt-4o-mini", provider="OPENAI", usage=usage, at=AT, overrides=table)
    # No cache_read price: cached tokens stay at the input price.
    assert exact == Cost(amount=Decimal("0.002"), source="override")
    dated = compute_cost(model="gpt-4o-mini-2024-07-18", provider="OPENAI", usage=usage, at=AT, overrides=table)
    assert dated.source == GENAI_PRICES_SOURCE


def test_override_file_errors(tmp_path: Path) -> None:
    assert load_price_overrides(tmp_path / "missing.json") == {}
    bad = tmp_path / "bad.json"
    bad.write_text('{"m": {"input": "0.1"}}')  # output is required
    with pytest.raises(Exception, match="output"):
        load_price_overrides(bad)


# -- agreement with genai-prices' own calc_price ------------------------------------------------------

USAGES = [
    Usage(prompt_tokens=1234, completion_tokens=567, source="response"),
    Usage(
        prompt_tokens=30_000,
        completion_tokens=2_000,
        prompt_cache_read_tokens=20_000,
        prompt_cache_write_tokens=6_000,
        prompt_cache_write_5m_tokens=4_000,
        prompt_cache_write_1h_tokens=2_000,
        reasoning_tokens=1_500,
        prompt_audio_tokens=1_000,
        completion_audio_tokens=100,
        source="response",
    ),
    Usage(prompt_tokens=300_000, completion_tokens=40_000, prompt_cache_read_tokens=100_000, source="response"),
    Usage(
        prompt_tokens=9_000,
        completion_tokens=300,
        prompt_cache_read_tokens=4_000,
        prompt_audio_tokens=3_000,
        prompt_cache_read_audio_tokens=1_000,
        source="response",
    ),
]


def reference_usage(usage: Usage) -> PriceUsage:
    return PriceUsage(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        cache_read_tokens=usage.prompt_cache_read_tokens,
        cache_write_tokens=usage.prompt_cache_write_tokens,
        cache_write_5m_tokens=usage.prompt_cache_write_5m_tokens,
        cache_write_1h_tokens=usage.prompt_cache_write_1h_tokens,
        input_audio_tokens=usage.prompt_audio_tokens,
        output_audio_tokens=usage.completion_audio_tokens,
        output_reasoning_tokens=usage.reasoning_tokens,
        cache_audio_read_tokens=usage.prompt_cache_read_audio_tokens,
    )


def model_ref(info: ModelInfo) -> str:
    """A name the model's own match rule accepts (some ids, e.g. Fireworks', are not matched by it)."""
    if info.is_match(info.id):
        return info.id
    clauses: list[object] = [info.match]
    while clauses:
        clause = clauses.pop(0)
        for attr in ("equals", "starts_with"):
            value = getattr(clause, attr, None)
            if isinstance(value, str) and info.is_match(value):
                return value
        clauses.extend(getattr(clause, "or_", None) or [])
    return info.id


#: One label per genai-prices provider we map to (every model of each is compared).
LABELS = sorted({provider_id: label for label, provider_id in PROVIDER_IDS.items()}.values())


@pytest.mark.parametrize("label", LABELS)
def test_fast_path_equals_genai_prices_calc_price(label: str) -> None:
    provider_id = PROVIDER_IDS[label]
    provider = next(p for p in get_snapshot().providers if p.id == provider_id)
    compared = 0
    for info in provider.models:
        ref = model_ref(info)
        for usage in USAGES:
            ours = compute_cost(model=ref, provider=label, usage=usage, at=AT)
            if ours.source.startswith("unpriced: unknown model"):  # A few ids are not matched by their own rules.
                with pytest.raises(LookupError):
                    calc_price(reference_usage(usage), ref, provider_id=provider_id)
                continue
            try:
                reference = calc_price(reference_usage(usage), ref, provider_id=provider_id, genai_request_timestamp=AT)
            except ValueError:  # genai-prices refuses ambiguous usage; we must refuse it too.
                assert ours.amount is None, (ref, usage)
                continue
            assert ours == Cost(amount=reference.total_price, source=GENAI_PRICES_SOURCE), (ref, usage)
            compared += 1
    assert compared >= 2 * len(provider.models)  # Most models priced under most usage shapes.


def test_lookups_are_cached() -> None:
    usage = Usage(prompt_tokens=10, completion_tokens=10, source="response")
    compute_cost(model="gpt-4o-mini", provider="OPENAI", usage=usage)
    before = cost_module._lookup.cache_info().hits
    compute_cost(model="gpt-4o-mini", provider="OPENAI", usage=usage)
    assert cost_module._lookup.cache_info().hits == before + 1
