"""Secrets Manager reads are bounded well below botocore's defaults (60 s to connect, several attempts)."""

from __future__ import annotations

import pytest

from heliport.config import SecretTimeouts, SecretUnreachableError
from heliport.store.secrets import read_secret_string, secrets_client
from tests.faults import closed_port


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def test_the_client_carries_the_bounds() -> None:
    client = secrets_client("us-east-1", "http://127.0.0.1:1", SecretTimeouts())
    try:
        config = client.meta.config
        assert (config.connect_timeout, config.read_timeout) == (3.0, 3.0)
        assert config.retries == {"mode": "standard", "total_max_attempts": 2}
    finally:
        client.close()


def test_an_unreachable_service_names_the_setting_the_secret_and_the_route() -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(SecretUnreachableError) as caught:
        read_secret_string(
            "HELIPORT_X_SECRET_ARN", "arn:x", region="us-east-1", endpoint_url=endpoint, timeouts=SecretTimeouts()
        )
    message = str(caught.value)
    assert message.startswith(f"HELIPORT_X_SECRET_ARN: could not reach Secrets Manager at {endpoint} to read arn:x")
    assert message.endswith("(interface endpoint for secretsmanager)")


def test_a_secret_is_read_through_the_real_protocol(aws_endpoint: str) -> None:
    import boto3

    arn = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=aws_endpoint).create_secret(
        Name="heliport/test-secrets-module", SecretString='{"OPENAI_API_KEY": "sk-1"}'
    )["ARN"]
    text = read_secret_string("V", arn, region="us-east-1", endpoint_url=aws_endpoint, timeouts=SecretTimeouts())
    assert text == '{"OPENAI_API_KEY": "sk-1"}'
