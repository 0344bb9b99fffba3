"""USD cost of one request from its token usage, priced with the ``genai-prices`` data.

Order of lookup:

1. **Override table** (``price_overrides.json`` next to this module), consulted first and only for an
   exact model string. It exists for models genai-prices cannot know (self-hosted, fine-tuned, private
   deployments). Format: one JSON object mapping a model name to USD prices *per million tokens*, given
   as strings so they stay exact decimals (numbers are accepted too)::

       {
         "acme-llama-3.1-70b-selfhosted": {"input": "0.20", "output": "0.60",
                                           "cache_read": "0.02", "cache_write": "0.25"}
       }

   ``input`` and ``output`` are required; ``cache_read`` / ``cache_write`` are optional, and tokens of
   a kind without its own price are billed at the ``input`` price.
2. **genai-prices** (its bundled snapshot; no network), looked up by model and provider. Our provider
   labels are Helicone's (``OPENAI``, ``AZURE``, ...) or a URL for unknown targets; labels map to
   genai-prices provider ids, URLs are matched against its API patterns.

Token conventions: :class:`~heliport.logs.usage.Usage` counts ``prompt_tokens`` as the whole input
(cache reads, cache writes and audio included) and ``completion_tokens`` as the whole output
(reasoning and audio included). genai-prices uses exactly that shape: its ``input_tokens`` is the
ancestor of ``cache_read_tokens`` / ``cache_write_tokens`` / ``input_audio_tokens`` and it bills each
priced subset at its own rate and only the remainder at the input rate (likewise ``output_tokens`` and
``output_reasoning_tokens``), so no conversion is needed and nothing is counted twice. Anthropic's
``cache_write_tokens`` is split into 5-minute and 1-hour writes, which genai-prices prices separately.
Where genai-prices refuses to guess (cache reads and audio input both non-zero for a model that prices
cached audio, without the provider saying how much of the cache was audio) the row stays unpriced.

Speed: genai-prices' own ``calc_price`` costs ~110 µs per call (it re-validates the price table and
the usage every time), too slow for a consumer that must do well over 2,000 records/s on one core. So
the model lookup is cached per ``(model, provider)`` and each resolved price table is compiled once
into a short list of ``(usage key, price, per, priced descendants)`` terms; pricing a record is then a
handful of Decimal operations with the same arithmetic as genai-prices (the tests check the two agree
across every model of every mapped provider). Prices that depend on the request time (time-of-day
discounts, dated price changes) are resolved for ``at`` on each call and compiled once per table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache, lru_cache
from pathlib import Path

import msgspec
from genai_prices import __version__ as GENAI_PRICES_VERSION
from genai_prices.data_snapshot import get_snapshot
from genai_prices.data_units import unit_data
from genai_prices.decompose import is_descendant_or_self
from genai_prices.types import ModelInfo, ModelPrice, TieredPrices
from genai_prices.units import UnitDef, UnitRegistry
from genai_prices.validation import validate_priced_units

from heliport.logs.usage import Usage

__all__ = [
    "GENAI_PRICES_SOURCE",
    "OVERRIDES_PATH",
    "PROVIDER_IDS",
    "Cost",
    "PriceOverride",
    "compute_cost",
    "load_price_overrides",
]

#: ``cost_source`` of rows priced from genai-prices, with the data version that priced them.
GENAI_PRICES_SOURCE = f"genai-prices@{GENAI_PRICES_VERSION}"

OVERRIDES_PATH = Path(__file__).with_name("price_overrides.json")

#: Helicone provider label -> genai-prices provider id. Labels not here (DEEPINFRA, NVIDIA, CUSTOM, ...)
#: have no table in genai-prices and stay unpriced rather than borrowing another provider's price for a
#: same-named model; the override table covers them when needed. NEBIUS and HYPERBOLIC have no table of
#: their own, but genai-prices prices the same hosts as Hugging Face Inference Providers, which bills
#: the host's own per-token rate with no markup, under the host's own model ids.
PROVIDER_IDS: dict[str, str] = {
    "OPENAI": "openai",
    "AZURE": "azure",  # genai-prices falls back to openai/anthropic/... prices for Azure-hosted models.
    "ANTHROPIC": "anthropic",
    "GOOGLE": "google",
    "VERTEX": "google",
    "GROQ": "groq",
    "MISTRAL": "mistral",
    "X": "x-ai",
    "XAI": "x-ai",
    "DEEPSEEK": "deepseek",
    "TOGETHER": "together",
    "OPENROUTER": "openrouter",
    "FIREWORKS": "fireworks",
    "PERPLEXITY": "perplexity",
    "CEREBRAS": "cerebras",
    "NOVITA": "novita",
    "NEBIUS": "huggingface_nebius",
    "HYPERBOLIC": "huggingface_hyperbolic",
    "COHERE": "cohere",
    "CLOUDFLARE": "cloudflare",
    "AWS": "aws",
    "BEDROCK": "aws",
    "LLAMA": "meta",
    "MOONSHOT": "moonshotai",
    "BASETEN": "baseten",
}

_MILLION = Decimal(1_000_000)


class Cost(msgspec.Struct, frozen=True):
    #: USD, exact. None when the request could not be priced.
    amount: Decimal | None
    #: "genai-prices@<version>", "override", "no usage", or "unpriced: <reason>".
    source: str


class PriceOverride(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """USD per million tokens for one model (see the module docstring)."""

    input: Decimal
    output: Decimal
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None


def load_price_overrides(path: Path = OVERRIDES_PATH) -> dict[str, PriceOverride]:
    """Read an override table; a missing file is an empty table, a malformed one is an error (fail loud
    at startup rather than silently mis-bill)."""
    if not path.exists():
        return {}
    return msgspec.json.decode(path.read_bytes(), type=dict[str, PriceOverride])


@cache
def _repo_overrides() -> dict[str, PriceOverride]:
    return load_price_overrides()


# -- genai-prices: lookup and compiled price tables ------------------------------------------------

_REGISTRY = UnitRegistry(unit_data)


@dataclass(frozen=True, slots=True)
class _Term:
    usage_key: str
    price: Decimal | TieredPrices
    per: int
    #: Priced units that are strict subsets of this one; their tokens are billed there, not here.
    descendants: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Plan:
    """One resolved genai-prices ``ModelPrice``, ready to apply (terms most specific first)."""

    terms: tuple[_Term, ...]
    #: Sets of our usage keys that, all non-zero together, leave a priced unit we did not report
    #: ambiguous (e.g. cache reads and audio input when cached *audio* has its own price: how many of
    #: the cached tokens were audio?). genai-prices refuses to guess there, and so do we.
    ambiguous: tuple[tuple[str, frozenset[str]], ...]
    #: Flat fees per request (genai-prices counts one request per call).
    per_request: tuple[tuple[Decimal | TieredPrices, int], ...]
    tiered: bool


def _compile(model_price: ModelPrice) -> _Plan:
    """Mirror of genai-prices' ``ModelPrice.calc_price`` set-up, done once per price table."""
    priced: list[tuple[UnitDef, Decimal | TieredPrices]] = []
    for price_key, value in model_price.__dict__.items():
        if price_key.startswith("_") or value is None:
            continue
        unit = _REGISTRY.unit_for_price_key(price_key)  # KeyError: a price kind we do not understand.
        if not isinstance(value, Decimal | TieredPrices):
            raise TypeError(f"unexpected price value for {price_key}")
        priced.append((unit, value))
    validate_priced_units(tuple(unit for unit, _ in priced), _REGISTRY)
    token_units = [(u, p) for u, p in priced if u.usage_key != "requests"]
    token_units.sort(key=lambda item: (-len(item[0].dimensions), item[0].usage_key))
    terms = tuple(
        _Term(
            usage_key=unit.usage_key,
            price=price,
            per=unit.per,
            descendants=tuple(
                other.usage_key for other, _ in token_units if other is not unit and is_descendant_or_self(unit, other)
            ),
        )
        for unit, price in token_units
    )
    per_request = tuple((price, unit.per) for unit, price in priced if unit.usage_key == "requests")
    tiered = any(isinstance(price, TieredPrices) for _, price in priced)
    return _Plan(terms=terms, ambiguous=_ambiguities(token_units), per_request=per_request, tiered=tiered)


