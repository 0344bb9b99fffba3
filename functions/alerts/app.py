"""Lambda entry of the alert evaluator: EventBridge Scheduler invokes it every minute, in the VPC.

Each invocation evaluates every enabled alert of every organisation once (``heliport.alerts.evaluate``:
one aggregate statement per alert over Aurora through the query API's per-organisation reader) and
puts the notifications of the transitions it claimed on the outbox queue (``HELIPORT_OUTBOX_QUEUE_URL``,
reached through the VPC's ``sqs`` interface endpoint); the delivery function, outside the VPC, sends
them to Slack and SES. The scheduler's event carries nothing the evaluator needs.

Before anything else it reads the alert index (``heliport.alerts.index``, DynamoDB): when no
organisation has an enabled alert it returns without touching Aurora, so an idle deployment's database
can pause. One event loop lives for the whole execution environment, with the database pool and the SQS client
on it, reused by warm invocations. The first invocation of each environment brings the schema up to
date as the log consumer's does (idempotent, under an advisory lock, one query when there is nothing
to do), so a deploy that adds the alert tables never depends on which function runs first. Nothing
reaches the network at import. A failing alert is logged and recorded on the alert; only a failure to
reach the database or to migrate fails the invocation (the scheduler's next one, a minute later, is the
retry: a failed invocation is not retried, so no transition is notified twice).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from heliport.alerts.evaluate import AlertEvaluator
from heliport.alerts.index import open_alert_index
from heliport.alerts.store import QueryAlertStore
from heliport.config import ConfigError, Settings
from heliport.outbox_sqs import open_outbox
from heliport.store.aurora import database_credentials
from heliport.store.factory import open_logdb, open_query_db

if TYPE_CHECKING:
    from heliport.outbox import Outbox

logger = logging.getLogger("heliport.alerts")

_loop = asyncio.new_event_loop()
_settings = Settings.from_env()
_credentials = database_credentials(_settings)
_db = open_query_db(_settings, _credentials)
_outbox: Outbox | None = None
#: Read before anything else (DynamoDB, through the VPC's gateway endpoint): see heliport.alerts.index.
_index = open_alert_index(_settings)
_migrated = False


def _queue() -> Outbox:
    global _outbox
    if _outbox is None:
        _outbox = open_outbox(_settings)
        if _outbox is None:
            raise ConfigError("HELIPORT_OUTBOX_QUEUE_URL is not set: alert notifications have nowhere to go")
    return _outbox


async def _migrate_once() -> None:
    global _migrated
    if not _migrated:
        writer = open_logdb(_settings, _credentials)
        try:
            applied = await writer.migrate()
        finally:
            await writer.aclose()
        if applied:
            logger.warning("applied migrations %s", ", ".join(applied))
        _migrated = True


async def _handle(event: dict[str, Any]) -> dict[str, int]:
    if _index is not None and not await _index.organisations():
        # No organisation has an enabled alert: Aurora is not touched, so an idle one stays paused.
        return {"evaluated": 0, "failed": 0, "transitions": 0}
    await _migrate_once()
    evaluator = AlertEvaluator(_db, QueryAlertStore(_db), _queue(), _settings)
    report = await evaluator.run()
    if report.failed:
        logger.warning("alerts: %d alerts (or organisations) could not be evaluated", report.failed)
    return {"evaluated": report.evaluated, "failed": report.failed, "transitions": len(report.transitions)}


def handler(event: dict[str, Any], context: object) -> dict[str, int]:
    return _loop.run_until_complete(_handle(event))
