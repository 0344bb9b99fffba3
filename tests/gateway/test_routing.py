"""Routing: the model string -> ordered provider attempts, as Helicone's provider-routing doc
describes (cheapest first, equal cost spread, pins, deployments, chains, exclusions, 400s that say why)."""

from __future__ import annotations

import json
import random
from collections import Counter
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from heliport.errors import RequestError
from heliport.gateway.registry import KNOWN_PROVIDERS, ModelEntry, ProviderEndpoint, Registry
from heliport.gateway.routing import Candidate, RoutingError, plan


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.load()


def everywhere(provider: str) -> bool:
    return True


def only(*providers: str) -> Any:
    return lambda provider: provider in providers


def route(spec: str, registry: Registry, available: Any = everywhere, seed: int = 0, **kwargs: Any) -> list[Candidate]:
    return plan(spec, registry, available=available, rng=random.Random(seed), **kwargs)


def attempts(candidates: list[Candidate]) -> list[tuple[str, str]]:
    return [(c.provider, c.provider_model) for c in candidates]


class FixedPrices(Registry):
    """A registry whose prices are given (so the order under test does not move with genai-prices)."""

    def __init__(self, models: list[ModelEntry], prices: dict[str, Decimal | None]) -> None:
        super().__init__(models)
        self._fixed = prices

    def price_per_mtok(self, endpoint: ProviderEndpoint) -> Decimal | None:
        return self._fixed[endpoint.provider]


def _model(model_id: str, providers: list[tuple[str, str]]) -> ModelEntry:
    return msgspec.convert(
        {
            "id": model_id,
            "name": model_id,
            "author": "meta-llama",
            "release_date": "2025-01-01",
            "context_length": 131072,
            "max_output_tokens": 8192,
            "input_modalities": ["text"],
            "output_modalities": ["text"],
            "capabilities": {"tools": True},
            "providers": [{"provider": p, "model": m} for p, m in providers],
        },
        ModelEntry,
    )


@pytest.fixture
def priced() -> FixedPrices:
    """openai 3.00, azure and groq 1.00 (a tie), openrouter unknown."""
    model = _model("m", [("openai", "m-oai"), ("openrouter", "vendor/m"), ("azure", "m-az"), ("groq", "m-groq")])
    prices = {"openai": Decimal("3"), "azure": Decimal("1"), "groq": Decimal("1.00"), "openrouter": None}
    return FixedPrices([model], prices)


# -- automatic expansion ----------------------------------------------------------------------------


def test_cheapest_first_ties_shuffled_unknown_price_last(priced: FixedPrices) -> None:
    for seed in range(20):
        providers = [c.provider for c in route("m", priced, seed=seed)]
        assert set(providers[:2]) == {"azure", "groq"}
        assert providers[2:] == ["openai", "openrouter"]


def test_a_seeded_rng_makes_the_order_reproducible(priced: FixedPrices) -> None:
    orders = {tuple(c.provider for c in route("m", priced, seed=seed)) for seed in range(40)}
    assert orders == {("azure", "groq", "openai", "openrouter"), ("groq", "azure", "openai", "openrouter")}
    assert route("m", priced, seed=5) == route("m", priced, seed=5)


def test_equal_cost_providers_share_the_load(priced: FixedPrices) -> None:
    rng = random.Random(2024)
    firsts = Counter(plan("m", priced, available=everywhere, rng=rng)[0].provider for _ in range(1000))
    assert set(firsts) == {"azure", "groq"}
    assert 420 <= firsts["azure"] <= 580


def test_equal_cost_spread_with_the_real_registry(registry: Registry) -> None:
    # gpt-4o-mini costs the same on OpenAI, Azure and OpenRouter: each must lead sometimes.
    rng = random.Random(7)
    firsts = Counter(plan("gpt-4o-mini", registry, available=everywhere, rng=rng)[0].provider for _ in range(600))
    assert set(firsts) == {"openai", "azure", "openrouter"}
    assert min(firsts.values()) >= 120


def test_real_plans_are_in_price_order(registry: Registry) -> None:
    for entry in registry.models():
        candidates = route(entry.id, registry)
        assert {c.provider for c in candidates} == {e.provider for e in entry.providers}
        prices = [registry.price_per_mtok(entry.endpoint(c.provider)) for c in candidates]  # type: ignore[arg-type]
        known = [p for p in prices if p is not None]
        assert known == sorted(known), entry.id
        assert prices == [*known, *[None] * (len(prices) - len(known))], entry.id  # unknown prices last