#: The genai-prices usage keys :func:`_usage_values` can report; any other priced unit counts as zero.
_REPORTED = (
    "cache_audio_read_tokens",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "input_audio_tokens",
    "output_audio_tokens",
    "output_reasoning_tokens",
)


def _ambiguities(token_units: list[tuple[UnitDef, Decimal | TieredPrices]]) -> tuple[tuple[str, frozenset[str]], ...]:
    """Mirror of genai-prices' ``Usage._infer_missing_value``: an unreported priced unit is zero only if
    no reported descendant and no reported pair of units whose overlap it is is non-zero."""
    reported = [_REGISTRY.units[key] for key in _REPORTED]
    found: list[tuple[str, frozenset[str]]] = []
    for unit, _ in token_units:
        for other in reported:
            if other is not unit and is_descendant_or_self(unit, other):
                found.append((unit.usage_key, frozenset({other.usage_key})))
        for i, left in enumerate(reported):
            for right in reported[i + 1 :]:
                if (
                    unit not in (left, right)
                    and left.is_compatible_with(right)
                    and not is_descendant_or_self(left, right)
                    and not is_descendant_or_self(right, left)
                    and dict(unit.dimensions) == {**left.dimensions, **right.dimensions}
                ):
                    found.append((unit.usage_key, frozenset({left.usage_key, right.usage_key})))
    return tuple(found)


