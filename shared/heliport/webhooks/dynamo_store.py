"""The webhook store in the deployment's DynamoDB table: what the AWS deployment uses.

In AWS the webhooks live beside the keys and prompts, not in Aurora, because the delivery function runs
outside the VPC (receivers are on the public internet and the VPC has no NAT gateway): it must record
each delivery's outcome somewhere it can reach, and a function outside the VPC cannot reach Aurora (nor
anything private, even if an address check failed). The query API and the log consumer, inside the VPC,
reach the table through the DynamoDB gateway endpoint. Locally, :mod:`heliport.webhooks.store` keeps
them in the log database.

Layout (partition ``pk = webhook#<org_id>``; every read and write names it, so none reaches another
organisation; the functions' IAM policies allow only ``webhook#*`` partitions)::

    sk                                   attributes
    w#<webhook_id>                       id, created_at, destination, version, config (S, JSON),
                                         include_data (BOOL), hmac_key, base_url,
                                         delivered, failed (N), last_status (N), last_error,
                                         last_attempt_at                          a webhook and its log
    d#<webhook_id>#<failed_at>#<id>      id, webhook_id, request_id, failed_at, attempts (N),
                                         status (N), error, payload (B), expires_at (N)  a dead letter

The delivery log's counters move by atomic ``UpdateItem ... ADD``, conditional on the webhook still
existing, so concurrent deliveries never lose a count and a deleted webhook is never brought back as a
bare counter item. ``failed_at`` is fixed-width UTC text, so the sort key orders dead letters by time
and the newest come first from one ``Query``; they expire (TTL on ``expires_at``) after
:data:`DEAD_LETTER_DAYS` days. As in every AWS adapter (``store.aws``), nothing here imports aioboto3
or botocore at load time.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec

from heliport.store.aws import LazyClient
from heliport.webhooks import DeadLetter, DeliveryLog, Webhook, WebhookConfig

__all__ = ["DEAD_LETTER_DAYS", "DynamoWebhookStore"]

#: Days a dead letter is kept before DynamoDB's TTL removes it.
DEAD_LETTER_DAYS: Final = 30
#: Longest error text kept in the log or a dead letter (a receiver's message is not ours to store whole).
_MAX_ERROR: Final = 2000

_Item = dict[str, Any]
_config_decoder = msgspec.json.Decoder(WebhookConfig)
_encoder = msgspec.json.Encoder()


def _pk(org_id: str) -> str:
    return f"webhook#{org_id}"


def _webhook_sk(webhook_id: str) -> str:
    return f"w#{webhook_id}"


def _letters_prefix(webhook_id: str) -> str:
    return f"d#{webhook_id}#"


def _instant(at: datetime) -> str:
    """Fixed-width UTC text: sorts as the instants do."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_instant(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 1] + "…"


def _webhook_item(webhook: Webhook) -> _Item:
    return {
        "pk": {"S": _pk(webhook.org_id)},
        "sk": {"S": _webhook_sk(webhook.id)},
        "id": {"S": webhook.id},
        "created_at": {"S": _instant(webhook.created_at)},
        "destination": {"S": webhook.destination},
        "version": {"S": webhook.version},
        "config": {"S": _encoder.encode(webhook.config).decode()},
        "include_data": {"BOOL": webhook.include_data},
        "hmac_key": {"S": webhook.hmac_key},
        "base_url": {"S": webhook.base_url},
        "delivered": {"N": "0"},
        "failed": {"N": "0"},
    }


def _webhook(org_id: str, item: _Item) -> Webhook:
    return Webhook(
        id=item["id"]["S"],
        org_id=org_id,
        created_at=_parse_instant(item["created_at"]["S"]),
        destination=item["destination"]["S"],
        version=item["version"]["S"],
        config=_config_decoder.decode(item["config"]["S"]),
        include_data=item["include_data"]["BOOL"],
        hmac_key=item["hmac_key"]["S"],
        base_url=item["base_url"]["S"],
        log=DeliveryLog(
            delivered=int(item.get("delivered", {}).get("N", "0")),
            failed=int(item.get("failed", {}).get("N", "0")),
            last_status=int(item["last_status"]["N"]) if "last_status" in item else None,
            last_error=item["last_error"]["S"] if "last_error" in item else None,
            last_attempt_at=_parse_instant(item["last_attempt_at"]["S"]) if "last_attempt_at" in item else None,
        ),
    )


def _letter(org_id: str, item: _Item) -> DeadLetter:
    return DeadLetter(
        id=item["id"]["S"],
        org_id=org_id,
        webhook_id=item["webhook_id"]["S"],
        request_id=item["request_id"]["S"],
        failed_at=_parse_instant(item["failed_at"]["S"]),
        attempts=int(item["attempts"]["N"]),
        status=int(item["status"]["N"]) if "status" in item else None,
        error=item["error"]["S"],
        payload=bytes(item["payload"]["B"]),
    )


