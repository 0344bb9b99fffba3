"""Provider accounts of the unified gateway: where each provider is and which credential it takes.

Credentials come from the deployment, never from the caller (the caller's bearer token is its
heliport key). Locally they are environment variables with the providers' usual names
(``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ...); in AWS one Secrets Manager secret
(``HELIPORT_PROVIDER_SECRET_ARN``) holds a JSON object with the same names and is read once per
container; AWS Bedrock uses the function's own IAM role; Vertex AI a Google service-account key
(``GOOGLE_APPLICATION_CREDENTIALS_JSON``, see :mod:`.vertex`). A provider without a credential is simply
not available to routing. Credentials are kept in :class:`Account` objects whose ``repr`` hides
them, and they only ever leave as upstream request headers.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from heliport.config import ConfigError, SecretTimeouts, Settings

if TYPE_CHECKING:
    from heliport.gateway.vertex import VertexAuth

__all__ = ["PROVIDER_LABELS", "Account", "Accounts", "Family", "load_accounts"]

Family = Literal["openai", "azure", "anthropic", "bedrock", "vertex"]


@dataclass(frozen=True, slots=True)
class _Kind:
    family: Family
    #: Helicone's provider label, stored on the log row (cost lookup and Helicone-shaped queries use it).
    label: str
    base_url: str
    #: Path of the chat endpoint under the base URL (OpenAI-compatible providers differ here).
    chat_path: str = "/v1/chat/completions"
    key_env: tuple[str, ...] = ()
    #: Override slug in ``HELIPORT_UPSTREAM_<SLUG>`` (shared with the pass-through proxy's routes).
    slug: str = ""


_KINDS: dict[str, _Kind] = {
    "openai": _Kind("openai", "OPENAI", "https://api.openai.com", key_env=("OPENAI_API_KEY",), slug="openai"),
    "anthropic": _Kind(
        "anthropic", "ANTHROPIC", "https://api.anthropic.com", "/v1/messages", ("ANTHROPIC_API_KEY",), "anthropic"
    ),
    "google": _Kind(
        "openai",
        "GOOGLE",
        "https://generativelanguage.googleapis.com",
        "/v1beta/openai/chat/completions",
        ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        "google",
    ),
    "xai": _Kind("openai", "X", "https://api.x.ai", key_env=("XAI_API_KEY",), slug="x"),
    "groq": _Kind("openai", "GROQ", "https://api.groq.com", "/openai/v1/chat/completions", ("GROQ_API_KEY",), "groq"),
    "deepseek": _Kind(
        "openai", "DEEPSEEK", "https://api.deepseek.com", "/chat/completions", ("DEEPSEEK_API_KEY",), "deepseek"
    ),
    "mistral": _Kind("openai", "MISTRAL", "https://api.mistral.ai", key_env=("MISTRAL_API_KEY",), slug="mistral"),
    "openrouter": _Kind(
        "openai",
        "OPENROUTER",
        "https://openrouter.ai",
        "/api/v1/chat/completions",
        ("OPENROUTER_API_KEY",),
        "openrouter",
    ),
    # OpenAI-compatible hosts: Helicone's provider slug -> its log label (Helicone's providersNames),
    # the host's documented base URL and chat path, and the key variable each host's docs use.
    "together": _Kind("openai", "TOGETHER", "https://api.together.xyz", key_env=("TOGETHER_API_KEY",), slug="together"),
    "fireworks": _Kind(
        "openai",
        "FIREWORKS",
        "https://api.fireworks.ai",
        "/inference/v1/chat/completions",
        ("FIREWORKS_API_KEY",),
        "fireworks",
    ),
    "cerebras": _Kind("openai", "CEREBRAS", "https://api.cerebras.ai", key_env=("CEREBRAS_API_KEY",), slug="cerebras"),
    "perplexity": _Kind(
        "openai", "PERPLEXITY", "https://api.perplexity.ai", "/chat/completions", ("PERPLEXITY_API_KEY",), "perplexity"
    ),
    "deepinfra": _Kind(
        "openai",
        "DEEPINFRA",
        "https://api.deepinfra.com",
        "/v1/openai/chat/completions",
        ("DEEPINFRA_API_KEY", "DEEPINFRA_TOKEN"),
        "deepinfra",
    ),
    "nebius": _Kind(
        "openai", "NEBIUS", "https://api.tokenfactory.nebius.com", key_env=("NEBIUS_API_KEY",), slug="nebius"
    ),
    "novita": _Kind(
        "openai", "NOVITA", "https://api.novita.ai", "/openai/v1/chat/completions", ("NOVITA_API_KEY",), "novita"
    ),
    "hyperbolic": _Kind(
        "openai", "HYPERBOLIC", "https://api.hyperbolic.xyz", key_env=("HYPERBOLIC_API_KEY",), slug="hyperbolic"
    ),
    "nvidia": _Kind("openai", "NVIDIA", "https://integrate.api.nvidia.com", key_env=("NVIDIA_API_KEY",), slug="nvidia"),
    "llama": _Kind(
        "openai", "LLAMA", "https://api.llama.com", "/compat/v1/chat/completions", ("LLAMA_API_KEY",), "llama"
    ),
    "azure": _Kind("azure", "AZURE", "", "", ("AZURE_OPENAI_API_KEY",), "azure"),
    "bedrock": _Kind("bedrock", "BEDROCK", "", "", (), "bedrock"),
    # Helicone labels every *.googleapis.com host GOOGLE (packages/cost/providers/mappings.ts), Vertex included.
    "vertex": _Kind("vertex", "GOOGLE", "", "", (), "vertex"),
}

PROVIDER_LABELS = {provider: kind.label for provider, kind in _KINDS.items()}

_AZURE_API_VERSION = "2024-10-21"


@dataclass(frozen=True)
class Account:
    """One usable provider: its family, where it is, and its credential (hidden from ``repr``)."""

    provider: str
    family: Family
    label: str
    base_url: str
    chat_path: str
    api_key: str | None = field(default=None, repr=False)
    #: Azure: the API version; Bedrock: unused.
    api_version: str | None = None
    #: Bedrock: the region whose runtime endpoint is called; Vertex: the location.
    region: str | None = None
    #: Vertex: the Google Cloud project.
    project: str | None = None
    #: Vertex: the service account's token source (one per account, so its cached token is shared).
    google: VertexAuth | None = field(default=None, repr=False, compare=False)
    #: Deployments a caller may name as ``model/provider/<deployment>``.
    deployments: frozenset[str] = frozenset()


class Accounts:
    """The configured providers. ``available`` and ``has_deployment`` are what routing asks."""

    def __init__(self, accounts: Mapping[str, Account]) -> None:
        self._accounts = dict(accounts)

    def available(self, provider: str) -> bool:
        return provider in self._accounts

    def has_deployment(self, provider: str, deployment: str) -> bool:
        account = self._accounts.get(provider)
        return account is not None and deployment in account.deployments

    def get(self, provider: str) -> Account:
        return self._accounts[provider]

    def providers(self) -> list[str]:
        return sorted(self._accounts)


def _accounts_from(values: Mapping[str, str], settings: Settings) -> Accounts:
    overrides = settings.upstream_overrides
    accounts: dict[str, Account] = {}
    for provider, kind in _KINDS.items():
        key = next((values[name] for name in kind.key_env if values.get(name)), None)
        base = overrides.get(kind.slug) or (overrides.get("oai") if provider == "openai" else None) or kind.base_url
        if kind.family == "azure":
            endpoint = overrides.get("azure") or values.get("AZURE_OPENAI_ENDPOINT", "")
            if not key or not endpoint:
                continue
            accounts[provider] = Account(
                provider,
                kind.family,
                kind.label,
                endpoint.rstrip("/"),
                "",
                key,
                api_version=values.get("AZURE_OPENAI_API_VERSION") or _AZURE_API_VERSION,
                deployments=_csv(values.get("AZURE_OPENAI_DEPLOYMENTS", "")),
            )
        elif kind.family == "bedrock":
            region = values.get("HELIPORT_BEDROCK_REGION")
            if not region:
                continue
            accounts[provider] = Account(
                provider,
                kind.family,
                kind.label,
                overrides.get("bedrock", ""),
                "",
                region=region,
                deployments=_csv(values.get("HELIPORT_BEDROCK_PROFILES", "")),
            )
        elif kind.family == "vertex":
            from heliport.gateway.vertex import vertex_settings

            vertex = vertex_settings(values)
            if vertex is None:
                continue
            accounts[provider] = Account(
                provider,
                kind.family,
                kind.label,
                overrides.get("vertex", ""),
                "",
                region=vertex.location,
                project=vertex.project,
                google=vertex.auth,
            )
        elif key:
            accounts[provider] = Account(provider, kind.family, kind.label, base.rstrip("/"), kind.chat_path, key)
    return Accounts(accounts)


def _csv(raw: str) -> frozenset[str]:
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


class _Loader:
    """Reads the accounts once: from the environment, or from the Secrets Manager secret it names."""

    def __init__(self, settings: Settings, environ: Mapping[str, str]) -> None:
        self._settings = settings
        self._environ = environ
        self._accounts: Accounts | None = None
        self._lock = asyncio.Lock()

    async def __call__(self) -> Accounts:
        if self._accounts is None:
            async with self._lock:
                if self._accounts is None:
                    values = dict(self._environ)
                    secret_id = values.get("HELIPORT_PROVIDER_SECRET_ARN")
                    if secret_id:
                        values.update(await _read_secret(secret_id, self._settings))
                    self._accounts = _accounts_from(values, self._settings)
        return self._accounts


async def _read_secret(secret_id: str, settings: Settings, timeouts: SecretTimeouts | None = None) -> dict[str, str]:
    import msgspec

    from heliport.store.secrets import read_secret_string

    text = await asyncio.to_thread(
        read_secret_string,
        "HELIPORT_PROVIDER_SECRET_ARN",
        secret_id,
        region=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        timeouts=timeouts or SecretTimeouts(),
    )
    try:
        values = msgspec.json.decode(text or "{}")
    except msgspec.DecodeError:
        raise ConfigError("HELIPORT_PROVIDER_SECRET_ARN must hold a JSON object of provider keys") from None
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise ConfigError("HELIPORT_PROVIDER_SECRET_ARN must hold a JSON object of string values")
    return values


def load_accounts(settings: Settings, environ: Mapping[str, str] | None = None) -> _Loader:
    """An awaitable that yields the accounts, reading the environment (or secret) on first use."""
    return _Loader(settings, os.environ if environ is None else environ)
