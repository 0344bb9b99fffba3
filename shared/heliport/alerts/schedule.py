"""``heliport serve``'s alert timer: the evaluator every ``HELIPORT_ALERT_INTERVAL`` seconds, in process.

Started beside the local log pipeline by the app's lifespan (``heliport.app``) and stopped on shutdown:
:meth:`AlertTimer.stop` cancels the loop (an evaluation in progress is cancelled with it; its claimed
transitions are either notified or given back) and closes the outbox and the database reader. The
first run is one interval after start, so a server that starts and stops at once evaluates nothing. A
failing run is logged; the next one comes on time. In AWS, EventBridge Scheduler plays this part
(``functions/alerts``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from heliport.alerts.evaluate import AlertEvaluator
from heliport.alerts.outbox import DirectOutbox
from heliport.alerts.store import QueryAlertStore
from heliport.config import Settings

__all__ = ["AlertTimer", "local_timer"]

logger = logging.getLogger("heliport.alerts")


class AlertTimer:
    def __init__(self, evaluator: AlertEvaluator, interval: float) -> None:
        self.evaluator = evaluator
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="heliport-alerts")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                report = await self.evaluator.run()
                if report.transitions:
                    logger.info("alerts: %d transitions", len(report.transitions))
            except Exception:
                logger.exception("alerts: evaluation failed; the next run is in %g s", self.interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.evaluator.outbox.aclose()
        await self.evaluator.db.aclose()


def local_timer(settings: Settings) -> AlertTimer:
    """The timer ``heliport serve`` runs: the log database the settings name, the in-process outbox."""
    from heliport.store.factory import open_query_db

    db = open_query_db(settings)
    evaluator = AlertEvaluator(db, QueryAlertStore(db), DirectOutbox(settings), settings)
    return AlertTimer(evaluator, settings.alert_interval)
