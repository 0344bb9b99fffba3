"""The model registry: which models the unified gateway knows, and which providers serve each one.

The data lives in ``models.json`` next to this module (shipped inside the package, like
``logs/price_overrides.json``): an object mapping a model id (what callers put in ``model``) to its
facts and its provider endpoints::

    "claude-sonnet-4": {
      "name": "Anthropic: Claude Sonnet 4", "author": "anthropic", "release_date": "2025-05-14",
      "context_length": 200000, "max_output_tokens": 64000,
      "input_modalities": ["text", "image"], "output_modalities": ["text"],
      "capabilities": {"tools": true, "vision": true, "reasoning": true, "prompt_caching": true},
      "unsupported_parameters": [],                      # optional: OpenAI parameters the model refuses
      "providers": [
        {"provider": "anthropic", "model": "claude-sonnet-4-20250514"},
        {"provider": "bedrock", "model": "us.anthropic.claude-sonnet-4-20250514-v1:0"},
        {"provider": "openrouter", "model": "anthropic/claude-sonnet-4", "context_length": 200000}
      ]
    }

``model`` in an endpoint is that provider's own id. Azure's is the deployment name, which by default
is the model id; Bedrock's is the cross-region inference profile (``us.``) where Bedrock refuses
on-demand calls to the bare model id, as it does for every Claude 4 model. ``release_date`` is the
model snapshot's date (the date in its dated provider id when there is one, as Helicone's ``created``
values are); ``/v1/models`` reports it as ``created``.

The file is decoded with msgspec into frozen Structs, one entry at a time, so a malformed entry fails
loudly at load and the error names it (``models.json: 'gpt-4o': Expected `int`, got `str` - at
`$.context_length```).

Adding a model is one entry in ``models.json`` and no code: its facts, and one endpoint per provider
that serves it under that provider's own id. Adding a provider to an existing model is one line in its
``providers``. ``tests/gateway/test_registry.py`` then checks the entry: a known provider, an id in
that provider's style, a context length, facts that agree with each other, and a price in
genai-prices for every endpoint. Three hosts have no genai-prices table (DeepInfra, NVIDIA NIM,
Meta's Llama API): their endpoints route, after priced ones, and are logged unpriced.

Prices are not part of the data: they come from ``genai-prices`` through
:mod:`heliport.logs.cost` (the same lookup that prices the request log), per endpoint, when routing
or the public listing first needs one. That module imports genai-prices, so it is imported only
then: a container that never routes by price never loads the price tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import msgspec

from heliport.gateway.chat import JsonObj

__all__ = [
    "ENDPOINT_PROVIDERS",
    "KNOWN_PROVIDERS",
    "MODELS_PATH",
    "PROVIDER_ALIASES",
    "Capabilities",
    "ModelEntry",
    "Pricing",
    "ProviderEndpoint",
    "Registry",
    "canonical_provider",
]

MODELS_PATH = Path(__file__).with_name("models.json")

ProviderId = Literal[
    "openai",
    "anthropic",
    "azure",
    "bedrock",
    "google",
    "vertex",
    "xai",
    "groq",
    "deepseek",
    "mistral",
    "openrouter",
    # OpenAI-compatible hosts (Helicone's slugs; each is one ``_KINDS`` entry in providers.py).
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
]

#: Other names a model string may use for a provider. Helicone's gateway calls Gemini's API
#: ``google-ai-studio``; it is the same account as ``google`` (same key, same log label), so it routes
#: there and the data never lists it separately (an expansion would otherwise try the same API twice).
PROVIDER_ALIASES: dict[str, str] = {"google-ai-studio": "google"}

#: The providers models.json may list (canonical ids only).
ENDPOINT_PROVIDERS: frozenset[str] = frozenset(get_args(ProviderId))

#: Provider names a model string may use (``gpt-4o/azure``, ``gemini-2.5-flash/google-ai-studio``).
KNOWN_PROVIDERS: frozenset[str] = ENDPOINT_PROVIDERS | PROVIDER_ALIASES.keys()


def canonical_provider(name: str) -> str:
    """The provider id behind a name a caller may use (an alias, or the id itself)."""
    return PROVIDER_ALIASES.get(name, name)


#: Shown in the public listing's filter options.
PROVIDER_DISPLAY_NAMES: dict[str, str] = {
    "openai": "OpenAI",
    "anthropic": "Anthropic",
    "azure": "Azure OpenAI",
    "bedrock": "AWS Bedrock",
    "google": "Google AI Studio",
    "vertex": "Google Vertex AI",
    "xai": "xAI",
    "groq": "Groq",
    "deepseek": "DeepSeek",
    "mistral": "Mistral",
    "openrouter": "OpenRouter",
    "together": "Together AI",
    "fireworks": "Fireworks",
    "cerebras": "Cerebras",
    "perplexity": "Perplexity",
    "deepinfra": "DeepInfra",
    "nebius": "Nebius Token Factory",
    "novita": "Novita",
    "hyperbolic": "Hyperbolic",
    "nvidia": "NVIDIA NIM",
    "llama": "Meta Llama API",
}

Modality = Literal["text", "image", "audio", "video"]

#: Helicone's ``StandardParameter`` names (the public listing's ``supportedParameters``).
StandardParameter = Literal[
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

_IsoDate = Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")]
_Positive = Annotated[int, msgspec.Meta(gt=0)]


class ProviderEndpoint(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One provider that serves a model, under that provider's own model id."""

    provider: ProviderId
    model: Annotated[str, msgspec.Meta(min_length=1)]
    #: This provider's context window when it differs from the model's.
    context_length: _Positive | None = None