def test_a_dearer_provider_comes_after_cheaper_ones(registry: Registry) -> None:
    # Claude Sonnet 4.5 costs 10% more on Bedrock's regional profiles than on Anthropic or OpenRouter.
    entry = registry.get("claude-sonnet-4-5")
    assert entry is not None
    bedrock, anthropic = entry.endpoint("bedrock"), entry.endpoint("anthropic")
    assert registry.price_per_mtok(bedrock) > registry.price_per_mtok(anthropic)  # type: ignore[arg-type, operator]
    for seed in range(10):
        assert route("claude-sonnet-4-5", registry, seed=seed)[-1].provider == "bedrock"


def test_automatic_expansion_uses_each_providers_own_id(registry: Registry) -> None:
    candidates = route("claude-sonnet-4", registry, available=only("anthropic", "bedrock"))
    assert sorted(attempts(candidates)) == [
        ("anthropic", "claude-sonnet-4-20250514"),
        ("bedrock", "us.anthropic.claude-sonnet-4-20250514-v1:0"),
    ]
    assert all(c.model == "claude-sonnet-4" and c.deployment is None and not c.pinned for c in candidates)


def test_unconfigured_providers_are_not_planned(registry: Registry) -> None:
    candidates = route("gpt-4o-mini", registry, available=only("azure"))
    assert candidates == [Candidate("gpt-4o-mini", "azure", "gpt-4o-mini", None, pinned=False)]


# -- pinned providers and deployments -------------------------------------------------------------


def test_a_named_provider_is_the_only_attempt(registry: Registry) -> None:
    assert route("gpt-4o-mini/openai", registry) == [
        Candidate("gpt-4o-mini", "openai", "gpt-4o-mini", None, pinned=True)
    ]
    assert route("claude-opus-4-1/bedrock", registry) == [
        Candidate("claude-opus-4-1", "bedrock", "us.anthropic.claude-opus-4-1-20250805-v1:0", None, pinned=True)
    ]


def test_a_provider_id_is_an_alias_of_its_registry_model(registry: Registry) -> None:
    assert route("claude-sonnet-4-20250514/bedrock", registry) == [
        Candidate("claude-sonnet-4", "bedrock", "us.anthropic.claude-sonnet-4-20250514-v1:0", None, pinned=True)
    ]
    groq = route("llama-3.3-70b-versatile", registry, available=only("groq", "bedrock"))
    assert {c.model for c in groq} == {"llama-3.3-70b"}
    assert sorted(attempts(groq)) == [
        ("bedrock", "us.meta.llama3-3-70b-instruct-v1:0"),
        ("groq", "llama-3.3-70b-versatile"),
    ]


def test_a_known_model_on_an_unlisted_provider_is_sent_as_given(registry: Registry) -> None:
    assert route("gpt-4o-mini/groq", registry) == [Candidate("gpt-4o-mini", "groq", "gpt-4o-mini", None, pinned=True)]


def test_an_unknown_model_goes_only_through_the_named_provider(registry: Registry) -> None:
    assert route("my-finetune-2026/openai", registry) == [
        Candidate("my-finetune-2026", "openai", "my-finetune-2026", None, pinned=True)
    ]


def test_provider_names_are_case_insensitive(registry: Registry) -> None:
    assert attempts(route("gpt-4o-mini/OpenAI", registry)) == [("openai", "gpt-4o-mini")]


def test_a_configured_deployment_is_used_by_name(registry: Registry) -> None:
    configured = {("azure", "eu-frankfurt"), ("bedrock", "eu.anthropic.claude-sonnet-4-20250514-v1:0")}

    def deployments(provider: str, deployment: str) -> bool:
        return (provider, deployment) in configured

    assert route("gpt-4o/azure/eu-frankfurt", registry, deployments=deployments) == [
        Candidate("gpt-4o", "azure", "gpt-4o", "eu-frankfurt", pinned=True)
    ]
    profile = route(
        "claude-sonnet-4/bedrock/eu.anthropic.claude-sonnet-4-20250514-v1:0", registry, deployments=deployments
    )
    assert [(c.provider, c.deployment) for c in profile] == [("bedrock", "eu.anthropic.claude-sonnet-4-20250514-v1:0")]
    # The deployment belongs to its provider: the same name under another provider is not configured.
    with pytest.raises(RoutingError, match="deployment 'eu-frankfurt' is not configured for provider 'openai'"):
        route("gpt-4o/openai/eu-frankfurt", registry, deployments=deployments)


