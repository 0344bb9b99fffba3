"""The ``model`` string -> the ordered provider attempts of one request (Helicone's provider routing).

Grammar: comma-separated entries, tried in the order given::

    gpt-4o-mini                     every configured provider of the model, cheapest first
    gpt-4o-mini/openai              only that provider (no failover within the entry)
    gpt-4o/azure/eu-frankfurt       that configured deployment of that provider
    !openai                         keep openai out of every automatic expansion in the string
    gpt-4o-mini/azure,gpt-4o-mini   azure first, then every other provider

Provider names are the registry's (``KNOWN_PROVIDERS``); ``google-ai-studio``, Helicone's name for
the Gemini API, is an alias of ``google`` and plans, excludes and logs as ``google``.

Automatic expansion orders providers by genai-prices' input+output price per million tokens
(:meth:`Registry.price_per_mtok`); providers of equal price come in random order so load spreads
across them, and providers without a known price come last. The same attempt (provider, deployment
and provider model id) is never planned twice: a later entry that repeats one adds nothing.

Slashes: real model ids contain them (OpenRouter's ``meta-llama/llama-3.3-70b-instruct``), so a
``/``-separated part is a provider only when it is a known provider id *and* it is the last part
(``model/provider``) or the one before it (``model/provider/deployment``); everything before it is
the model. A string with no such part is a model id as a whole. The model part is looked up by
registry id and then by any provider's id for a registered model (``claude-sonnet-4-20250514``,
``openai/gpt-4o-mini``), so OpenRouter-style and dated ids route like the registry's own.

Unknown models are forwarded as given, but only through a provider the caller names: without one
there is nothing to route to. A named provider that is not configured is skipped like a failed
attempt (so a chain falls through to its next entry); the request fails with a 400 only when the
whole plan ends up empty, saying why for each entry.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import Decimal

import msgspec

from heliport.errors import RequestError
from heliport.gateway.registry import KNOWN_PROVIDERS, ModelEntry, ProviderEndpoint, Registry, canonical_provider

__all__ = ["Candidate", "RoutingError", "plan"]

_KNOWN = ", ".join(sorted(KNOWN_PROVIDERS))

#: Shared by requests that pass no rng; only the spread of equal-cost providers depends on it.
_RNG = random.Random()


class Candidate(msgspec.Struct, frozen=True):
    """One attempt: which provider, under which of its model ids (and deployment, if named)."""

    #: The registry id, or the model string as given for a model the registry does not know.
    model: str
    provider: str
    #: What the provider is sent as ``model`` (Bedrock: the model or inference profile id).
    provider_model: str
    #: A configured deployment named as ``model/provider/deployment`` (Azure deployment, Bedrock profile).
    deployment: str | None = None
    #: The caller named this provider explicitly (not an automatic expansion).
    pinned: bool = False


class RoutingError(RequestError):
    """The model string cannot be routed; the message says exactly why."""

    code = "invalid_model"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="model")


class _Target(msgspec.Struct, frozen=True):
    text: str
    model: str
    entry: ModelEntry | None
    provider: str | None
    deployment: str | None


def _no_deployments(provider: str, deployment: str) -> bool:
    return False


def plan(
    spec: str,
    registry: Registry,
    *,
    available: Callable[[str], bool],
    deployments: Callable[[str, str], bool] = _no_deployments,
    rng: random.Random | None = None,
) -> list[Candidate]:
    """The attempts for ``spec`` in order. Raises RoutingError (400, param ``model``) when the string
    is malformed or nothing in it can be served."""
    if not spec.strip():
        raise RoutingError("model is empty: give a model id such as 'gpt-4o-mini', optionally as 'model/provider'")
    entries = [raw.strip() for raw in spec.split(",")]
    if "" in entries:
        # Checked before any entry is parsed, so a stray comma is reported as such.
        position = entries.index("") + 1
        raise RoutingError(f"model {spec!r} has an empty entry (entry {position}): remove the extra comma")
    excluded: set[str] = set()
    targets: list[_Target] = []
    for text in entries:
        if text.startswith("!"):
            excluded.add(_exclusion(text))
        else:
            targets.append(_parse(text, registry))
    if not targets:
        names = [f"!{p}" for p in sorted(excluded)]
        raise RoutingError(
            f"model {spec!r} has only exclusions ({', '.join(names)}): add the model to route, "
            f"e.g. '{','.join(names)},gpt-4o-mini'"
        )
    for target in targets:
        if target.provider in excluded:
            raise RoutingError(
                f"provider {target.provider!r} is both excluded (!{target.provider}) and named in {target.text!r}"
            )

    chooser = rng or _RNG
    candidates: list[Candidate] = []
    seen: set[tuple[str, str | None, str]] = set()
    reasons: list[str] = []
    for target in targets:
        if target.provider is None:
            found, reason = _expand(target, registry, excluded, available, chooser)
        else:
            found, reason = _pinned(target, available, deployments)
        if reason:
            reasons.append(reason)
        for candidate in found:
            key = (candidate.provider, candidate.deployment, candidate.provider_model)
            if key not in seen:
                seen.add(key)
                candidates.append(candidate)
    if not candidates:
        raise RoutingError(f"no provider can serve model {spec!r}: " + "; ".join(reasons))
    return candidates


def _exclusion(text: str) -> str:
    name = text[1:].strip().lower()
    if not name:
        raise RoutingError("'!' must be followed by the provider to exclude, e.g. '!openai,gpt-4o-mini'")
    if name not in KNOWN_PROVIDERS:
        raise RoutingError(f"cannot exclude unknown provider {name!r} ({text!r}); known providers: {_KNOWN}")
    return canonical_provider(name)


def _parse(text: str, registry: Registry) -> _Target:
    parts = text.split("/")
    if any(not part.strip() for part in parts):
        raise RoutingError(
            f"{text!r} has an empty part between slashes: write model, model/provider or model/provider/deployment"
        )
    parts = [part.strip() for part in parts]
    lowered = [part.lower() for part in parts]
    if len(parts) >= 2 and lowered[-1] in KNOWN_PROVIDERS:
        model, provider, deployment = "/".join(parts[:-1]), lowered[-1], None
    elif len(parts) >= 3 and lowered[-2] in KNOWN_PROVIDERS:
        model, provider, deployment = "/".join(parts[:-2]), lowered[-2], parts[-1]
    else:
        entry = registry.resolve(text)
        if entry is not None:
            return _Target(text, text, entry, None, None)
        if any(part in KNOWN_PROVIDERS for part in lowered[1:]):
            # A provider part that is neither last nor second to last: too many parts after it.
            raise RoutingError(
                f"{text!r} has too many '/' parts: write model/provider or model/provider/deployment "
                "(a provider must be the last part or the one before it)"
            )
        raise _unknown(text, parts, registry)
    # An alias (google-ai-studio) routes as the provider it names, and is logged as that provider.
    return _Target(text, model, registry.resolve(model), canonical_provider(provider), deployment)


def _unknown(text: str, parts: list[str], registry: Registry) -> RoutingError:
    """Neither a known model nor a model/provider form: say which part is wrong."""
    for cut in (1, 2):
        if len(parts) > cut and registry.resolve("/".join(parts[:-cut])) is not None:
            return RoutingError(f"unknown provider {parts[-cut]!r} in {text!r}; known providers: {_KNOWN}")
    hint = f"name the provider to send it to as is, e.g. '{text}/openai'"
    if len(parts) > 1:
        hint = f"{parts[-1]!r} is not a provider either; {hint}"
    return RoutingError(
        f"unknown model {text!r}: it is not in the model registry, so {hint} (known providers: {_KNOWN})"
    )


def _expand(
    target: _Target,
    registry: Registry,
    excluded: set[str],
    available: Callable[[str], bool],
    rng: random.Random,
) -> tuple[list[Candidate], str | None]:
    entry = target.entry
    assert entry is not None  # _parse only leaves the provider out for a known model
    allowed = [e for e in entry.providers if e.provider not in excluded]
    serving = ", ".join(e.provider for e in entry.providers)
    if not allowed:
        return [], f"every provider of {entry.id} ({serving}) is excluded"
    usable = [e for e in allowed if available(e.provider)]
    if not usable:
        left = ", ".join(e.provider for e in allowed)
        note = f" (after exclusions: {left})" if len(allowed) < len(entry.providers) else ""
        return [], f"{entry.id} is served by {serving}{note}, and none of them is configured"
    ordered = _cheapest_first(usable, registry, rng)
    return [Candidate(entry.id, e.provider, e.model) for e in ordered], None


def _cheapest_first(
    endpoints: list[ProviderEndpoint], registry: Registry, rng: random.Random
) -> list[ProviderEndpoint]:
    """By price; equal prices shuffled (the load balancing), unknown prices last."""
    groups: dict[Decimal | None, list[ProviderEndpoint]] = {}
    for endpoint in endpoints:
        groups.setdefault(registry.price_per_mtok(endpoint), []).append(endpoint)
    ordered: list[ProviderEndpoint] = []
    for price in sorted(groups, key=lambda p: (p is None, p or Decimal(0))):
        group = groups[price]
        rng.shuffle(group)
        ordered.extend(group)
    return ordered


def _pinned(
    target: _Target, available: Callable[[str], bool], deployments: Callable[[str, str], bool]
) -> tuple[list[Candidate], str | None]:
    provider = target.provider
    assert provider is not None
    entry = target.entry
    endpoint = entry.endpoint(provider) if entry is not None else None
    model = entry.id if entry is not None else target.model
    provider_model = endpoint.model if endpoint is not None else target.model
    if target.deployment is not None:
        if not deployments(provider, target.deployment):
            raise RoutingError(
                f"deployment {target.deployment!r} is not configured for provider {provider!r} (in {target.text!r})"
            )
    elif not available(provider):
        return [], f"provider {provider!r} is not configured (in {target.text!r})"
    return [Candidate(model, provider, provider_model, target.deployment, pinned=True)], None