#: Compiled plans by price-table identity (the tables live as long as the genai-prices data module).
_PLANS: dict[int, tuple[ModelPrice, _Plan]] = {}


def _plan_for(model_price: ModelPrice) -> _Plan:
    hit = _PLANS.get(id(model_price))
    if hit is not None and hit[0] is model_price:
        return hit[1]
    plan = _compile(model_price)
    _PLANS[id(model_price)] = (model_price, plan)
    return plan


@dataclass(frozen=True, slots=True)
class _Resolved:
    model: ModelInfo
    #: Compiled plan when the model's price does not depend on the request time.
    static_plan: _Plan | None


@lru_cache(maxsize=8192)
def _lookup(model: str, provider: str) -> _Resolved | str:
    """genai-prices model for (model, provider label), or the reason it has none. Cached: the
    consumer sees the same few pairs over and over."""
    if provider.startswith(("http://", "https://")):
        provider_id, api_url = None, provider
    else:
        provider_id, api_url = PROVIDER_IDS.get(provider.upper()), None
        if provider_id is None:
            return f"unpriced: provider {provider!r} has no genai-prices table"
    try:
        _, info = get_snapshot().find_provider_model(model, None, provider_id, api_url)
    except LookupError:
        # Vertex's OpenAI-compatible endpoint answers with publisher-qualified ids (google/gemini-2.5-flash),
        # which genai-prices lists under the bare id; tried only after the id as given is unknown.
        publisher, slash, bare = model.partition("/")
        if not (slash and publisher and bare) or provider_id != "google":
            return f"unpriced: unknown model {model!r} for provider {provider_id or api_url!r}"
        try:
            _, info = get_snapshot().find_provider_model(bare, None, provider_id, api_url)
        except LookupError:
            return f"unpriced: unknown model {model!r} for provider {provider_id or api_url!r}"
    try:
        static = _compile(info.prices) if isinstance(info.prices, ModelPrice) else None
    except (KeyError, TypeError, ValueError) as exc:
        return f"unpriced: unsupported genai-prices entry for {info.id!r} ({exc})"
    return _Resolved(model=info, static_plan=static)


def _unit_price(price: Decimal | TieredPrices, count: int, total_input: int, per: int) -> Decimal:
    """Same arithmetic as genai-prices' ``calc_unit_price`` (so results are equal to the last digit)."""
    if isinstance(price, TieredPrices):
        applicable = price.base
        for tier in reversed(price.tiers):
            if total_input > tier.start:
                applicable = tier.price
                break
        return applicable * Decimal(count) / per
    return price * Decimal(count) / per


