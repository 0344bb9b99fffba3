"""The alert evaluator: measure every enabled alert, move each (alert, group) between ok and over.

For each organisation with an enabled alert (``AlertStore.organisations``), each of its enabled alerts is
measured (:func:`heliport.alerts.metrics.measure`: one aggregate statement) and compared with its
threshold: a group is over when its value is at least the threshold and it has at least the alert's
minimum number of requests. Then, per group:

* ok -> over: the transition is claimed (``claim_trigger``); the winner hands one notification per
  channel to the outbox and writes a "triggered" history row;
* over -> still over: nothing (an alert that stays over the line notifies once);
* over -> not over (under the line, too few requests, or no request at all in the window): claimed
  (``claim_resolve``), then one "resolved" notification and history row.

Claims are conditional writes (see :mod:`heliport.alerts.store`), so two evaluators running at once (two
overlapping scheduler invocations, or ``serve`` beside a test run) never notify a transition twice. The
notification is queued before the history row is written: a crash in between loses the row, never
the message; a notification the outbox does not accept gives the claim back, so the next run retries.
A failing alert (a filter that no longer compiles, a database error) is logged and recorded as the
alert's ``last_error``; the other alerts are evaluated regardless.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from heliport.alerts import UNGROUPED, Alert, AlertStore, HistoryEntry
from heliport.alerts.messages import Notice, messages_for, requests_url
from heliport.alerts.metrics import GroupValue, Measurement, measure
from heliport.api.database import QueryDb
from heliport.config import Settings
from heliport.outbox import Outbox

__all__ = ["AlertEvaluator", "Report", "Transition"]

logger = logging.getLogger("heliport.alerts")


@dataclass(frozen=True, slots=True)
class Transition:
    alert_id: str
    group: str | None
    state: Literal["triggered", "resolved"]
    value: float


@dataclass(slots=True)
class Report:
    """What one run did."""

    evaluated: int = 0
    failed: int = 0
    transitions: list[Transition] = field(default_factory=list)


class AlertEvaluator:
    def __init__(self, db: QueryDb, store: AlertStore, outbox: Outbox, settings: Settings) -> None:
        self.db = db
        self.store = store
        self.outbox = outbox
        self.settings = settings

    async def run(self, now: datetime | None = None) -> Report:
        """Evaluate every enabled alert of every organisation once."""
        now = now or datetime.now(UTC)
        report = Report()
        try:
            organisations = await self.store.organisations()
        except Exception:
            logger.exception("alerts: could not list the organisations with alerts")
            report.failed += 1
            return report
        for org_id in organisations:
            await self.run_organisation(org_id, now, report)
        return report

    async def run_organisation(self, org_id: str, now: datetime, report: Report | None = None) -> Report:
        report = report if report is not None else Report()
        try:
            alerts = await self.store.list(org_id, enabled_only=True)
        except Exception:
            logger.exception("alerts: could not read the alerts of organisation %s", org_id)
            report.failed += 1
            return report
        for alert in alerts:
            try:
                report.transitions += await self.evaluate(alert, now)
                report.evaluated += 1
                await self.store.mark_evaluated(org_id, alert.id, now, None)
            except Exception as exc:
                report.failed += 1
                logger.exception("alerts: evaluating alert %s of organisation %s failed", alert.id, org_id)
                try:
                    await self.store.mark_evaluated(org_id, alert.id, now, f"{type(exc).__name__}: {exc}"[:500])
                except Exception:
                    logger.exception("alerts: could not record the failure of alert %s", alert.id)
        return report

    async def evaluate(self, alert: Alert, now: datetime) -> list[Transition]:
        """Measure ``alert`` and act on its groups' transitions; the transitions this caller claimed."""
        measured = await measure(self.db, alert.org_id, alert.query, now)
        minimum = alert.query.minimum_requests
        by_key = {_key(g.group): g for g in measured.groups}
        over = {key for key, g in by_key.items() if g.over(alert.threshold, minimum)}
        was_over = set(alert.triggered_groups)
        done: list[Transition] = []
        for key in sorted(over - was_over):
            if await self.store.claim_trigger(alert.org_id, alert.id, key, now):
                done.append(await self._notify(alert, "triggered", key, by_key[key], measured, now))
        for key in sorted(was_over - over):
            if await self.store.claim_resolve(alert.org_id, alert.id, key):
                group = by_key.get(key) or GroupValue(_name(alert, key), 0, None)
                done.append(await self._notify(alert, "resolved", key, group, measured, now))
        return done

    async def _notify(
        self,
        alert: Alert,
        state: Literal["triggered", "resolved"],
        key: str,
        group: GroupValue,
        measured: Measurement,
        now: datetime,
    ) -> Transition:
        name = _name(alert, key)
        url = requests_url(self.settings, alert, name, measured.start, measured.end)
        notice = Notice(alert, state, name, group.value, group.requests, measured.start, measured.end, url)
        try:
            await self.outbox.put(messages_for(notice))
        except BaseException:
            # Not queued: give the claim back, so the next run sees the same transition and tries again.
            if state == "triggered":
                await self.store.claim_resolve(alert.org_id, alert.id, key)
            else:
                await self.store.claim_trigger(alert.org_id, alert.id, key, now)
            raise
        value = group.value if group.value is not None else 0.0
        await self.store.add_history(
            HistoryEntry(
                id=str(uuid.uuid4()),
                org_id=alert.org_id,
                alert_id=alert.id,
                at=now,
                state=state,
                group=name,
                value=value,
                threshold=alert.threshold,
                requests=group.requests,
                requests_url=url,
            )
        )
        logger.info("alert %s (%s) %s for group %s", alert.id, alert.org_id, state, name or UNGROUPED)
        return Transition(alert.id, name, state, value)


def _key(group: str | None) -> str:
    return UNGROUPED if group is None else group


def _name(alert: Alert, key: str) -> str | None:
    """The group as notifications and history name it: None for an ungrouped alert."""
    return None if alert.query.group_by is None else key
