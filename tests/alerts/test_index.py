"""The alert index in DynamoDB (moto's server): marks, conditional unmarks, and every interleaving of a
create and a delete in one organisation leaving the mark when an enabled alert exists."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

from heliport.alerts.index import DynamoAlertIndex, open_alert_index
from heliport.config import Settings
from heliport.store.aws import create_table
from tests.aws import REGION


def _index(endpoint: str) -> DynamoAlertIndex:
    table = f"heliport-{uuid.uuid4().hex[:12]}"
    asyncio.run(create_table(table, region=REGION, endpoint_url=endpoint))
    return DynamoAlertIndex(table, region=REGION, endpoint_url=endpoint)


def _answer(value: bool) -> Callable[[], Awaitable[bool]]:
    async def has_enabled() -> bool:
        return value

    return has_enabled


def test_marks_and_unmarks_per_organisation(aws_endpoint: str) -> None:
    index = _index(aws_endpoint)

    async def run() -> list[list[str]]:
        seen = [await index.organisations()]
        await index.mark("org-a")
        await index.mark("org-a")  # idempotent
        await index.mark("org-b")
        seen.append(sorted(await index.organisations()))
        await index.unmark_if("org-a", _answer(True))  # still has an enabled alert: kept
        seen.append(sorted(await index.organisations()))
        await index.unmark_if("org-a", _answer(False))
        await index.unmark_if("org-c", _answer(False))  # never marked: nothing to do
        seen.append(sorted(await index.organisations()))
        await index.aclose()
        return seen

    assert asyncio.run(run()) == [[], ["org-a", "org-b"], ["org-a", "org-b"], ["org-b"]]


def test_a_create_racing_the_last_delete_keeps_the_mark(aws_endpoint: str) -> None:
    """The delete counts no enabled alert (the create's insert is not committed yet); the create marks
    again before the delete's conditional delete: the mark must survive."""
    index = _index(aws_endpoint)

    async def run() -> list[str]:
        await index.mark("org-a")  # the create's first mark (or an older alert's)

        async def counted_before_the_insert() -> bool:
            await index.mark("org-a")  # meanwhile the create inserts and marks again
            return False

        await index.unmark_if("org-a", counted_before_the_insert)
        found = await index.organisations()
        await index.aclose()
        return found

    assert asyncio.run(run()) == ["org-a"]


def test_only_a_deployment_with_a_table_has_an_index() -> None:
    assert open_alert_index(Settings()) is None
    assert isinstance(open_alert_index(Settings(table_name="t", aws_region=REGION)), DynamoAlertIndex)