# -- slashes in model ids -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        # An unknown OpenRouter-style id named with its provider goes through as given.
        (
            "meta-llama/llama-3.3-70b/openrouter",
            [("meta-llama/llama-3.3-70b", "openrouter", "meta-llama/llama-3.3-70b")],
        ),
        # A known one resolves to its registry model.
        (
            "meta-llama/llama-3.3-70b-instruct/openrouter",
            [("llama-3.3-70b", "openrouter", "meta-llama/llama-3.3-70b-instruct")],
        ),
        ("openai/gpt-oss-120b/groq", [("gpt-oss-120b", "groq", "openai/gpt-oss-120b")]),
        ("openai/gpt-oss-120b/bedrock", [("gpt-oss-120b", "bedrock", "openai.gpt-oss-120b-1:0")]),
        # A first part that happens to be a provider id is part of the model.
        ("openai/my-model/openrouter", [("openai/my-model", "openrouter", "openai/my-model")]),
    ],
)
def test_a_provider_is_only_a_known_provider_at_the_end(
    registry: Registry, spec: str, expected: list[tuple[str, str, str]]
) -> None:
    assert [(c.model, c.provider, c.provider_model) for c in route(spec, registry)] == expected


def test_a_bare_openrouter_style_id_of_a_known_model_routes_automatically(registry: Registry) -> None:
    candidates = route("openai/gpt-4o-mini", registry, available=only("openai", "azure"))
    assert sorted(attempts(candidates)) == [("azure", "gpt-4o-mini"), ("openai", "gpt-4o-mini")]
    assert all(not c.pinned for c in candidates)


def test_a_slash_in_a_deployment_name_is_not_a_deployment(registry: Registry) -> None:
    with pytest.raises(RoutingError, match="too many '/' parts"):
        route("gpt-4o/azure/eu/frankfurt", registry, deployments=lambda p, d: True)


# -- chains and exclusions ------------------------------------------------------------------------


def test_a_chain_is_tried_in_the_given_order(registry: Registry) -> None:
    candidates = route("claude-sonnet-4/anthropic,gpt-4o-mini/openai,gemini-2.5-flash/google", registry)
    assert [(c.model, c.provider) for c in candidates] == [
        ("claude-sonnet-4", "anthropic"),
        ("gpt-4o-mini", "openai"),
        ("gemini-2.5-flash", "google"),
    ]


def test_a_pinned_provider_then_every_other_provider_without_repeats(registry: Registry) -> None:
    for seed in range(10):
        candidates = route("gpt-4o-mini/azure,gpt-4o-mini", registry, seed=seed)
        assert candidates[0] == Candidate("gpt-4o-mini", "azure", "gpt-4o-mini", None, pinned=True)
        assert sorted(c.provider for c in candidates[1:]) == ["openai", "openrouter"]
        assert not any(c.pinned for c in candidates[1:])


def test_duplicate_attempts_are_dropped(registry: Registry) -> None:
    assert attempts(route("gpt-4o-mini/openai,gpt-4o-mini/openai", registry)) == [("openai", "gpt-4o-mini")]
    # Different deployments of one provider are different attempts.
    candidates = route("gpt-4o/azure/a,gpt-4o/azure/b,gpt-4o/azure/a", registry, deployments=lambda p, d: True)
    assert [c.deployment for c in candidates] == ["a", "b"]


def test_an_unconfigured_pinned_provider_falls_through_to_the_next_entry(registry: Registry) -> None:
    candidates = route("gpt-4o-mini/azure,gpt-4o-mini/openai", registry, available=only("openai"))
    assert attempts(candidates) == [("openai", "gpt-4o-mini")]


def test_exclusions_keep_providers_out_of_automatic_expansion(registry: Registry) -> None:
    for seed in range(20):
        assert {c.provider for c in route("!openai,gpt-4o-mini", registry, seed=seed)} == {"azure", "openrouter"}
    assert attempts(route("!openai,!openrouter,gpt-4o-mini", registry)) == [("azure", "gpt-4o-mini")]
    # Wherever they stand in the string, and whatever their case.
    assert attempts(route("gpt-4o-mini,!OpenAI,!openrouter", registry)) == [("azure", "gpt-4o-mini")]


def test_exclusions_apply_to_every_expanded_entry(registry: Registry) -> None:
    candidates = route("!openrouter,claude-haiku-4-5,gpt-4o-mini", registry)
    assert "openrouter" not in {c.provider for c in candidates}
    assert {c.model for c in candidates} == {"claude-haiku-4-5", "gpt-4o-mini"}


