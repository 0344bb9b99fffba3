"""What the AWS adapters share: one lazily made aioboto3 client each, the retry rule, and the DynamoDB table.

The adapters live with their ports: ``keys.DynamoKeyStore``, ``queue.SqsQueue``,
``blobs.S3BlobStore``, ``cache_store.DynamoCacheStore``, ``counter_store.DynamoCounterStore``.

aioboto3 (with botocore under it) takes over a second to import, and the proxy's Lambda pays every
import on a cold start, so this module imports neither at load time: each adapter imports them the
first time it needs its client, and keeps that one client (with its connection pool) for its life.

DynamoDB layout (one table, partition key ``pk`` (S), sort key ``sk`` (S), TTL on ``expires_at``;
other features share the table under other ``pk`` prefixes)::

    pk                  sk                  attributes
    org#<org_id>        org                 id, name, created_at          (store/keys.py)
    orgs                org#<org_id>        id, name, created_at          (index for list_orgs, find_orgs)
    orgname#<name>      orgname             id                            (claims a name: create_org)
    apikey#<key_hash>   apikey              id, org_id, name, key_hash, prefix, created_at[, revoked_at]
    org#<org_id>        apikey#<key_id>     the same attributes           (listing for list_keys)
    cache#<key>:<slot>  cache               v (B) or blob (S), expires_at  (store/cache_store.py)
    rl#<counter key>    rl                  n (N), expires_at             (store/counter_store.py)
    prompt#<org_id>     ...                 prompts, versions, environments (prompts/store.py)
    webhook#<org_id>    w#<id>, d#<id>#...  webhooks and their dead letters (webhooks/dynamo_store.py)
    alerts#orgs         <org_id>            version                       (alerts/index.py)

Every write touching a pair of items does so in one ``TransactWriteItems``, so the pair never
disagrees. Datetimes are ISO-8601 strings, which round-trip exactly through ``fromisoformat``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

__all__ = ["POOL_CONNECTIONS", "Item", "LazyClient", "SqsAdapter", "create_table", "retryable_code", "retryable_error"]

#: A DynamoDB item in the low-level client's shape: ``{"name": {"S": "value"}}``.
Item = dict[str, dict[str, str]]

# Error codes worth another try: botocore's own throttling and transient lists, plus SQS's KMS
# throttle. Anything answered with a 5xx status is retried too, whatever its code.
_RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
        "KmsThrottled",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
    }
)


#: Connections each AWS client may keep open: above the proxy's concurrency per environment (64 on
#: Lambda Managed Instances), so concurrent requests never wait for one another's connection.
POOL_CONNECTIONS = 100


class LazyClient:
    """One lazily made aioboto3 client, shared by every call of the adapter that owns it.

    Making a client reads credentials and builds its endpoint and connection pool: worth doing once,
    not per call. The lock keeps concurrent first calls from making two.
    """

    def __init__(
        self,
        service: str,
        *,
        region: str | None,
        endpoint_url: str | None,
        config: Mapping[str, object] | None = None,
    ) -> None:
        self._service = service
        self._region = region
        self._endpoint_url = endpoint_url
        self._config = dict(config or {})
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self._lock = asyncio.Lock()

    async def get(self) -> Any:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                self._client = await self._open()
        return self._client

    async def _open(self) -> Any:
        # Deferred imports: see the module docstring.
        import aioboto3
        from botocore.config import Config

        stack = AsyncExitStack()
        # botocore's pool holds 10 connections; on Lambda Managed Instances one process serves 64
        # requests at once, and cache, rate-limit and blob calls would queue for a connection.
        config = {"max_pool_connections": POOL_CONNECTIONS, **self._config}
        client = await stack.enter_async_context(
            aioboto3.Session().client(
                self._service,
                region_name=self._region,
                endpoint_url=self._endpoint_url,
                config=Config(**config),
            )
        )
        self._stack = stack
        return client

    async def aclose(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()


def retryable_error(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return retryable_code(code, status)


def retryable_code(code: str, status: int) -> bool:
    """The retry rule on an error's code and HTTP status, for callers that parse responses themselves."""
    return code in _RETRYABLE_CODES or status >= 500


async def create_table(table_name: str, *, region: str | None = None, endpoint_url: str | None = None) -> bool:
    """Create the heliport table (as the SAM template does) and wait until it is active.

    For tests and ``heliport`` dev commands. Idempotent: an existing table is left as it is, apart
    from turning on TTL if it is off. Returns whether the table was created.
    """
    from botocore.exceptions import ClientError

    holder = LazyClient("dynamodb", region=region, endpoint_url=endpoint_url)
    try:
        client = await holder.get()
        created = True
        try:
            await client.create_table(
                TableName=table_name,
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise
            created = False
        # The waiter's default is a 20 s poll; an on-demand table is usually active in seconds.
        await client.get_waiter("table_exists").wait(
            TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
        )
        ttl = await client.describe_time_to_live(TableName=table_name)
        if ttl.get("TimeToLiveDescription", {}).get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            await client.update_time_to_live(
                TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
            )
        return created
    finally:
        await holder.aclose()


class SqsAdapter:
    """What every adapter over one SQS queue shares (the log queue, the outbox): the queue's URL, one
    client whose botocore retries are off, so that the adapter's own bounded attempts (``_attempts``,
    waiting :meth:`_backoff` between them) are the only ones, and its timeouts."""

    def __init__(
        self,
        queue_url: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        attempts: int = 3,
        backoff_base: float = 0.1,
        backoff_cap: float = 2.0,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._url = queue_url
        self._region = region
        self._endpoint_url = endpoint_url
        self._connect_timeout = connect_timeout
        self._attempts = attempts
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._read_timeout = read_timeout
        self._client = LazyClient(
            "sqs",
            region=region,
            endpoint_url=endpoint_url,
            config={
                "retries": {"mode": "standard", "total_max_attempts": 1},
                "connect_timeout": connect_timeout,
                "read_timeout": read_timeout,
            },
        )

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with "equal jitter": half the step fixed, half random."""
        step: float = min(self._backoff_cap, self._backoff_base * 2**attempt)
        return step / 2 + random.uniform(0, step / 2)

    async def aclose(self) -> None:
        await self._client.aclose()