class Capabilities(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    tools: bool = False
    #: Image input (kept in step with ``input_modalities``; the data test checks both agree).
    vision: bool = False
    reasoning: bool = False
    #: Structured outputs: ``response_format: {"type": "json_schema"}``.
    json_schema: bool = False
    prompt_caching: bool = False


class ModelEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    name: str
    author: str
    release_date: _IsoDate
    context_length: _Positive
    max_output_tokens: _Positive | None
    input_modalities: tuple[Modality, ...]
    output_modalities: tuple[Modality, ...]
    capabilities: Capabilities
    providers: tuple[ProviderEndpoint, ...]
    description: str = ""
    unsupported_parameters: tuple[StandardParameter, ...] = ()

    @property
    def created(self) -> int:
        """Unix time of ``release_date`` at 00:00 UTC (``created`` in ``/v1/models``)."""
        day = date.fromisoformat(self.release_date)
        return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())

    @property
    def multimodal(self) -> bool:
        """More than one input or output modality (the ``/v1/models/multimodal`` rule)."""
        return len(self.input_modalities) > 1 or len(self.output_modalities) > 1

    def endpoint(self, provider: str) -> ProviderEndpoint | None:
        return next((e for e in self.providers if e.provider == provider), None)


class Pricing(msgspec.Struct, frozen=True):
    """USD per million tokens, from genai-prices (the base tier where prices are tiered)."""

    prompt: Decimal
    completion: Decimal
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None


_UNPRICED = object()