def _usage_values(usage: Usage) -> dict[str, int]:
    """Our usage in genai-prices' usage keys (totals plus their subsets; see the module docstring)."""
    write_5m = usage.prompt_cache_write_5m_tokens or 0
    write_1h = usage.prompt_cache_write_1h_tokens or 0
    values = {
        "input_tokens": usage.prompt_tokens or 0,
        "output_tokens": usage.completion_tokens or 0,
        "cache_read_tokens": usage.prompt_cache_read_tokens or 0,
        "cache_write_tokens": max(usage.prompt_cache_write_tokens or 0, write_5m + write_1h),
        "cache_write_5m_tokens": write_5m,
        "cache_write_1h_tokens": write_1h,
        "input_audio_tokens": usage.prompt_audio_tokens or 0,
        "output_audio_tokens": usage.completion_audio_tokens or 0,
        "output_reasoning_tokens": usage.reasoning_tokens or 0,
    }
    if usage.prompt_cache_read_audio_tokens is not None:  # Reported only when known (0 included).
        values["cache_audio_read_tokens"] = usage.prompt_cache_read_audio_tokens
    return values


def _apply(plan: _Plan, values: Mapping[str, int]) -> Decimal:
    for usage_key, keys in plan.ambiguous:
        if usage_key not in values and all(values.get(k, 0) > 0 for k in keys):
            raise ValueError(f"{' and '.join(sorted(keys))} leave {usage_key} ambiguous")
    total_input = values["input_tokens"] if plan.tiered else 0
    leaves: dict[str, int] = {}
    total = Decimal(0)
    for term in plan.terms:
        leaf = values.get(term.usage_key, 0)
        for descendant in term.descendants:
            leaf -= leaves[descendant]
        if leaf < 0:
            raise ValueError(f"{term.usage_key} is smaller than its parts")
        leaves[term.usage_key] = leaf
        if leaf:  # A zero count adds nothing (and skipping it saves most of the Decimal work).
            total += _unit_price(term.price, leaf, total_input, term.per)
    for price, per in plan.per_request:
        total += _unit_price(price, 1, total_input, per)
    return total


def _override_cost(price: PriceOverride, usage: Usage) -> Decimal:
    """Per-million prices; cached tokens without their own price stay in the input-priced remainder."""
    values = _usage_values(usage)
    cache_read = values["cache_read_tokens"] if price.cache_read is not None else 0
    cache_write = values["cache_write_tokens"] if price.cache_write is not None else 0
    uncached = values["input_tokens"] - cache_read - cache_write
    if uncached < 0:
        raise ValueError("prompt_tokens is smaller than its cached parts")
    amount = uncached * price.input + values["output_tokens"] * price.output
    if price.cache_read is not None:
        amount += cache_read * price.cache_read
    if price.cache_write is not None:
        amount += cache_write * price.cache_write
    return amount / _MILLION


def compute_cost(
    *,
    model: str | None,
    provider: str,
    usage: Usage,
    at: datetime | None = None,
    overrides: Mapping[str, PriceOverride] | None = None,
) -> Cost:
    """Price one request. Never raises: anything that cannot be priced says why in ``source``.

    ``at`` is when the request ran (defaults to now): a few prices depend on it (off-peak discounts,
    dated price changes). ``overrides`` replaces the repository's table (tests, other deployments).
    """
    if usage.source == "absent" or (usage.prompt_tokens is None and usage.completion_tokens is None):
        return Cost(amount=None, source="no usage")
    if not model:
        return Cost(amount=None, source="unpriced: no model")
    table = _repo_overrides() if overrides is None else overrides
    override = table.get(model)
    if override is not None:
        try:
            return Cost(amount=_override_cost(override, usage), source="override")
        except ValueError as exc:
            return Cost(amount=None, source=f"unpriced: {exc}")
    resolved = _lookup(model, provider)
    if isinstance(resolved, str):
        return Cost(amount=None, source=resolved)
    try:
        plan = resolved.static_plan
        if plan is None:
            plan = _plan_for(resolved.model.get_prices(at or datetime.now(tz=UTC)))
        return Cost(amount=_apply(plan, _usage_values(usage)), source=GENAI_PRICES_SOURCE)
    except (KeyError, TypeError, ValueError) as exc:
        return Cost(amount=None, source=f"unpriced: {exc}")
