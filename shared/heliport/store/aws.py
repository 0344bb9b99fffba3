"""AWS adapters: the key store on DynamoDB, the log queue on SQS and the blob store on S3, through aioboto3.

aioboto3 (with botocore under it) takes over a second to import, and the proxy's Lambda pays every
import on a cold start, so this module imports neither at load time: each adapter imports them the
first time it needs its client, and keeps that one client (with its connection pool) for its life.

DynamoDB layout (one table, partition key ``pk`` (S), sort key ``sk`` (S), TTL on ``expires_at``;
other features share the table under other ``pk`` prefixes)::

    pk                  sk                  attributes
    org#<org_id>        org                 id, name, created_at
    orgs                org#<org_id>        id, name, created_at          (index for list_orgs, find_orgs)
    orgname#<name>      orgname             id                            (claims a name: create_org)
    apikey#<key_hash>   apikey              id, org_id, name, key_hash, prefix, created_at[, revoked_at]
    org#<org_id>        apikey#<key_id>     the same attributes           (listing for list_keys)
    cache#<key>:<slot>  cache               v (B) or blob (S), expires_at  (store/cache_store.py)
    rl#<counter key>    rl                  n (N), expires_at             (store/counter_store.py)

Every write touching a pair of items does so in one ``TransactWriteItems``, so the pair never
disagrees. Datetimes are ISO-8601 strings, which round-trip exactly through ``fromisoformat``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from heliport.errors import HeliportError
from heliport.logs.record import LogRecord
from heliport.store.ports import ApiKey, Organisation

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

__all__ = [
    "DynamoKeyStore",
    "LazyClient",
    "QueueUnavailableError",
    "S3BlobStore",
    "SqsQueue",
    "create_table",
    "retryable_error",
]

_log = logging.getLogger(__name__)

_T = TypeVar("_T")
#: A DynamoDB item in the low-level client's shape: ``{"name": {"S": "value"}}``.
_Item = dict[str, dict[str, str]]

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


class QueueUnavailableError(HeliportError):
    """The log queue did not accept a record: retries ran out, or the queue refused it outright."""

    status = 503
    code = "queue_unavailable"


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
        client = await stack.enter_async_context(
            aioboto3.Session().client(
                self._service,
                region_name=self._region,
                endpoint_url=self._endpoint_url,
                config=Config(**self._config) if self._config else None,
            )
        )
        self._stack = stack
        return client

    async def aclose(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()


# --- DynamoDB -----------------------------------------------------------------------------------


def _org_item(org: Organisation, pk: str, sk: str) -> _Item:
    return {
        "pk": {"S": pk},
        "sk": {"S": sk},
        "id": {"S": org.id},
        "name": {"S": org.name},
        "created_at": {"S": org.created_at.isoformat()},
    }


def _org(item: _Item) -> Organisation:
    return Organisation(
        id=item["id"]["S"], name=item["name"]["S"], created_at=datetime.fromisoformat(item["created_at"]["S"])
    )


def _key_item(key: ApiKey, pk: str, sk: str) -> _Item:
    item: _Item = {
        "pk": {"S": pk},
        "sk": {"S": sk},
        "id": {"S": key.id},
        "org_id": {"S": key.org_id},
        "name": {"S": key.name},
        "key_hash": {"S": key.key_hash},
        "prefix": {"S": key.prefix},
        "created_at": {"S": key.created_at.isoformat()},
    }
    if key.revoked_at is not None:
        item["revoked_at"] = {"S": key.revoked_at.isoformat()}
    return item


def _key(item: _Item) -> ApiKey:
    revoked = item.get("revoked_at")
    return ApiKey(
        id=item["id"]["S"],
        org_id=item["org_id"]["S"],
        name=item["name"]["S"],
        key_hash=item["key_hash"]["S"],
        prefix=item["prefix"]["S"],
        created_at=datetime.fromisoformat(item["created_at"]["S"]),
        revoked_at=datetime.fromisoformat(revoked["S"]) if revoked else None,
    )


def _org_pk(org_id: str) -> str:
    return f"org#{org_id}"


def _key_pk(key_hash: str) -> str:
    return f"apikey#{key_hash}"


def _org_name_pk(name: str) -> str:
    return f"orgname#{name}"


_ORG_SK = "org"
_ORGS_PK = "orgs"
_ORG_NAME_SK = "orgname"
_KEY_SK = "apikey"


def _cancelled_by_condition(error: ClientError) -> bool:
    """Whether a cancelled transaction failed a condition (rather than conflicting or throttling)."""
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return False
    reasons = error.response.get("CancellationReasons") or []
    if reasons:
        return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons)
    # Some endpoints only put the reasons in the message.
    return "ConditionalCheckFailed" in str(error)


class DynamoKeyStore:
    """Organisations and key hashes in the deployment's DynamoDB table (see the module docstring).

    The key item is addressed by hash so authentication is one GetItem; the listing item under the
    organisation repeats every field so ``list_keys`` is one Query with no follow-up reads.
    """

    def __init__(self, table_name: str, *, region: str | None = None, endpoint_url: str | None = None) -> None:
        self._table = table_name
        # botocore's standard retry mode: backoff with jitter on throttles and transient failures.
        self._client = LazyClient(
            "dynamodb",
            region=region,
            endpoint_url=endpoint_url,
            config={"retries": {"mode": "standard", "max_attempts": 3}, "connect_timeout": 5, "read_timeout": 10},
        )

    async def put_org(self, org: Organisation) -> None:
        client = await self._client.get()
        await client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": self._table, "Item": _org_item(org, _org_pk(org.id), _ORG_SK)}},
                {"Put": {"TableName": self._table, "Item": _org_item(org, _ORGS_PK, _org_pk(org.id))}},
            ]
        )

    async def create_org(self, org: Organisation) -> None:
        """Both organisation items and a claim on the name, in one transaction that fails if any exists.

        The claim item makes a name unique even against a concurrent create. Organisations stored by
        ``put_org`` (the bootstrap) have no claim, so their names are looked up in the listing first.
        """
        from botocore.exceptions import ClientError

        named = await self.find_orgs(org.name)
        if named:
            raise ValueError(f"an organisation named {org.name!r} already exists (id {named[0].id})")
        client = await self._client.get()
        absent = "attribute_not_exists(pk)"
        claim: _Item = {"pk": {"S": _org_name_pk(org.name)}, "sk": {"S": _ORG_NAME_SK}, "id": {"S": org.id}}
        puts = [
            _org_item(org, _org_pk(org.id), _ORG_SK),
            _org_item(org, _ORGS_PK, _org_pk(org.id)),
            claim,
        ]
        try:
            await client.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": self._table, "Item": item, "ConditionExpression": absent}} for item in puts
                ]
            )
        except ClientError as exc:
            if not _cancelled_by_condition(exc):
                raise
            # The reasons come in the order of the items: the third is the name's claim.
            reasons = exc.response.get("CancellationReasons") or []
            if len(reasons) == 3 and reasons[2].get("Code") == "ConditionalCheckFailed":
                raise ValueError(f"an organisation named {org.name!r} already exists") from exc
            if len(reasons) == 3:
                raise ValueError(f"an organisation with id {org.id!r} already exists") from exc
            raise ValueError(f"an organisation with id {org.id!r} or name {org.name!r} already exists") from exc

    async def get_org(self, org_id: str) -> Organisation | None:
        client = await self._client.get()
        # Consistent: only the CLI reads organisations by id, and it may do so right after creating one.
        response = await client.get_item(
            TableName=self._table, Key={"pk": {"S": _org_pk(org_id)}, "sk": {"S": _ORG_SK}}, ConsistentRead=True
        )
        item = response.get("Item")
        return _org(item) if item else None

    async def find_orgs(self, name: str) -> list[Organisation]:
        # One Query of the listing partition (one small item per organisation), not a table scan;
        # consistent, so a name created a moment ago is found (and refused a second time).
        items = await self._query(_ORGS_PK, _org_pk(""), consistent=True)
        named = (_org(item) for item in items if item["name"]["S"] == name)
        return sorted(named, key=lambda o: o.created_at.isoformat())

    async def list_orgs(self) -> list[Organisation]:
        items = await self._query(_ORGS_PK, _org_pk(""))
        # The SQLite store's order (its ORDER BY on the ISO text), so both list alike.
        return sorted((_org(item) for item in items), key=lambda o: o.created_at.isoformat())

    async def put_key(self, key: ApiKey) -> None:
        """Store both items of a new key; ValueError if its hash, or its id within its organisation, is taken."""
        from botocore.exceptions import ClientError

        client = await self._client.get()
        absent = "attribute_not_exists(pk)"
        try:
            await client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": _key_item(key, _key_pk(key.key_hash), _KEY_SK),
                            "ConditionExpression": absent,
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": _key_item(key, _org_pk(key.org_id), f"{_KEY_SK}#{key.id}"),
                            "ConditionExpression": absent,
                        }
                    },
                ]
            )
        except ClientError as exc:
            if _cancelled_by_condition(exc):
                raise ValueError(f"a key with id {key.id!r} or the same hash already exists") from exc
            raise

    async def get_key(self, key_hash: str) -> ApiKey | None:
        client = await self._client.get()
        # An eventually consistent read is half the cost and is what every request pays; a key made
        # a moment ago is readable within a second, and misses are only cached briefly.
        response = await client.get_item(
            TableName=self._table, Key={"pk": {"S": _key_pk(key_hash)}, "sk": {"S": _KEY_SK}}
        )
        item = response.get("Item")
        return _key(item) if item else None

    async def list_keys(self, org_id: str) -> list[ApiKey]:
        items = await self._query(_org_pk(org_id), f"{_KEY_SK}#")
        return sorted((_key(item) for item in items), key=lambda k: k.created_at.isoformat())

    async def revoke_key(self, org_id: str, key_id: str) -> bool:
        from botocore.exceptions import ClientError

        client = await self._client.get()
        listing_key = {"pk": {"S": _org_pk(org_id)}, "sk": {"S": f"{_KEY_SK}#{key_id}"}}
        response = await client.get_item(
            TableName=self._table, Key=listing_key, ConsistentRead=True, ProjectionExpression="key_hash"
        )
        item = response.get("Item")
        if not item:
            return False
        # if_not_exists keeps the first revocation time when a key is revoked twice; the condition
        # stops the update from creating a stray item if the key vanished since the read.
        update = {
            "TableName": self._table,
            "UpdateExpression": "SET revoked_at = if_not_exists(revoked_at, :now)",
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeValues": {":now": {"S": datetime.now(UTC).isoformat()}},
        }
        try:
            await client.transact_write_items(
                TransactItems=[
                    {"Update": {**update, "Key": listing_key}},
                    {"Update": {**update, "Key": {"pk": {"S": _key_pk(item["key_hash"]["S"])}, "sk": {"S": _KEY_SK}}}},
                ]
            )
        except ClientError as exc:
            if _cancelled_by_condition(exc):
                return False
            raise
        return True

    async def _query(self, pk: str, sk_prefix: str, *, consistent: bool = False) -> list[_Item]:
        """Every item in partition ``pk`` whose sort key starts with ``sk_prefix``, across pages."""
        client = await self._client.get()
        params: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":prefix": {"S": sk_prefix}},
            "ConsistentRead": consistent,
        }
        items: list[_Item] = []
        while True:
            response = await client.query(**params)
            items.extend(response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                return items
            params["ExclusiveStartKey"] = last

    async def aclose(self) -> None:
        await self._client.aclose()


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


# --- SQS ----------------------------------------------------------------------------------------


class SqsQueue:
    """The log queue on SQS: ``send`` returns once SQS has stored the record.

    botocore's own retries are off so that this class's are the only ones: a bounded number of
    attempts with exponential backoff and jitter, after which :class:`QueueUnavailableError` tells
    the caller to fall back (spool) instead of holding a response open. Errors no retry can fix (a
    missing queue, a refused message) raise it at once.

    ``read_timeout`` bounds every call, so ``receive`` clamps its long-poll wait to below it; a
    consumer that wants 20 s polls makes its queue with a longer ``read_timeout``.
    """

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
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(LogRecord)

    async def send(self, record: LogRecord) -> None:
        body = self._encoder.encode(record).decode()
        attributes = {
            "request_id": {"DataType": "String", "StringValue": record.request_id},
            "v": {"DataType": "Number", "StringValue": str(record.v)},
        }

        async def call(client: Any) -> None:
            await client.send_message(QueueUrl=self._url, MessageBody=body, MessageAttributes=attributes)

        await self._call("SendMessage", call)

    async def receive(self, max_messages: int = 10, wait_seconds: float = 0) -> list[tuple[str, LogRecord]]:
        """Up to ``max_messages`` (at most 10, SQS's limit) records, each with its receipt handle.

        A message that does not decode as a :class:`LogRecord` is logged and left alone: it comes
        back after its visibility timeout until the queue's redrive policy moves it to the DLQ.
        """
        wait = int(max(0, min(wait_seconds, 20, self._read_timeout - 1)))

        async def call(client: Any) -> dict[str, Any]:
            response: dict[str, Any] = await client.receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=max(1, min(max_messages, 10)),
                WaitTimeSeconds=wait,
                MessageAttributeNames=["All"],
            )
            return response

        response = await self._call("ReceiveMessage", call)
        received: list[tuple[str, LogRecord]] = []
        for message in response.get("Messages", []):
            try:
                received.append((message["ReceiptHandle"], self._decoder.decode(message["Body"])))
            except msgspec.DecodeError:
                _log.warning("undecodable log queue message %s left for the DLQ", message.get("MessageId"))
        return received

    async def delete(self, receipt_handles: Iterable[str]) -> None:
        """Delete received messages, ten per call (SQS's batch limit).

        A handle SQS refuses (expired, say) is logged, not raised: its message comes back and is
        handled again, which consumers must tolerate anyway since SQS delivers at least once.
        """
        handles = list(receipt_handles)
        for start in range(0, len(handles), 10):
            entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles[start : start + 10])]

            async def call(client: Any, entries: list[dict[str, str]] = entries) -> dict[str, Any]:
                response: dict[str, Any] = await client.delete_message_batch(QueueUrl=self._url, Entries=entries)
                return response

            response = await self._call("DeleteMessageBatch", call)
            for failed in response.get("Failed", []):
                _log.warning("log queue delete failed: %s %s", failed.get("Code"), failed.get("Message"))

    async def _call(self, operation: str, call: Callable[[Any], Awaitable[_T]]) -> _T:
        """Run ``call`` with the client, retrying transient failures, else raise QueueUnavailableError."""
        from botocore.exceptions import ClientError, HTTPClientError
        from botocore.exceptions import ConnectionError as BotoConnectionError

        client = await self._client.get()
        error: Exception | None = None
        for attempt in range(self._attempts):
            try:
                return await call(client)
            except (BotoConnectionError, HTTPClientError) as exc:
                error = exc
            except ClientError as exc:
                if not retryable_error(exc):
                    code = exc.response.get("Error", {}).get("Code", "?")
                    raise QueueUnavailableError(f"log queue refused {operation}: {code}") from exc
                error = exc
            if attempt + 1 < self._attempts:
                await asyncio.sleep(self._backoff(attempt))
        raise QueueUnavailableError(f"log queue unavailable for {operation} after {self._attempts} attempts") from error

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with "equal jitter": half the step fixed, half random."""
        step: float = min(self._backoff_cap, self._backoff_base * 2**attempt)
        return step / 2 + random.uniform(0, step / 2)

    async def aclose(self) -> None:
        await self._client.aclose()


def retryable_error(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return code in _RETRYABLE_CODES or status >= 500


# --- S3 -----------------------------------------------------------------------------------------


class S3BlobStore:
    """The blob store on S3 (see ``store.blobs.BlobStore``): bodies, claim checks and the log spool.

    Objects are stored byte for byte: ``Content-Encoding`` is metadata for HTTP readers (a presigned
    GET), and neither botocore nor this class decompresses on ``get``. No ``ServerSideEncryption`` is
    sent, so the bucket's default encryption (SSE-S3 or its KMS key) applies, and the IAM policy need
    not allow a choice the bucket already made.

    botocore's standard retries (backoff with jitter on throttles and 5xx) are enough here: callers
    either run after the response (bodies, spool) or in a consumer that SQS redelivers to.
    """

    def __init__(
        self,
        bucket: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        max_attempts: int = 3,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
    ) -> None:
        self._bucket = bucket
        #: ListObjectsV2's page size (S3's maximum); tests lower it to exercise paging cheaply.
        self._page_size = 1000
        config: dict[str, object] = {
            "retries": {"mode": "standard", "max_attempts": max_attempts},
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
        }
        if endpoint_url:
            # MinIO, moto and other S3-compatibles are addressed by path, not by bucket subdomain.
            config["s3"] = {"addressing_style": "path"}
        self._client = LazyClient("s3", region=region, endpoint_url=endpoint_url, config=config)

    @property
    def bucket(self) -> str:
        return self._bucket

    async def put(
        self, key: str, data: bytes, *, content_type: str = "application/json", content_encoding: str | None = None
    ) -> None:
        client = await self._client.get()
        params: dict[str, Any] = {"Bucket": self._bucket, "Key": key, "Body": data, "ContentType": content_type}
        if content_encoding:
            params["ContentEncoding"] = content_encoding
        await client.put_object(**params)

    async def get(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        client = await self._client.get()
        try:
            response = await client.get_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        async with response["Body"] as body:
            data: bytes = await body.read()
        return data

    async def list(self, prefix: str, limit: int = 1000) -> list[str]:
        if limit <= 0:
            return []
        client = await self._client.get()
        paginator = client.get_paginator("list_objects_v2")
        keys: list[str] = []
        pages = paginator.paginate(
            Bucket=self._bucket,
            Prefix=prefix,
            PaginationConfig={"MaxItems": limit, "PageSize": min(limit, self._page_size)},
        )
        async for page in pages:
            keys.extend(item["Key"] for item in page.get("Contents", []))
            if len(keys) >= limit:
                break
        # S3 lists in UTF-8 byte order, which is code-point order: sorting only guards other S3-compatibles.
        keys.sort()
        return keys[:limit]

    async def delete(self, key: str) -> None:
        client = await self._client.get()
        await client.delete_object(Bucket=self._bucket, Key=key)

    async def presign_get(self, key: str, expires_in: int) -> str | None:
        """A SigV4 presigned GET URL; made locally from the credentials, no request to S3."""
        client = await self._client.get()
        url: str = await client.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=expires_in
        )
        return url

    async def aclose(self) -> None:
        await self._client.aclose()


def _missing(error: ClientError) -> bool:
    """Whether S3 said the object is not there; a missing bucket is a deployment error and still raises."""
    code = error.response.get("Error", {}).get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return code in ("NoSuchKey", "404", "NotFound") or (status == 404 and code != "NoSuchBucket")
