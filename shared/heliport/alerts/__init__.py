"""Alerts (issue 22): get told when a metric of an organisation's requests crosses a line.

An alert (``/v1/alerts``, ``api/alerts.py``) names a metric of the request rows (error rate, cost,
latency, a token count, or the request count), how to aggregate it over a window (sum, avg, min, max or a
percentile), a threshold, an optional grouping (user, model, provider or a custom property: each group
is judged on its own), a minimum number of requests, a filter in the query API's filter AST, and the
channels it notifies (Slack incoming webhooks, e-mail addresses).

- :mod:`heliport.alerts.metrics` measures an alert: one aggregate SQL statement over the window.
- :mod:`heliport.alerts.evaluate` runs every enabled alert, keeps each (alert, group)'s state and
  writes the trigger history: ok -> over notifies once ("triggered"), over -> ok once ("resolved").
- :mod:`heliport.alerts.messages` writes the notifications; :mod:`heliport.alerts.channels` sends one
  (Slack over heliport's upstream transport, e-mail by SES in AWS or SMTP locally);
  :mod:`heliport.alerts.outbox` is the local, in-process outbox that sends them.
- :mod:`heliport.alerts.schedule` is ``heliport serve``'s timer; ``functions/alerts`` the AWS entry.

This module holds the records and the storage port; :mod:`heliport.alerts.store` implements the port
over the query API's per-organisation reader (row-level security on PostgreSQL, migration 0010).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final, Literal, Protocol

import msgspec

__all__ = [
    "AGGREGATED_METRICS",
    "METRICS",
    "UNGROUPED",
    "Alert",
    "AlertQuery",
    "AlertStore",
    "Channel",
    "EmailChannel",
    "HistoryEntry",
    "Metric",
    "SlackChannel",
]

Metric = Literal[
    "error_rate",
    "cost",
    "latency",
    "total_tokens",
    "prompt_tokens",
    "completion_tokens",
    "prompt_cache_read_tokens",
    "prompt_cache_write_tokens",
    "count",
]
METRICS: Final[tuple[str, ...]] = Metric.__args__  # type: ignore[attr-defined]
#: Metrics that are a per-row value aggregated by the alert's aggregation; error_rate and count are
#: computed over the group's rows as a whole, so their aggregation is ignored.
AGGREGATED_METRICS: Final = frozenset(METRICS) - {"error_rate", "count"}
#: The state key of an alert that is not grouped (``triggeredGroups`` shows it).
UNGROUPED: Final = "*"


class SlackChannel(msgspec.Struct, frozen=True, tag="slack"):
    #: The incoming-webhook URL: a credential, stored as given, shown masked, never logged.
    url: str


class EmailChannel(msgspec.Struct, frozen=True, tag="email"):
    address: str


Channel = SlackChannel | EmailChannel


class AlertQuery(msgspec.Struct, frozen=True, kw_only=True):
    """What is measured: everything of an alert that the aggregate statement depends on."""

    metric: Metric
    window_minutes: int
    minimum_requests: int = 1
    #: None, "user", "model", "provider" or "property:<name>".
    group_by: str | None = None
    #: "sum", "avg", "min", "max" or "p<N>"; ignored for error_rate and count.
    aggregation: str = "sum"
    #: The query API's filter AST ("all" or a node), as ``/v1/request/query`` takes it.
    filter: object = "all"


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    org_id: str
    created_at: datetime
    updated_at: datetime
    name: str
    query: AlertQuery
    threshold: float
    channels: tuple[Channel, ...]
    enabled: bool = True
    last_evaluated_at: datetime | None = None
    #: Why the latest evaluation failed (None when it worked).
    last_error: str | None = None
    #: The groups currently over the threshold (``UNGROUPED`` for an ungrouped alert), sorted.
    triggered_groups: tuple[str, ...] = ()


class HistoryEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One transition of one (alert, group): it went over the line, or came back under it."""

    id: str
    org_id: str
    alert_id: str
    at: datetime
    state: Literal["triggered", "resolved"]
    #: None for an ungrouped alert.
    group: str | None
    value: float
    threshold: float
    requests: int
    requests_url: str


class AlertStore(Protocol):
    """Alerts, their per-group state and their history; every call confined to one organisation."""

    async def create(self, alert: Alert) -> None: ...

    async def list(self, org_id: str, *, enabled_only: bool = False) -> list[Alert]:
        """The organisation's alerts, oldest first, each with its triggered groups."""
        ...

    async def get(self, org_id: str, alert_id: str) -> Alert | None: ...

    async def replace(self, alert: Alert) -> bool:
        """Store the alert's definition (name, query, threshold, channels, enabled, updated_at)."""
        ...

    async def delete(self, org_id: str, alert_id: str) -> bool:
        """Remove the alert, its state and its history; False when the organisation has no such alert."""
        ...

    async def organisations(self) -> Sequence[str]:
        """Every organisation with an enabled alert (the evaluator's worklist)."""
        ...

    async def claim_trigger(self, org_id: str, alert_id: str, group: str, at: datetime) -> bool:
        """Mark ``group`` over; True only for the one caller that made it so (it notifies)."""
        ...

    async def claim_resolve(self, org_id: str, alert_id: str, group: str) -> bool:
        """Mark ``group`` no longer over; True only for the one caller that made it so."""
        ...

    async def add_history(self, entry: HistoryEntry) -> None: ...

    async def history(self, org_id: str, alert_id: str, *, limit: int = 50) -> Sequence[HistoryEntry]:
        """Newest first."""
        ...

    async def mark_evaluated(self, org_id: str, alert_id: str, at: datetime, error: str | None) -> None: ...

    async def aclose(self) -> None: ...
