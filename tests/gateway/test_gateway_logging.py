"""Gateway calls as stored rows, and where the provider credentials come from and never go."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import aioboto3
import msgspec
import pytest

from heliport.logs.stored_bodies import stored_bodies
from heliport.store.blobs import LocalBlobStore
from tests.gateway.conftest import PROVIDER_ENV, client, start_ai_gateway
from tests.harness import Gateway
from tests.logs.test_end_to_end import logdb_of, wait_for_row
from tests.mock_provider import MockProvider

MESSAGES = [{"role": "user", "content": "Plan a trip"}]


@pytest.fixture(params=["sqlite", "postgres"])
def served(
    request: pytest.FixtureRequest, tmp_path: Path, mock_provider: MockProvider, pg_dsn_sync: str
) -> Iterator[tuple[Gateway, str | None]]:
    database_url = pg_dsn_sync if request.param == "postgres" else None
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "AKIDGATEWAYTEST")
        env.setenv("AWS_SECRET_ACCESS_KEY", "gateway-test-secret")
        gw = start_ai_gateway(tmp_path, mock_provider.url, PROVIDER_ENV, pipeline=True, database_url=database_url)
        yield gw, database_url
        gw.stop()


@pytest.mark.parametrize("spec", ["claude-sonnet-4/anthropic", "claude-sonnet-4/bedrock"])
def test_a_translated_stream_becomes_a_priced_row_with_both_bodies(
    served: tuple[Gateway, str | None], tmp_path: Path, spec: str
) -> None:
    gw, database_url = served
    raw = client(gw).chat.completions.with_raw_response.create(
        model=spec, messages=MESSAGES, stream=True, extra_headers={"Helicone-User-Id": "alice"}
    )
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    row = wait_for_row(logdb_of(gw, tmp_path, database_url), gw.org_id, raw.headers["helicone-id"])
    provider = spec.split("/")[1]
    assert (row.status, row.gateway_model, row.gateway_provider, row.gateway_attempts) == (200, spec, provider, 1)
    assert row.provider == provider.upper()
    assert row.prompt_tokens and row.completion_tokens
    assert row.cost is not None and row.cost > 0  # priced from the native usage, at the provider's rate
    assert row.user_id == "alice" and row.response_preview == text
    assert row.body_key is not None
    blob = asyncio.run(stored_bodies(row, LocalBlobStore(tmp_path / "blobs")))
    assert blob is not None
    bodies = json.loads(gzip.decompress(blob))
    assert json.loads(bodies["request"])["messages"] == MESSAGES  # what the client sent
    assert "chat.completion.chunk" in bodies["response"]  # what the client got
    assert bodies["nativeRequest"] and bodies["nativeResponse"]  # what the provider saw and said
    if provider == "anthropic":
        assert json.loads(bodies["nativeRequest"])["max_tokens"] > 0
        assert "message_start" in bodies["nativeResponse"]


def test_provider_keys_never_reach_the_log_or_the_client(ai_gateway: Gateway, mock_provider: MockProvider) -> None:
    sdk = client(ai_gateway)
    ok = sdk.chat.completions.with_raw_response.create(model="gpt-4o-mini/openai,gpt-4o-mini/azure", messages=MESSAGES)
    translated = sdk.chat.completions.with_raw_response.create(model="claude-sonnet-4/anthropic", messages=MESSAGES)
    for raw in (ok, translated):
        record = ai_gateway.record(raw.headers["helicone-id"])
        stored = msgspec.json.encode(record).decode()
        answered = raw.http_response.text + json.dumps(dict(raw.headers))
        for secret in ("sk-openai-test", "azure-test", "sk-ant-test", "AKIDGATEWAYTEST", "gateway-test-secret"):
            assert secret not in stored and secret not in answered
    assert {r.headers.get("x-api-key") for r in mock_provider.requests} >= {"sk-ant-test"}  # it did go upstream


def test_provider_keys_come_from_one_secrets_manager_secret(
    aws_endpoint: str, mock_provider: MockProvider, tmp_path: Path
) -> None:
    async def create_secret() -> str:
        async with aioboto3.Session().client("secretsmanager", endpoint_url=aws_endpoint) as sm:
            answer = await sm.create_secret(
                Name="heliport/providers", SecretString=json.dumps({"ANTHROPIC_API_KEY": "sk-ant-from-secret"})
            )
            return str(answer["ARN"])

    arn = asyncio.run(create_secret())
    gw = start_ai_gateway(
        tmp_path,
        mock_provider.url,
        {"HELIPORT_PROVIDER_SECRET_ARN": arn},
        aws_region="us-east-1",
        aws_endpoint_url=aws_endpoint,
    )
    try:
        sdk = client(gw)
        for _ in range(2):
            assert sdk.chat.completions.create(model="claude-sonnet-4", messages=MESSAGES).choices[0].message.content
        assert [r.headers["x-api-key"] for r in mock_provider.requests] == ["sk-ant-from-secret"] * 2
        models = {m.id for m in sdk.models.list()}
        assert "claude-sonnet-4" in models and "gpt-4o-mini" not in models  # only what the secret configures
    finally:
        gw.stop()
