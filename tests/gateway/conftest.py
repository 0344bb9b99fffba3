"""A heliport whose every gateway provider account points at the mock provider."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.harness import Gateway, start_gateway
from tests.mock_provider import MockProvider

PROVIDERS = ("openai", "anthropic", "google", "x", "groq", "deepseek", "mistral", "openrouter", "azure", "bedrock")

#: One account per provider, each with its own key so tests can tell which one a request used.
PROVIDER_ENV = {
    "OPENAI_API_KEY": "sk-openai-test",
    "ANTHROPIC_API_KEY": "sk-ant-test",
    "GEMINI_API_KEY": "gemini-test",
    "XAI_API_KEY": "xai-test",
    "GROQ_API_KEY": "gsk-test",
    "DEEPSEEK_API_KEY": "sk-deepseek-test",
    "MISTRAL_API_KEY": "mistral-test",
    "OPENROUTER_API_KEY": "sk-or-test",
    "AZURE_OPENAI_API_KEY": "azure-test",
    "AZURE_OPENAI_ENDPOINT": "https://unused.openai.azure.com",
    "AZURE_OPENAI_DEPLOYMENTS": "eu-frankfurt",
    "HELIPORT_BEDROCK_REGION": "us-east-1",
}


def start_ai_gateway(tmp_path: object, mock_url: str, env: dict[str, str], **settings: object) -> Gateway:
    return start_gateway(
        tmp_path,  # type: ignore[arg-type]
        mock_url,
        provider_env=env,
        upstream_overrides={p: mock_url for p in PROVIDERS},
        **settings,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="session")
def ai_gateway(mock_provider: MockProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with pytest.MonkeyPatch.context() as env:
        # Bedrock signs with the function's own credentials; here botocore finds these.
        env.setenv("AWS_ACCESS_KEY_ID", "AKIDGATEWAYTEST")
        env.setenv("AWS_SECRET_ACCESS_KEY", "gateway-test-secret")
        env.delenv("AWS_SESSION_TOKEN", raising=False)
        gw = start_ai_gateway(tmp_path_factory.mktemp("ai-gateway"), mock_provider.url, PROVIDER_ENV)
        yield gw
        gw.stop()


@pytest.fixture(autouse=True)
def _fresh_mock(mock_provider: MockProvider) -> None:
    mock_provider.clear()


def client(gateway: Gateway, **kwargs: object) -> openai.OpenAI:
    """The plain OpenAI SDK as the routing doc uses it: heliport's /v1 and a heliport key as the API key."""
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.key, max_retries=0, **kwargs)  # type: ignore[arg-type]
