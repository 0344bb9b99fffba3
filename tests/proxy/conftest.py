"""Fixtures shared by the proxy feature tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Gateway, start_gateway
from tests.mock_provider import MockProvider


@pytest.fixture
def broken_store_gateway(mock_provider: MockProvider, tmp_path: Path, aws_endpoint: str) -> Iterator[Gateway]:
    """A heliport whose cache and rate-limit table lives on an endpoint that refuses connections."""
    gw = start_gateway(
        tmp_path,
        mock_provider.url,
        table_name="heliport-unreachable",
        aws_region="us-east-1",
        aws_endpoint_url="http://127.0.0.1:9",
    )
    yield gw
    gw.stop()