# -- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("", "model is empty"),
        ("   ", "model is empty"),
        ("gpt-4o-mini,,gpt-4o-mini/openai", "has an empty entry (entry 2)"),
        ("gpt-4o-mini,", "has an empty entry (entry 2)"),
        ("nonsense,,more", "has an empty entry (entry 2)"),
        ("!", "'!' must be followed by the provider to exclude"),
        ("!,gpt-4o-mini", "'!' must be followed by the provider to exclude"),
        ("!nosuch,gpt-4o-mini", "cannot exclude unknown provider 'nosuch'"),
        ("gpt-4o-mini/nosuchprovider", "unknown provider 'nosuchprovider' in 'gpt-4o-mini/nosuchprovider'"),
        ("gpt-4o/nosuch/deployment", "unknown provider 'nosuch' in 'gpt-4o/nosuch/deployment'"),
        ("gpt-4o/azure/eu/frankfurt", "'gpt-4o/azure/eu/frankfurt' has too many '/' parts"),
        ("gpt-4o/", "has an empty part between slashes"),
        ("/openai", "has an empty part between slashes"),
        ("!openai", "has only exclusions (!openai)"),
        ("!openai,!azure", "has only exclusions (!azure, !openai)"),
        ("no-such-model-anywhere", "unknown model 'no-such-model-anywhere': it is not in the model registry"),
        ("meta-llama/llama-9", "unknown model 'meta-llama/llama-9'"),
        (
            "gpt-4o-mini/openai,!openai",
            "provider 'openai' is both excluded (!openai) and named in 'gpt-4o-mini/openai'",
        ),
        ("gpt-4o/azure/not-configured", "deployment 'not-configured' is not configured for provider 'azure'"),
        (
            "!openai,!azure,!openrouter,gpt-4o-mini",
            "every provider of gpt-4o-mini (openai, azure, openrouter) is excluded",
        ),
    ],
)
def test_invalid_model_strings_are_a_400_that_says_why(registry: Registry, spec: str, reason: str) -> None:
    with pytest.raises(RoutingError) as caught:
        route(spec, registry)
    error = caught.value
    assert reason in error.message
    assert isinstance(error, RequestError)
    assert (error.status, error.code, error.param) == (400, "invalid_model", "model")
    assert json.loads(error.body()) == {
        "error": {"message": error.message, "type": "invalid_model", "param": "model", "code": "invalid_model"}
    }


def test_unknown_provider_errors_list_the_known_ones(registry: Registry) -> None:
    known = ", ".join(sorted(KNOWN_PROVIDERS))
    assert known.startswith("anthropic, azure, bedrock, cerebras, deepinfra, deepseek, fireworks, google, google-ai")
    for spec in ("gpt-4o-mini/nosuchprovider", "!nosuch,gpt-4o", "no-such-model"):
        with pytest.raises(RoutingError, match=f"known providers: {known}"):
            route(spec, registry)


def test_an_unknown_model_error_tells_how_to_send_it(registry: Registry) -> None:
    with pytest.raises(RoutingError) as caught:
        route("meta-llama/llama-9", registry)
    assert "'llama-9' is not a provider either" in caught.value.message
    assert "e.g. 'meta-llama/llama-9/openai'" in caught.value.message


def test_a_known_model_with_no_configured_provider_names_who_would_serve_it(registry: Registry) -> None:
    with pytest.raises(RoutingError) as caught:
        route("gpt-4o", registry, available=only("anthropic"))
    assert caught.value.message == (
        "no provider can serve model 'gpt-4o': "
        "gpt-4o is served by openai, azure, openrouter, and none of them is configured"
    )


def test_exclusions_are_mentioned_when_the_rest_is_not_configured(registry: Registry) -> None:
    with pytest.raises(
        RoutingError, match=r"served by openai, azure, openrouter \(after exclusions: azure, openrouter\)"
    ):
        route("!openai,gpt-4o-mini", registry, available=only("openai"))


def test_an_empty_plan_gives_every_entrys_reason(registry: Registry) -> None:
    with pytest.raises(RoutingError) as caught:
        route("gpt-4o-mini/azure,claude-sonnet-4", registry, available=only("groq"))
    assert caught.value.message == (
        "no provider can serve model 'gpt-4o-mini/azure,claude-sonnet-4': "
        "provider 'azure' is not configured (in 'gpt-4o-mini/azure'); "
        "claude-sonnet-4 is served by anthropic, bedrock, openrouter, vertex, and none of them is configured"
    )


def test_an_unknown_model_through_an_unconfigured_provider_is_a_400(registry: Registry) -> None:
    with pytest.raises(RoutingError, match=r"provider 'mistral' is not configured \(in 'my-model/mistral'\)"):
        route("my-model/mistral", registry, available=only("openai"))