#: ``supportedParameters`` every chat model takes through the gateway; capabilities add to it.
_BASE_PARAMETERS: tuple[str, ...] = ("max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "stream")


class Registry:
    """The models, looked up by id or by any provider's id for them, and the two GET bodies."""

    def __init__(self, models: list[ModelEntry]) -> None:
        self._models = list(models)
        self._by_id: dict[str, ModelEntry] = {}
        for entry in self._models:
            if entry.id in self._by_id:
                raise ValueError(f"models.json: duplicate model id {entry.id!r}")
            self._by_id[entry.id] = entry
        # Provider ids as aliases: a caller may write what it would have sent that provider
        # ("claude-sonnet-4-20250514", OpenRouter's "openai/gpt-4o-mini"). A registry id always wins.
        self._aliases: dict[str, ModelEntry] = {}
        for entry in self._models:
            for endpoint in entry.providers:
                if endpoint.model not in self._by_id:
                    self._aliases.setdefault(endpoint.model, entry)
        self._pricing: dict[tuple[str, str], Pricing | None] = {}

    @classmethod
    def load(cls, path: Path | None = None) -> Registry:
        """Read the packaged ``models.json`` (or ``path``). Raises ValueError naming a bad entry."""
        source = path or MODELS_PATH
        try:
            raw = msgspec.json.decode(source.read_bytes(), type=dict[str, dict[str, Any]])
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ValueError(f"{source.name}: {exc}") from None
        models: list[ModelEntry] = []
        for model_id, fields in raw.items():
            if "id" in fields:
                raise ValueError(f"{source.name}: {model_id!r}: the id is the key, not a field")
            try:
                models.append(msgspec.convert({"id": model_id, **fields}, ModelEntry))
            except msgspec.ValidationError as exc:
                raise ValueError(f"{source.name}: {model_id!r}: {exc}") from None
        return cls(models)

    def get(self, model_id: str) -> ModelEntry | None:
        return self._by_id.get(model_id)

    def resolve(self, model: str) -> ModelEntry | None:
        """The entry for a registry id or for any provider's id of a registered model."""
        return self._by_id.get(model) or self._aliases.get(model)

    def models(self) -> list[ModelEntry]:
        return list(self._models)

    # -- prices ----------------------------------------------------------------------------------

    def pricing(self, endpoint: ProviderEndpoint) -> Pricing | None:
        """genai-prices' price for this endpoint, looked up once per (provider, model)."""
        key = (endpoint.provider, endpoint.model)
        hit = self._pricing.get(key, _UNPRICED)
        if hit is _UNPRICED:
            hit = self._pricing[key] = _lookup_pricing(endpoint.provider, endpoint.model)
        return hit  # type: ignore[return-value]

    def price_per_mtok(self, endpoint: ProviderEndpoint) -> Decimal | None:
        """Input plus output USD per million tokens (routing's cost key); None when genai-prices
        cannot price the endpoint."""
        price = self.pricing(endpoint)
        return None if price is None else price.prompt + price.completion

    # -- GET bodies ------------------------------------------------------------------------------

    def openai_list(self, available: Callable[[str], bool], *, multimodal: bool = False) -> JsonObj:
        """``GET /v1/models``: the models at least one configured provider serves, in OpenAI's list
        shape. ``multimodal`` keeps only models with more than one input or output modality
        (``GET /v1/models/multimodal``)."""
        data = [
            {"id": entry.id, "object": "model", "created": entry.created, "owned_by": entry.author}
            for entry in self._models
            if (not multimodal or entry.multimodal) and any(available(e.provider) for e in entry.providers)
        ]
        return {"object": "list", "data": data}

    def public_registry(self, query: Mapping[str, str]) -> JsonObj:
        """``GET /v1/public/model-registry/models``: Helicone's ``Result<ModelRegistryResponse>``.

        Helicone documents no query parameters; these optional ones narrow ``models`` (``total`` is
        their count) while ``filters`` always lists the options of the whole registry:
        ``provider`` and ``author`` (comma-separated, any of), ``capability`` (comma-separated,
        all of: audio, video, image, caching, reasoning) and ``search`` (substring of id or name,
        case-insensitive). Unknown parameters are ignored: this is a public catalogue, not an API
        that should fail a browser's request.
        """
        providers = {canonical_provider(p) for p in _csv(query.get("provider"))}
        authors = _csv(query.get("author"))
        wanted = _csv(query.get("capability"))
        search = (query.get("search") or "").strip().lower()
        items: list[JsonObj] = []
        for entry in self._models:
            if providers and not any(e.provider in providers for e in entry.providers):
                continue
            if authors and entry.author not in authors:
                continue
            if wanted and not wanted <= set(_capability_tags(entry)):
                continue
            if search and search not in entry.id.lower() and search not in entry.name.lower():
                continue
            items.append(self._registry_item(entry))
        present = {e.provider for entry in self._models for e in entry.providers}
        return {
            "data": {
                "models": items,
                "total": len(items),
                "filters": {
                    "providers": [
                        {"name": name, "displayName": PROVIDER_DISPLAY_NAMES[name]}
                        for name in PROVIDER_DISPLAY_NAMES
                        if name in present
                    ],
                    "authors": sorted({entry.author for entry in self._models}),
                    "capabilities": [
                        tag for tag in _CAPABILITY_TAGS if any(tag in _capability_tags(e) for e in self._models)
                    ],
                },
            },
            "error": None,
        }

    def _registry_item(self, entry: ModelEntry) -> JsonObj:
        endpoints: list[JsonObj] = []
        for endpoint in entry.providers:
            price = self.pricing(endpoint)
            if price is None:
                # The schema requires a price; an endpoint genai-prices cannot price is left out of
                # the listing rather than shown as free (routing still uses it, after priced ones).
                continue
            pricing: JsonObj = {"prompt": float(price.prompt), "completion": float(price.completion)}
            if price.cache_read is not None:
                pricing["cacheRead"] = float(price.cache_read)
            if price.cache_write is not None:
                pricing["cacheWrite"] = float(price.cache_write)
            endpoints.append(
                {
                    "provider": endpoint.provider,
                    "providerSlug": endpoint.provider,
                    "supportsPtb": False,
                    "pricing": pricing,
                }
            )
        item: JsonObj = {
            "id": entry.id,
            "name": entry.name,
            "author": entry.author,
            "contextLength": entry.context_length,
            "endpoints": endpoints,
        }
        if entry.max_output_tokens is not None:
            item["maxOutput"] = entry.max_output_tokens
        # Helicone fills trainingDate with the release date (claude-opus-4-1: "2025-08-05").
        item["trainingDate"] = entry.release_date
        if entry.description:
            item["description"] = entry.description
        item["inputModalities"] = list(entry.input_modalities)
        item["outputModalities"] = list(entry.output_modalities)
        item["supportedParameters"] = _supported_parameters(entry)
        return item


#: Helicone's ``ModelCapability`` values this registry can derive, in Helicone's order.
_CAPABILITY_TAGS = ("audio", "video", "image", "caching", "reasoning")


def _capability_tags(entry: ModelEntry) -> tuple[str, ...]:
    tags = []
    if "audio" in entry.input_modalities or "audio" in entry.output_modalities:
        tags.append("audio")
    if "video" in entry.input_modalities:
        tags.append("video")
    if entry.capabilities.vision:
        tags.append("image")
    if entry.capabilities.prompt_caching:
        tags.append("caching")
    if entry.capabilities.reasoning:
        tags.append("reasoning")
    return tuple(tags)


def _supported_parameters(entry: ModelEntry) -> list[str]:
    params = list(_BASE_PARAMETERS)
    if entry.capabilities.tools:
        params += ["tools", "tool_choice"]
    if entry.capabilities.json_schema:
        params += ["response_format", "structured_outputs"]
    if entry.capabilities.reasoning:
        params.append("reasoning")
    refused = set(entry.unsupported_parameters)
    return [p for p in params if p not in refused]


def _csv(value: str | None) -> set[str]:
    return {part.strip() for part in (value or "").split(",") if part.strip()}


def _lookup_pricing(provider: str, model: str) -> Pricing | None:
    """Price one endpoint with heliport's cost lookup (imports genai-prices on first use)."""
    from heliport.gateway.providers import PROVIDER_LABELS
    from heliport.logs import cost

    resolved = cost._lookup(model, PROVIDER_LABELS.get(provider, provider.upper()))
    if isinstance(resolved, str):
        return None
    prices = resolved.model.get_prices(datetime.now(tz=UTC))
    prompt, completion = _base(prices.input_mtok), _base(prices.output_mtok)
    if prompt is None or completion is None:
        return None
    return Pricing(prompt, completion, _base(prices.cache_read_mtok), _base(prices.cache_write_mtok))


def _base(price: Any) -> Decimal | None:
    """A flat price, or a tiered one's base tier (what most requests pay)."""
    if price is None or isinstance(price, Decimal):
        return price
    base = getattr(price, "base", None)
    return base if isinstance(base, Decimal) else None
