"""The model registry: its data (sane, priced, with real provider ids), loading errors that name the
entry, genai-prices lookups, and the two GET bodies checked against Helicone's documented shapes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import openai.types
import pytest

from heliport.gateway import registry as registry_module
from heliport.gateway.providers import PROVIDER_LABELS
from heliport.gateway.registry import (
    ENDPOINT_PROVIDERS,
    KNOWN_PROVIDERS,
    MODELS_PATH,
    PROVIDER_ALIASES,
    ModelEntry,
    Pricing,
    ProviderEndpoint,
    Registry,
)
from heliport.logs import cost


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.load()


def _entry(model_id: str, providers: list[dict[str, Any]], **fields: Any) -> ModelEntry:
    base = {
        "id": model_id,
        "name": model_id,
        "author": "openai",
        "release_date": "2025-01-01",
        "context_length": 1000,
        "max_output_tokens": 100,
        "input_modalities": ["text"],
        "output_modalities": ["text"],
        "capabilities": {"tools": True},
        "providers": providers,
    }
    return msgspec.convert({**base, **fields}, ModelEntry)


# -- the data ---------------------------------------------------------------------------------------

#: Author -> the provider that is the author's own API (where genai-prices must know the price).
AUTHOR_PROVIDER = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "google",
    "xai": "xai",
    "deepseek": "deepseek",
    "mistral": "mistral",
}


def test_the_file_has_no_duplicate_keys_anywhere() -> None:
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        counts = Counter(key for key, _ in items)
        duplicates.extend(key for key, n in counts.items() if n > 1)
        return dict(items)

    ids = json.loads(MODELS_PATH.read_text(), object_pairs_hook=pairs)
    assert duplicates == []
    # Helicone's docs promise "100+ models"; the registry is the data that keeps that promise.
    assert len(ids) == len(Registry.load().models()) >= 100


#: The OpenAI-compatible hosts of issue 25 (Helicone's slugs).
HOSTS = (
    "together",
    "fireworks",
    "cerebras",
    "perplexity",
    "deepinfra",
    "nebius",
    "novita",
    "hyperbolic",
    "nvidia",
    "llama",
)


def test_known_providers_are_the_gateways_families_and_hosts() -> None:
    families = {"openai", "anthropic", "azure", "bedrock", "google", "vertex", "xai", "groq", "deepseek", "mistral"}
    assert {*families, "openrouter", *HOSTS} == ENDPOINT_PROVIDERS
    # google-ai-studio is Helicone's name for the Gemini API: a model string may use it, the data never does.
    assert PROVIDER_ALIASES == {"google-ai-studio": "google"}
    assert ENDPOINT_PROVIDERS | {"google-ai-studio"} == KNOWN_PROVIDERS


def test_every_endpoint_names_a_known_provider_once(registry: Registry) -> None:
    for entry in registry.models():
        providers = [e.provider for e in entry.providers]
        assert providers, entry.id
        assert set(providers) <= ENDPOINT_PROVIDERS, entry.id
        assert len(providers) == len(set(providers)), entry.id


def test_every_provider_serves_registry_models(registry: Registry) -> None:
    served = Counter(e.provider for entry in registry.models() for e in entry.providers)
    assert set(served) == ENDPOINT_PROVIDERS
    for host in HOSTS:
        assert served[host] >= 3, (host, served[host])


#: Hosts genai-prices (0.2.5) has no price table for: their endpoints route (after priced ones) but
#: cannot be priced, and the public listing leaves them out. Every other endpoint must be priced.
UNPRICED_HOSTS = {"deepinfra": "DEEPINFRA", "nvidia": "NVIDIA", "llama": "LLAMA"}


def test_every_endpoint_is_priced_by_genai_prices_and_has_a_context_length(registry: Registry) -> None:
    unpriced = [
        (entry.id, e.provider, e.model)
        for entry in registry.models()
        for e in entry.providers
        if e.provider not in UNPRICED_HOSTS and registry.price_per_mtok(e) is None
    ]
    assert unpriced == []
    for entry in registry.models():
        assert entry.context_length > 0, entry.id
        for endpoint in entry.providers:
            assert (endpoint.context_length or entry.context_length) > 0, (entry.id, endpoint)


def test_the_unpriced_hosts_still_have_no_price_table(registry: Registry) -> None:
    # When genai-prices gains a table for one of them, this fails: map its label in logs/cost.py and
    # take it out of UNPRICED_HOSTS, so its endpoints are priced and listed.
    for provider, label in UNPRICED_HOSTS.items():
        assert PROVIDER_LABELS[provider] == label
        endpoints = [e for entry in registry.models() for e in entry.providers if e.provider == provider]
        assert endpoints and all(registry.price_per_mtok(e) is None for e in endpoints), provider
    assert "DEEPINFRA" not in cost.PROVIDER_IDS and "NVIDIA" not in cost.PROVIDER_IDS
    # Helicone maps LLAMA to Meta; genai-prices' Meta table prices Meta's own models, not the Llama API's.
    assert cost.PROVIDER_IDS["LLAMA"] == "meta"


def test_every_log_label_of_a_priced_provider_maps_to_a_genai_prices_table() -> None:
    for provider in ENDPOINT_PROVIDERS - set(UNPRICED_HOSTS) - {"vertex"}:
        assert PROVIDER_LABELS[provider] in cost.PROVIDER_IDS, provider
    assert cost.PROVIDER_IDS["VERTEX"] == "google"


def test_every_model_is_priced_by_genai_prices_for_its_authors_provider(registry: Registry) -> None:
    for entry in registry.models():
        own = entry.endpoint(AUTHOR_PROVIDER.get(entry.author, ""))
        if own is not None:
            assert registry.price_per_mtok(own) is not None, (entry.id, own)
        # Open-weight models have no first-party API here: at least one host must be priced.
        assert any(registry.price_per_mtok(e) is not None for e in entry.providers), entry.id


def test_bedrock_claude_ids_are_cross_region_profiles_of_the_anthropic_id(registry: Registry) -> None:
    profile = re.compile(r"^(?:us|eu|apac|global)\.anthropic\.(claude-[a-z0-9-]+?)(?:-v\d+(?::\d+)?)?$")
    checked = 0
    for entry in registry.models():
        bedrock, anthropic = entry.endpoint("bedrock"), entry.endpoint("anthropic")
        if entry.author != "anthropic":
            continue
        assert bedrock is not None and anthropic is not None, entry.id
        match = profile.match(bedrock.model)
        assert match is not None, bedrock.model
        assert match.group(1) == anthropic.model, (bedrock.model, anthropic.model)
        checked += 1
    assert checked >= 10
    assert registry.get("claude-sonnet-4").endpoint("bedrock").model == "us.anthropic.claude-sonnet-4-20250514-v1:0"  # type: ignore[union-attr]


def test_provider_ids_follow_each_providers_conventions(registry: Registry) -> None:
    for entry in registry.models():
        for endpoint in entry.providers:
            if endpoint.provider == "azure":
                assert endpoint.model == entry.id  # the deployment name defaults to the model id
            elif endpoint.provider == "openrouter":
                assert re.fullmatch(r"[a-z0-9-]+/[a-z0-9.:-]+", endpoint.model), endpoint.model
            elif endpoint.provider == "google":
                assert endpoint.model.startswith("gemini-"), endpoint.model
            elif endpoint.provider == "bedrock":
                assert re.fullmatch(r"(?:us\.)?[a-z]+\.[a-z0-9.:-]+", endpoint.model), endpoint.model
            elif endpoint.provider == "fireworks":
                assert endpoint.model.startswith("accounts/fireworks/models/"), endpoint.model
            elif endpoint.provider == "nvidia":
                assert re.fullmatch(r"[a-z0-9-]+/[a-z0-9._-]+", endpoint.model), endpoint.model
            elif endpoint.provider in ("together", "deepinfra", "nebius", "hyperbolic", "novita"):
                assert "/" in endpoint.model, endpoint.model  # Hugging Face style org/model ids
            elif endpoint.provider == "vertex":
                # Gemini on Vertex is the Gemini id; Claude on Vertex is Anthropic's id with "@" before the date.
                own = entry.endpoint("google") or entry.endpoint("anthropic")
                assert own is not None, entry.id
                assert endpoint.model == re.sub(r"-(\d{8})$", r"@\1", own.model), (endpoint.model, own.model)
        anthropic = entry.endpoint("anthropic")
        dated = re.search(r"-(\d{4})(\d{2})(\d{2})$", anthropic.model) if anthropic else None
        if dated:  # release_date is the snapshot's date (what Helicone's created values are)
            assert entry.release_date == "-".join(dated.groups()), entry.id


def test_provider_ids_are_unambiguous_aliases(registry: Registry) -> None:
    owners: dict[str, set[str]] = {}
    for entry in registry.models():
        for endpoint in entry.providers:
            owners.setdefault(endpoint.model, set()).add(entry.id)
    for model, ids in owners.items():
        assert len(ids) == 1, (model, ids)
        other = registry.get(model)
        assert other is None or other.id in ids, model
        assert registry.resolve(model).id in ids  # type: ignore[union-attr]


def test_facts_are_consistent(registry: Registry) -> None:
    today = datetime.now(tz=UTC).date()
    for entry in registry.models():
        assert entry.capabilities.vision == ("image" in entry.input_modalities), entry.id
        assert "text" in entry.input_modalities and "text" in entry.output_modalities, entry.id
        assert entry.max_output_tokens is None or entry.max_output_tokens <= entry.context_length, entry.id
        assert date(2024, 1, 1) <= date.fromisoformat(entry.release_date) <= today, entry.id
        assert entry.name and entry.author, entry.id


@pytest.mark.parametrize(
    ("spec_model", "provider"),
    [
        # What the end-to-end gateway tests send, and the families the brief names.
        ("gpt-4o-mini", "azure"),
        ("gpt-4o-mini", "openrouter"),
        ("claude-sonnet-4", "bedrock"),
        ("gemini-2.5-flash", "google"),
        ("llama-3.3-70b-versatile", "groq"),
        ("deepseek-chat", "deepseek"),
        ("mistral-small", "mistral"),
        ("grok-3-mini", "xai"),
        ("gpt-4.1", "openai"),
        ("o3", "azure"),
        ("o4-mini", "openai"),
        ("gpt-5", "openai"),
        ("claude-3-5-haiku", "anthropic"),
        ("claude-3-7-sonnet", "bedrock"),
        ("claude-opus-4", "anthropic"),
        ("claude-opus-4-1", "openrouter"),
        ("claude-sonnet-4-5", "anthropic"),
        ("claude-haiku-4-5", "bedrock"),
        ("gemini-2.0-flash", "google"),
        ("gemini-2.5-flash-lite", "google"),
        ("gemini-2.5-pro", "openrouter"),
        ("llama-3.1-8b-instant", "groq"),
        ("gpt-oss-120b", "groq"),
        ("deepseek-reasoner", "deepseek"),
        ("mistral-large", "mistral"),
        ("codestral", "mistral"),
        # The OpenAI-compatible hosts and the Gemini API under Helicone's name.
        ("llama-3.3-70b", "together"),
        ("gpt-oss-120b", "fireworks"),
        ("llama-3.3-70b", "cerebras"),
        ("sonar", "perplexity"),
        ("gpt-oss-120b", "deepinfra"),
        ("deepseek-r1-0528", "nebius"),
        ("glm-4.7", "novita"),
        ("qwen3-coder-480b", "hyperbolic"),
        ("llama-3.1-405b", "nvidia"),
        ("llama-4-maverick", "llama"),
        ("claude-sonnet-4", "vertex"),
        ("gemini-2.5-pro", "vertex"),
        ("gemini-3-pro-image-preview", "google"),
    ],
)
def test_the_models_callers_name_are_served_where_expected(registry: Registry, spec_model: str, provider: str) -> None:
    entry = registry.resolve(spec_model)
    assert entry is not None
    assert entry.endpoint(provider) is not None


# -- loading ----------------------------------------------------------------------------------------


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "models.json"
    path.write_text(json.dumps(data))
    return path


GOOD = {
    "name": "Good",
    "author": "openai",
    "release_date": "2025-01-01",
    "context_length": 1000,
    "max_output_tokens": 100,
    "input_modalities": ["text"],
    "output_modalities": ["text"],
    "capabilities": {},
    "providers": [{"provider": "openai", "model": "good"}],
}


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"context_length": "big"}, "Expected `int`, got `str` - at `$.context_length`"),
        ({"providers": [{"provider": "acme", "model": "x"}]}, "at `$.providers[0].provider`"),
        ({"capabilites": {}}, "unknown field `capabilites`"),
        ({"capabilities": {"tool": True}}, "unknown field `tool`"),
        ({"release_date": "May 2025"}, "at `$.release_date`"),
        ({"input_modalities": ["text", "smell"]}, "at `$.input_modalities[1]`"),
        ({"unsupported_parameters": ["temprature"]}, "at `$.unsupported_parameters[0]`"),
        ({"id": "other"}, "the id is the key"),
    ],
)
def test_a_bad_entry_fails_the_load_and_is_named(tmp_path: Path, change: dict[str, Any], fragment: str) -> None:
    path = _write(tmp_path, {"fine-model": GOOD, "broken-model": {**GOOD, **change}})
    with pytest.raises(ValueError, match="'broken-model'") as caught:
        Registry.load(path)
    assert fragment in str(caught.value)


def test_a_file_that_is_not_an_object_of_entries_fails(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"models\.json"):
        Registry.load(_write(tmp_path, [GOOD]))


def test_a_loaded_entry_round_trips(tmp_path: Path) -> None:
    loaded = Registry.load(_write(tmp_path, {"good": GOOD}))
    (entry,) = loaded.models()
    assert entry == _entry("good", [{"provider": "openai", "model": "good"}], name="Good", capabilities={})
    assert loaded.get("good") is entry and loaded.get("bad") is None
    assert entry.created == 1735689600  # 2025-01-01T00:00:00Z


def test_registry_ids_win_over_provider_aliases() -> None:
    a = _entry("alpha", [{"provider": "openrouter", "model": "beta"}])
    b = _entry("beta", [{"provider": "openai", "model": "beta"}])
    loaded = Registry([a, b])
    assert loaded.resolve("beta") is b
    assert loaded.resolve("alpha") is a
    with pytest.raises(ValueError, match="duplicate model id 'alpha'"):
        Registry([a, a])


# -- prices -----------------------------------------------------------------------------------------


def test_prices_come_from_genai_prices(registry: Registry) -> None:
    gpt = registry.get("gpt-4o-mini")
    assert gpt is not None
    assert registry.price_per_mtok(gpt.endpoint("openai")) == Decimal("0.75")  # type: ignore[arg-type]
    assert registry.price_per_mtok(gpt.endpoint("azure")) == Decimal("0.75")  # type: ignore[arg-type]
    assert registry.pricing(gpt.endpoint("openai")) == Pricing(  # type: ignore[arg-type]
        Decimal("0.15"), Decimal("0.6"), Decimal("0.075"), None
    )
    sonnet = registry.get("claude-sonnet-4")
    assert sonnet is not None
    assert registry.pricing(sonnet.endpoint("bedrock")) == Pricing(  # type: ignore[arg-type]
        Decimal("3"), Decimal("15"), Decimal("0.3"), Decimal("3.75")
    )
    # xAI's label is "X" in heliport's logs; the lookup must map it like the cost pipeline does.
    assert registry.price_per_mtok(ProviderEndpoint("xai", "grok-3")) == Decimal("18")


def test_a_tiered_price_counts_its_base_tier(registry: Registry) -> None:
    sonnet = registry.get("claude-sonnet-4-5")
    assert sonnet is not None
    assert registry.price_per_mtok(sonnet.endpoint("anthropic")) == Decimal("18")  # type: ignore[arg-type]


def test_an_unknown_endpoint_has_no_price(registry: Registry) -> None:
    assert registry.price_per_mtok(ProviderEndpoint("openai", "no-such-model-xyz")) is None
    assert registry.pricing(ProviderEndpoint("groq", "no-such-model-xyz")) is None


def test_prices_are_looked_up_once_per_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
    real = cost._lookup

    def counting(model: str, provider: str) -> Any:
        calls.append((model, provider))
        return real(model, provider)

    monkeypatch.setattr(cost, "_lookup", counting)
    fresh = Registry.load()
    endpoint = ProviderEndpoint("groq", "llama-3.3-70b-versatile")
    first = fresh.price_per_mtok(endpoint)
    assert fresh.price_per_mtok(endpoint) == first == Decimal("1.38")
    assert fresh.price_per_mtok(ProviderEndpoint("openai", "missing-1")) is None
    assert fresh.price_per_mtok(ProviderEndpoint("openai", "missing-1")) is None
    assert calls == [("llama-3.3-70b-versatile", "GROQ"), ("missing-1", "OPENAI")]


def test_genai_prices_is_imported_only_when_a_price_is_needed() -> None:
    script = (
        "import sys\n"
        "from heliport.gateway.registry import Registry, ProviderEndpoint\n"
        "from heliport.gateway import routing\n"
        "r = Registry.load()\n"
        "r.openai_list(lambda p: True)\n"
        "routing.plan('gpt-4o-mini/openai', r, available=lambda p: True)\n"
        "assert 'genai_prices' not in sys.modules, 'imported too early'\n"
        "assert r.price_per_mtok(ProviderEndpoint('openai', 'gpt-4o')) is not None\n"
        "assert 'genai_prices' in sys.modules\n"
        "print('ok')\n"
    )
    root = Path(registry_module.__file__).parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env={"PYTHONPATH": str(root)}, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr


# -- a tiny validator for the OpenAPI schemas of the seed docs ----------------------------------


def _validate(value: Any, schema: dict[str, Any], components: dict[str, Any], path: str = "$") -> None:
    """The subset of OpenAPI 3.0 schema the Helicone docs use: $ref, anyOf, type, enum, nullable,
    properties, required, additionalProperties, items."""
    if "$ref" in schema:
        _validate(value, components[schema["$ref"].rsplit("/", 1)[-1]], components, path)
        return
    if "anyOf" in schema:
        errors = []
        for option in schema["anyOf"]:
            try:
                _validate(value, option, components, path)
                return
            except AssertionError as exc:
                errors.append(str(exc))
        raise AssertionError(f"{path}: matches no anyOf option: {errors}")
    if value is None:
        assert schema.get("nullable"), f"{path}: null is not allowed"
        return
    if "enum" in schema:
        assert value in schema["enum"], f"{path}: {value!r} not in {schema['enum']}"
    kind = schema.get("type")
    if kind == "object":
        assert isinstance(value, dict), f"{path}: expected an object"
        for key in schema.get("required", ()):
            assert key in value, f"{path}: missing {key!r}"
        properties = schema.get("properties", {})
        for key, item in value.items():
            if key in properties:
                _validate(item, properties[key], components, f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                raise AssertionError(f"{path}: unexpected property {key!r}")
            elif isinstance(schema.get("additionalProperties"), dict):
                _validate(item, schema["additionalProperties"], components, f"{path}.{key}")
    elif kind == "array":
        assert isinstance(value, list), f"{path}: expected an array"
        for index, item in enumerate(value):
            _validate(item, schema["items"], components, f"{path}[{index}]")
    elif kind == "string":
        assert isinstance(value, str), f"{path}: expected a string"
    elif kind == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), f"{path}: expected an integer"
    elif kind == "number":
        assert isinstance(value, int | float) and not isinstance(value, bool), f"{path}: expected a number"
    elif kind == "boolean":
        assert isinstance(value, bool), f"{path}: expected a boolean"


def test_the_validator_rejects_what_the_schema_forbids() -> None:
    schema = REGISTRY_COMPONENTS["SimplifiedPricing"]
    _validate({"prompt": 1, "completion": 2.5}, schema, REGISTRY_COMPONENTS)
    for bad in ({"prompt": 1}, {"prompt": "1", "completion": 2}, {"prompt": 1, "completion": 2, "free": True}):
        with pytest.raises(AssertionError):
            _validate(bad, schema, REGISTRY_COMPONENTS)


#: GET /v1/models (seed doc rest__ai-gateway__get-v1models.md), and the multimodal variant's
#: OAIModelsResponse (rest__ai-gateway__get-v1models-multimodal.md), transcribed.
MODELS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "object": {"type": "string", "enum": ["list"]},
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "object": {"type": "string", "enum": ["model"]},
                    "created": {"type": "integer"},
                    "owned_by": {"type": "string"},
                },
                "required": ["id", "object", "created", "owned_by"],
            },
        },
    },
    "required": ["object", "data"],
}
OAI_COMPONENTS: dict[str, Any] = {
    "OAIModelsResponse": {
        "properties": {
            "object": {"type": "string", "enum": ["list"], "nullable": False},
            "data": {"items": {"$ref": "#/components/schemas/OAIModel"}, "type": "array"},
        },
        "required": ["object", "data"],
        "type": "object",
        "additionalProperties": False,
    },
    "OAIModel": {
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "enum": ["model"], "nullable": False},
            "created": {"type": "number", "format": "double"},
            "owned_by": {"type": "string"},
        },
        "required": ["id", "object", "created", "owned_by"],
        "type": "object",
        "additionalProperties": False,
    },
}

_PARAMETERS = list(registry_module.StandardParameter.__args__)  # type: ignore[attr-defined]

#: GET /v1/public/model-registry/models (seed doc rest__models__get-v1public-model-registry-models.md),
#: the schemas a response reaches, transcribed. ``Endpoint`` (the optional full config) is never sent.
REGISTRY_COMPONENTS: dict[str, Any] = {
    "Result_ModelRegistryResponse.string_": {
        "anyOf": [
            {"$ref": "#/components/schemas/ResultSuccess_ModelRegistryResponse_"},
            {"$ref": "#/components/schemas/ResultError_string_"},
        ]
    },
    "ResultSuccess_ModelRegistryResponse_": {
        "properties": {
            "data": {"$ref": "#/components/schemas/ModelRegistryResponse"},
            "error": {"type": "number", "enum": [None], "nullable": True},
        },
        "required": ["data", "error"],
        "type": "object",
        "additionalProperties": False,
    },
    "ResultError_string_": {
        "properties": {
            "data": {"type": "number", "enum": [None], "nullable": True},
            "error": {"type": "string"},
        },
        "required": ["data", "error"],
        "type": "object",
        "additionalProperties": False,
    },
    "ModelRegistryResponse": {
        "properties": {
            "models": {"items": {"$ref": "#/components/schemas/ModelRegistryItem"}, "type": "array"},
            "total": {"type": "number", "format": "double"},
            "filters": {
                "properties": {
                    "capabilities": {"items": {"$ref": "#/components/schemas/ModelCapability"}, "type": "array"},
                    "authors": {"items": {"type": "string"}, "type": "array"},
                    "providers": {
                        "items": {
                            "properties": {"displayName": {"type": "string"}, "name": {"type": "string"}},
                            "required": ["displayName", "name"],
                            "type": "object",
                        },
                        "type": "array",
                    },
                },
                "required": ["capabilities", "authors", "providers"],
                "type": "object",
            },
        },
        "required": ["models", "total", "filters"],
        "type": "object",
        "additionalProperties": False,
    },
    "ModelRegistryItem": {
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "author": {"type": "string"},
            "contextLength": {"type": "number", "format": "double"},
            "endpoints": {"items": {"$ref": "#/components/schemas/ModelEndpoint"}, "type": "array"},
            "maxOutput": {"type": "number", "format": "double"},
            "trainingDate": {"type": "string"},
            "description": {"type": "string"},
            "inputModalities": {"items": {"$ref": "#/components/schemas/InputModality"}, "type": "array"},
            "outputModalities": {"items": {"$ref": "#/components/schemas/OutputModality"}, "type": "array"},
            "supportedParameters": {"items": {"$ref": "#/components/schemas/StandardParameter"}, "type": "array"},
            "pinnedVersionOfModel": {"type": "string"},
        },
        "required": [
            "id",
            "name",
            "author",
            "contextLength",
            "endpoints",
            "inputModalities",
            "outputModalities",
            "supportedParameters",
        ],
        "type": "object",
        "additionalProperties": False,
    },
    "ModelCapability": {
        "type": "string",
        "enum": ["audio", "video", "image", "thinking", "web_search", "caching", "reasoning"],
    },
    "ModelEndpoint": {
        "properties": {
            "provider": {"type": "string"},
            "providerSlug": {"type": "string"},
            "endpoint": {"$ref": "#/components/schemas/Endpoint"},
            "supportsPtb": {"type": "boolean"},
            "pricing": {"$ref": "#/components/schemas/SimplifiedPricing"},
            "pricingTiers": {"items": {"$ref": "#/components/schemas/SimplifiedPricing"}, "type": "array"},
        },
        "required": ["provider", "providerSlug", "pricing"],
        "type": "object",
        "additionalProperties": False,
    },
    "InputModality": {"type": "string", "enum": ["text", "image", "audio", "video"]},
    "OutputModality": {"type": "string", "enum": ["text", "image", "audio", "video"]},
    "StandardParameter": {"type": "string", "enum": _PARAMETERS},
    "SimplifiedPricing": {
        "properties": {
            "prompt": {"type": "number", "format": "double"},
            "completion": {"type": "number", "format": "double"},
            "thinking": {"type": "number", "format": "double"},
            "web_search": {"type": "number", "format": "double"},
            "cacheRead": {"type": "number", "format": "double"},
            "cacheWrite": {"type": "number", "format": "double"},
            "threshold": {"type": "number", "format": "double"},
        },
        "required": ["prompt", "completion"],
        "type": "object",
        "additionalProperties": False,
    },
}


def test_the_standard_parameters_are_helicones_list() -> None:
    # The doc's StandardParameter enum, so the transcription above checks against the real list.
    assert _PARAMETERS == [
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop",
        "stream",
        "frequency_penalty",
        "presence_penalty",
        "repetition_penalty",
        "seed",
        "tools",
        "tool_choice",
        "functions",
        "function_call",
        "reasoning",
        "include_reasoning",
        "thinking",
        "response_format",
        "json_mode",
        "truncate",
        "min_p",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "structured_outputs",
        "verbosity",
        "n",
    ]


# -- GET /v1/models ---------------------------------------------------------------------------------


def test_models_lists_what_a_configured_provider_serves(registry: Registry) -> None:
    body = registry.openai_list(lambda provider: provider == "anthropic")
    _validate(body, MODELS_SCHEMA, {})
    ids = [item["id"] for item in body["data"]]
    assert ids and all(registry.get(i).author == "anthropic" for i in ids)  # type: ignore[union-attr]
    assert "claude-sonnet-4" in ids and "gpt-4o" not in ids
    for item in body["data"]:
        model = openai.types.Model.model_validate(item)
        assert (model.id, model.object, model.owned_by) == (item["id"], "model", "anthropic")


def test_models_match_the_docs_example_values(registry: Registry) -> None:
    items = {item["id"]: item for item in registry.openai_list(lambda provider: True)["data"]}
    assert items["claude-opus-4"] == {
        "id": "claude-opus-4",
        "object": "model",
        "created": 1747180800,
        "owned_by": "anthropic",
    }
    assert items["gpt-4o"] == {"id": "gpt-4o", "object": "model", "created": 1715558400, "owned_by": "openai"}
    assert len(items) == len(registry.models())


def test_models_with_no_configured_provider_is_an_empty_list(registry: Registry) -> None:
    assert registry.openai_list(lambda provider: False) == {"object": "list", "data": []}


def test_multimodal_models_have_more_than_one_modality(registry: Registry) -> None:
    body = registry.openai_list(lambda provider: True, multimodal=True)
    _validate(body, OAI_COMPONENTS["OAIModelsResponse"], OAI_COMPONENTS)
    ids = {item["id"] for item in body["data"]}
    assert {"gpt-4o", "claude-sonnet-4-5", "gemini-2.5-pro"} <= ids
    assert "deepseek-chat" not in ids and "llama-3.3-70b" not in ids
    assert all(registry.get(i).multimodal for i in ids)  # type: ignore[union-attr]


# -- GET /v1/public/model-registry/models ---------------------------------------------------------


def test_the_public_registry_has_the_documented_shape(registry: Registry) -> None:
    body = registry.public_registry({})
    _validate(body, REGISTRY_COMPONENTS["Result_ModelRegistryResponse.string_"], REGISTRY_COMPONENTS)
    msgspec.json.encode(body)  # plain JSON: no Decimal strings where the schema wants numbers
    data = body["data"]
    assert body["error"] is None
    assert data["total"] == len(data["models"]) == len(registry.models())
    assert {p["name"] for p in data["filters"]["providers"]} == ENDPOINT_PROVIDERS
    assert {"name": "bedrock", "displayName": "AWS Bedrock"} in data["filters"]["providers"]
    assert {"anthropic", "openai", "google", "meta-llama"} <= set(data["filters"]["authors"])
    assert data["filters"]["capabilities"] == ["audio", "video", "image", "caching", "reasoning"]


def test_the_public_registry_item_matches_the_docs_example(registry: Registry) -> None:
    items = {item["id"]: item for item in registry.public_registry({})["data"]["models"]}
    opus = items["claude-opus-4-1"]
    # The seed doc's example item, field by field, for what both know.
    assert (opus["name"], opus["author"], opus["contextLength"]) == ("Anthropic: Claude Opus 4.1", "anthropic", 200000)
    assert (opus["maxOutput"], opus["trainingDate"]) == (32000, "2025-08-05")
    anthropic = next(e for e in opus["endpoints"] if e["provider"] == "anthropic")
    assert anthropic == {
        "provider": "anthropic",
        "providerSlug": "anthropic",
        "supportsPtb": False,
        "pricing": {"prompt": 15.0, "completion": 75.0, "cacheRead": 1.5, "cacheWrite": 18.75},
    }
    assert [e["provider"] for e in opus["endpoints"]] == ["anthropic", "bedrock", "openrouter", "vertex"]
    assert opus["inputModalities"] == ["text", "image"] and opus["outputModalities"] == ["text"]
    assert {"tools", "tool_choice", "reasoning", "structured_outputs"} <= set(opus["supportedParameters"])


def test_refused_parameters_are_not_listed_as_supported(registry: Registry) -> None:
    items = {item["id"]: item for item in registry.public_registry({})["data"]["models"]}
    assert "temperature" not in items["o3"]["supportedParameters"]
    assert "temperature" not in items["claude-opus-4-7"]["supportedParameters"]
    assert "temperature" in items["gpt-4o"]["supportedParameters"]
    assert "tools" not in items["deepseek-r1"]["supportedParameters"]


@pytest.mark.parametrize(
    ("query", "check"),
    [
        ({"provider": "bedrock"}, lambda e: e.endpoint("bedrock") is not None),
        ({"provider": "groq,xai"}, lambda e: e.endpoint("groq") is not None or e.endpoint("xai") is not None),
        ({"author": "anthropic"}, lambda e: e.author == "anthropic"),
        ({"capability": "image,reasoning"}, lambda e: e.capabilities.vision and e.capabilities.reasoning),
        ({"capability": "audio"}, lambda e: "audio" in e.input_modalities),
        ({"search": "SONNET"}, lambda e: "sonnet" in e.id),
        # Helicone's name for the Gemini API filters like the provider it names.
        ({"provider": "google-ai-studio"}, lambda e: e.endpoint("google") is not None),
        ({"provider": "nebius"}, lambda e: e.endpoint("nebius") is not None),
    ],
)
def test_the_public_registry_filters(registry: Registry, query: dict[str, str], check: Any) -> None:
    body = registry.public_registry(query)
    ids = {item["id"] for item in body["data"]["models"]}
    expected = {e.id for e in registry.models() if check(e)}
    assert ids == expected and ids
    assert body["data"]["total"] == len(ids)
    # The filter options describe the whole registry, not the filtered page.
    assert len(body["data"]["filters"]["providers"]) == len(ENDPOINT_PROVIDERS)


def test_unknown_filters_are_ignored_and_unmatched_ones_return_nothing(registry: Registry) -> None:
    assert registry.public_registry({"page": "2"})["data"]["total"] == len(registry.models())
    empty = registry.public_registry({"provider": "acme"})
    assert (empty["data"]["models"], empty["data"]["total"], empty["error"]) == ([], 0, None)


def test_an_endpoint_without_a_price_is_left_out_of_the_listing() -> None:
    entry = _entry(
        "half-priced",
        [{"provider": "openai", "model": "gpt-4o-mini"}, {"provider": "openai", "model": "no-such-model-xyz"}],
    )
    body = Registry([entry]).public_registry({})
    (item,) = body["data"]["models"]
    assert [e["pricing"]["prompt"] for e in item["endpoints"]] == [0.15]
    _validate(body, REGISTRY_COMPONENTS["Result_ModelRegistryResponse.string_"], REGISTRY_COMPONENTS)
