"""The provider-keys secret when Secrets Manager is out of reach: bounded calls and a message that says
why (a function in a VPC without NAT reaches Secrets Manager only through an interface endpoint)."""

from __future__ import annotations

import time

import pytest

from heliport.config import ConfigError, SecretUnreachableError, Settings
from heliport.gateway.providers import load_accounts
from tests.faults import closed_port

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:heliport/providers"


@pytest.fixture
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.mark.anyio
@pytest.mark.usefixtures("fake_aws")
async def test_an_unreachable_secrets_manager_fails_fast_and_is_tried_again_later() -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    loader = load_accounts(
        Settings(aws_region="us-east-1", aws_endpoint_url=endpoint), {"HELIPORT_PROVIDER_SECRET_ARN": ARN}
    )
    for _ in range(2):  # nothing is remembered from a failed read
        started = time.monotonic()
        with pytest.raises(SecretUnreachableError) as caught:
            await loader()
        assert time.monotonic() - started < 15
        message = str(caught.value)
        assert message.startswith(f"HELIPORT_PROVIDER_SECRET_ARN: could not reach Secrets Manager at {endpoint}")
        assert ARN in message and "within 3 s to connect and 3 s to answer, 2 attempt(s)" in message
        assert message.endswith("No route from the VPC? (interface endpoint for secretsmanager)")
        assert isinstance(caught.value, ConfigError)
