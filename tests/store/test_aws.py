"""What every AWS adapter's client shares (``heliport.store.aws.LazyClient``)."""

from __future__ import annotations

import pytest

from heliport.store.aws import POOL_CONNECTIONS, LazyClient
from tests.aws import REGION

pytestmark = pytest.mark.anyio


async def test_clients_keep_a_pool_above_one_environments_concurrency(aws_endpoint: str) -> None:
    """botocore's default pool (10) would make 64 concurrent requests of one Managed Instances
    environment queue for connections; every adapter's client gets the wider pool, and an adapter's
    own settings are kept beside it."""
    plain = LazyClient("dynamodb", region=REGION, endpoint_url=aws_endpoint)
    tuned = LazyClient("sqs", region=REGION, endpoint_url=aws_endpoint, config={"read_timeout": 3.0})
    try:
        assert (await plain.get()).meta.config.max_pool_connections == POOL_CONNECTIONS >= 64
        config = (await tuned.get()).meta.config
        assert config.max_pool_connections == POOL_CONNECTIONS
        assert config.read_timeout == 3.0
    finally:
        await plain.aclose()
        await tuned.aclose()