class DynamoWebhookStore:
    """:class:`~heliport.webhooks.WebhookStore` in the deployment's DynamoDB table (layout above)."""

    def __init__(self, table_name: str, *, region: str | None = None, endpoint_url: str | None = None) -> None:
        self._table = table_name
        self._client = LazyClient(
            "dynamodb",
            region=region,
            endpoint_url=endpoint_url,
            config={"retries": {"mode": "standard", "max_attempts": 3}, "connect_timeout": 5, "read_timeout": 10},
        )

    async def create(self, webhook: Webhook) -> None:
        client = await self._client.get()
        await client.put_item(
            TableName=self._table, Item=_webhook_item(webhook), ConditionExpression="attribute_not_exists(pk)"
        )

    async def list(self, org_id: str) -> list[Webhook]:
        hooks = [_webhook(org_id, item) for item in await self._query(org_id, "w#")]
        return sorted(hooks, key=lambda w: (w.created_at, w.id))

    async def get(self, org_id: str, webhook_id: str) -> Webhook | None:
        client = await self._client.get()
        response = await client.get_item(
            TableName=self._table,
            Key={"pk": {"S": _pk(org_id)}, "sk": {"S": _webhook_sk(webhook_id)}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return _webhook(org_id, item) if item else None

    async def delete(self, org_id: str, webhook_id: str) -> bool:
        from botocore.exceptions import ClientError

        client = await self._client.get()
        try:
            await client.delete_item(
                TableName=self._table,
                Key={"pk": {"S": _pk(org_id)}, "sk": {"S": _webhook_sk(webhook_id)}},
                ConditionExpression="attribute_exists(pk)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        # Its dead letters go with it (a delivery finishing meanwhile may leave one; its TTL removes it).
        keys = await self._query(org_id, _letters_prefix(webhook_id), projection=True)
        for start in range(0, len(keys), 25):  # BatchWriteItem's limit
            deletes = [{"DeleteRequest": {"Key": {"pk": k["pk"], "sk": k["sk"]}}} for k in keys[start : start + 25]]
            pending: dict[str, Any] = {self._table: deletes}
            for _ in range(5):
                response = await client.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}
                if not pending:
                    break
        return True

    async def record_outcome(
        self, org_id: str, webhook_id: str, *, delivered: bool, status: int | None, error: str | None, at: datetime
    ) -> None:
        from botocore.exceptions import ClientError

        client = await self._client.get()
        values: dict[str, Any] = {":one": {"N": "1"}, ":at": {"S": _instant(at)}}
        sets = ["last_attempt_at = :at"]
        removes: list[str] = []
        if status is None:
            removes.append("last_status")
        else:
            sets.append("last_status = :status")
            values[":status"] = {"N": str(status)}
        if error is None:
            removes.append("last_error")
        else:
            sets.append("last_error = :error")
            values[":error"] = {"S": _clip(error)}
        expression = f"ADD #counter :one SET {', '.join(sets)}"
        if removes:
            expression += f" REMOVE {', '.join(removes)}"
        try:
            await client.update_item(
                TableName=self._table,
                Key={"pk": {"S": _pk(org_id)}, "sk": {"S": _webhook_sk(webhook_id)}},
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(pk)",  # a deleted webhook stays deleted
                ExpressionAttributeNames={"#counter": "delivered" if delivered else "failed"},
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    async def add_dead_letter(self, letter: DeadLetter) -> None:
        client = await self._client.get()
        failed_at = _instant(letter.failed_at)
        item: _Item = {
            "pk": {"S": _pk(letter.org_id)},
            "sk": {"S": f"{_letters_prefix(letter.webhook_id)}{failed_at}#{letter.id}"},
            "id": {"S": letter.id},
            "webhook_id": {"S": letter.webhook_id},
            "request_id": {"S": letter.request_id},
            "failed_at": {"S": failed_at},
            "attempts": {"N": str(letter.attempts)},
            "error": {"S": _clip(letter.error)},
            "payload": {"B": letter.payload},
            "expires_at": {"N": str(int((letter.failed_at + timedelta(days=DEAD_LETTER_DAYS)).timestamp()))},
        }
        if letter.status is not None:
            item["status"] = {"N": str(letter.status)}
        await client.put_item(TableName=self._table, Item=item)

    async def list_dead_letters(self, org_id: str, webhook_id: str, *, limit: int = 100) -> Sequence[DeadLetter]:
        client = await self._client.get()
        response = await client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": {"S": _pk(org_id)}, ":prefix": {"S": _letters_prefix(webhook_id)}},
            ScanIndexForward=False,  # newest first: the sort key carries failed_at
            Limit=max(1, limit),
            ConsistentRead=True,
        )
        return [_letter(org_id, item) for item in response.get("Items", [])]

    async def _query(self, org_id: str, sk_prefix: str, *, projection: bool = False) -> builtins.list[_Item]:
        """Every item of the organisation's partition whose sort key starts with ``sk_prefix``."""
        client = await self._client.get()
        params: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": _pk(org_id)}, ":prefix": {"S": sk_prefix}},
            "ConsistentRead": True,  # the API reads what it has just written
        }
        if projection:
            params["ProjectionExpression"] = "pk, sk"
        items: builtins.list[_Item] = []
        while True:
            response = await client.query(**params)
            items.extend(response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                return items
            params["ExclusiveStartKey"] = last

    async def aclose(self) -> None:
        await self._client.aclose()
