"""Which organisations may have an enabled alert, kept in DynamoDB so an idle deployment's Aurora can pause.

In AWS the evaluator runs every minute. Asking Aurora "is there any enabled alert?" every minute would
keep Aurora Serverless v2 from ever pausing at 0 ACU (it pauses only after minutes without a
connection), which would turn an idle deployment's few dollars a month into about $44 (0.5 ACU around
the clock) for a deployment with no alerts at all. So the query API keeps a small index in the state
table, one item per organisation that may have an enabled alert (partition ``alerts#orgs``), and the
evaluator reads it first (DynamoDB, through the VPC's free gateway endpoint): empty, it does not touch
Aurora. With alerts enabled, the evaluator reads Aurora every minute by design (it must: a window slides
even without traffic), and that cost is the alerts' own.

The index may hold more than the truth, never less: an organisation is marked **before** an alert is
written (and again after it, see below), and unmarked only after its last enabled alert is gone, by a
delete conditional on the mark being the one read before counting. Every interleaving of a create and a
delete in one organisation then leaves the mark in place when an enabled alert exists:

- the create marks (version v1), the delete reads v1 and counts after the create's insert: it sees the
  alert and keeps the mark;
- the delete counts before the insert, then the create marks again (v2): the delete's condition (v1)
  fails and the mark stays;
- the delete removes the mark before the create's second mark: the second mark puts it back.

Locally (``heliport serve``, SQLite) there is nothing to pause and no index: the evaluator asks SQL.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final, Protocol

from heliport.store.aws import LazyClient

if TYPE_CHECKING:
    from heliport.config import Settings

__all__ = ["PARTITION", "AlertIndex", "DynamoAlertIndex", "open_alert_index"]

#: The partition of the index in the state table (one item per organisation, ``sk`` = its id).
PARTITION: Final = "alerts#orgs"


class AlertIndex(Protocol):
    async def mark(self, org_id: str) -> None:
        """The organisation may have an enabled alert (called before and after an alert is written)."""
        ...

    async def unmark_if(self, org_id: str, has_enabled: Callable[[], Awaitable[bool]]) -> None:
        """Remove the organisation's mark when ``has_enabled()`` says it has no enabled alert, unless the
        mark changed meanwhile (a concurrent create)."""
        ...

    async def organisations(self) -> list[str]:
        """Every marked organisation (a superset of those with an enabled alert)."""
        ...

    async def aclose(self) -> None: ...


class DynamoAlertIndex:
    """:class:`AlertIndex` in the state table; the key-confined IAM grant is ``dynamodb:LeadingKeys``
    ``alerts#*`` (the query API writes, the evaluator reads)."""

    def __init__(self, table_name: str, *, region: str | None = None, endpoint_url: str | None = None) -> None:
        self._table = table_name
        self._client = LazyClient("dynamodb", region=region, endpoint_url=endpoint_url)

    async def mark(self, org_id: str) -> None:
        client = await self._client.get()
        await client.put_item(
            TableName=self._table,
            Item={"pk": {"S": PARTITION}, "sk": {"S": org_id}, "version": {"S": uuid.uuid4().hex}},
        )

    async def unmark_if(self, org_id: str, has_enabled: Callable[[], Awaitable[bool]]) -> None:
        client = await self._client.get()
        key = {"pk": {"S": PARTITION}, "sk": {"S": org_id}}
        found = await client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        item = found.get("Item")
        if item is None or await has_enabled():
            return
        # Marked again meanwhile (a concurrent create): the condition fails and the mark stays.
        with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
            await client.delete_item(
                TableName=self._table,
                Key=key,
                ConditionExpression="version = :seen",
                ExpressionAttributeValues={":seen": item["version"]},
            )

    async def organisations(self) -> list[str]:
        client = await self._client.get()
        found: list[str] = []
        params: dict[str, object] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": PARTITION}},
            "ProjectionExpression": "sk",
            "ConsistentRead": True,
        }
        while True:
            page = await client.query(**params)
            found.extend(item["sk"]["S"] for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return found
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    async def aclose(self) -> None:
        await self._client.aclose()


def open_alert_index(settings: Settings) -> AlertIndex | None:
    """The index when the deployment names its state table (AWS); None locally. Opens nothing yet."""
    if not settings.table_name:
        return None
    return DynamoAlertIndex(settings.table_name, region=settings.aws_region, endpoint_url=settings.aws_endpoint_url)
