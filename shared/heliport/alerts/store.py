"""The alert store over the query API's reader of the log database (``api/database.py``).

Every statement names its organisation in its own text and runs through :class:`QueryDb`, which on
PostgreSQL drops to the ``heliport_api`` role with ``heliport.org_id`` set, so row-level security
(migration 0010) confines it a second time. The API's handlers and the evaluator use the same store,
so one module holds every statement on these tables. Values are bind parameters only.

Transitions are claimed by conditional writes (``alert_states`` has a row per group that is over):
``INSERT ... ON CONFLICT DO NOTHING`` changes a row only for the first evaluator to mark a group over,
``DELETE`` only for the first to mark it ok again, so exactly one evaluator sees ``True`` and notifies.
That works the same on SQLite and PostgreSQL, through a reader that runs each statement in a
transaction of its own (a transaction-scoped advisory lock would end with its statement).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal, cast

import msgspec

from heliport.alerts import Alert, AlertQuery, Channel, HistoryEntry
from heliport.api.database import QueryDb
from heliport.api.dialect import Params

__all__ = ["QueryAlertStore"]

_channels_decoder = msgspec.json.Decoder(tuple[Channel, ...])
_encoder = msgspec.json.Encoder()

_ALERT_COLUMNS = (
    "id, org_id, created_at, updated_at, name, metric, threshold, window_minutes, minimum_requests, group_by, "
    "aggregation, filter, channels, enabled, last_evaluated_at, last_error"
)
_HISTORY_COLUMNS = "id, org_id, alert_id, at, state, group_key, value, threshold, requests, requests_url"


def _instant(value: object) -> datetime:
    """A stored instant (asyncpg datetime, or SQLite's fixed-width UTC text) as an aware datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"not a timestamp: {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _alert(row: dict[str, Any], groups: tuple[str, ...]) -> Alert:
    last = row["last_evaluated_at"]
    return Alert(
        id=row["id"],
        org_id=row["org_id"],
        created_at=_instant(row["created_at"]),
        updated_at=_instant(row["updated_at"]),
        name=row["name"],
        query=AlertQuery(
            metric=row["metric"],
            window_minutes=int(row["window_minutes"]),
            minimum_requests=int(row["minimum_requests"]),
            group_by=row["group_by"],
            aggregation=row["aggregation"],
            filter=msgspec.json.decode(row["filter"]),
        ),
        threshold=float(row["threshold"]),
        channels=_channels_decoder.decode(row["channels"]),
        enabled=bool(row["enabled"]),
        last_evaluated_at=None if last is None else _instant(last),
        last_error=row["last_error"],
        triggered_groups=groups,
    )


class QueryAlertStore:
    """:class:`~heliport.alerts.AlertStore` on PostgreSQL or SQLite, through a :class:`QueryDb`."""

    def __init__(self, db: QueryDb) -> None:
        self.db = db

    def _definition(self, alert: Alert, p: Params) -> dict[str, str]:
        """Placeholders of the definition's columns (bound in this order)."""
        q = alert.query
        return {
            "updated_at": p.add(self.db.dialect.timestamp(alert.updated_at)),
            "name": p.add(alert.name),
            "metric": p.add(q.metric),
            "threshold": p.add(float(alert.threshold)),
            "window_minutes": p.add(q.window_minutes),
            "minimum_requests": p.add(q.minimum_requests),
            "group_by": p.add(q.group_by),
            "aggregation": p.add(q.aggregation),
            "filter": p.add(_encoder.encode(q.filter).decode()),
            "channels": p.add(_encoder.encode(alert.channels).decode()),
            "enabled": p.add(alert.enabled),
        }

    async def create(self, alert: Alert) -> None:
        p = Params(self.db.dialect)
        fixed = [p.add(alert.id), p.add(alert.org_id), p.add(self.db.dialect.timestamp(alert.created_at))]
        definition = self._definition(alert, p)
        sql = (
            f"INSERT INTO alerts (id, org_id, created_at, {', '.join(definition)}) "
            f"VALUES ({', '.join(fixed + list(definition.values()))})"
        )
        await self.db.execute(alert.org_id, sql, p.values)

    async def _groups(self, org_id: str, alert_ids: Sequence[str] | None = None) -> dict[str, list[str]]:
        p = Params(self.db.dialect)
        sql = f"SELECT alert_id, group_key FROM alert_states WHERE org_id = {p.add(org_id)}"
        if alert_ids is not None:
            sql += f" AND alert_id IN ({', '.join(p.add(i) for i in alert_ids)})"
        found: dict[str, list[str]] = {}
        for row in await self.db.fetch(org_id, sql + " ORDER BY alert_id, group_key", p.values):
            found.setdefault(row["alert_id"], []).append(row["group_key"])
        return found

    async def list(self, org_id: str, *, enabled_only: bool = False) -> list[Alert]:
        p = Params(self.db.dialect)
        sql = f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE org_id = {p.add(org_id)}"
        if enabled_only:
            sql += f" AND enabled = {p.add(True)}"
        rows = await self.db.fetch(org_id, sql + " ORDER BY created_at, id", p.values)
        groups = await self._groups(org_id) if rows else {}
        return [_alert(row, tuple(groups.get(row["id"], ()))) for row in rows]

    async def get(self, org_id: str, alert_id: str) -> Alert | None:
        p = Params(self.db.dialect)
        sql = f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE org_id = {p.add(org_id)} AND id = {p.add(alert_id)}"
        rows = await self.db.fetch(org_id, sql, p.values)
        if not rows:
            return None
        groups = await self._groups(org_id, [alert_id])
        return _alert(rows[0], tuple(groups.get(alert_id, ())))

    async def replace(self, alert: Alert) -> bool:
        p = Params(self.db.dialect)
        definition = self._definition(alert, p)
        assignments = ", ".join(f"{column} = {placeholder}" for column, placeholder in definition.items())
        sql = f"UPDATE alerts SET {assignments} WHERE org_id = {p.add(alert.org_id)} AND id = {p.add(alert.id)}"
        return await self.db.execute(alert.org_id, sql, p.values) > 0

    async def clear_state(self, org_id: str, alert_id: str) -> None:
        """Forget which groups are over (the definition changed: they are judged afresh, and a group
        still over notifies again under the new definition)."""
        p = Params(self.db.dialect)
        sql = f"DELETE FROM alert_states WHERE org_id = {p.add(org_id)} AND alert_id = {p.add(alert_id)}"
        await self.db.execute(org_id, sql, p.values)

    async def delete(self, org_id: str, alert_id: str) -> bool:
        p = Params(self.db.dialect)
        sql = f"DELETE FROM alerts WHERE org_id = {p.add(org_id)} AND id = {p.add(alert_id)}"
        if await self.db.execute(org_id, sql, p.values) == 0:
            return False
        for table in ("alert_states", "alert_history"):  # fixed table names, never input
            p = Params(self.db.dialect)
            sql = f"DELETE FROM {table} WHERE org_id = {p.add(org_id)} AND alert_id = {p.add(alert_id)}"
            await self.db.execute(org_id, sql, p.values)
        return True

    async def organisations(self) -> Sequence[str]:
        if self.db.dialect.name == "postgres":
            # Row-level security hides other organisations' alerts from heliport_api; the SECURITY
            # DEFINER function of migration 0010 answers this one question (ids only). The org_id the
            # reader sets is irrelevant to it.
            sql = "SELECT heliport_alert_organisations() AS org_id"
        else:
            sql = "SELECT DISTINCT org_id FROM alerts WHERE enabled = 1 ORDER BY org_id"
        return [row["org_id"] for row in await self.db.fetch("", sql, [])]

    async def claim_trigger(self, org_id: str, alert_id: str, group: str, at: datetime) -> bool:
        p = Params(self.db.dialect)
        sql = (
            "INSERT INTO alert_states (org_id, alert_id, group_key, since) VALUES "
            f"({p.add(org_id)}, {p.add(alert_id)}, {p.add(group)}, {p.add(self.db.dialect.timestamp(at))}) "
            "ON CONFLICT (org_id, alert_id, group_key) DO NOTHING"
        )
        return await self.db.execute(org_id, sql, p.values) == 1

    async def claim_resolve(self, org_id: str, alert_id: str, group: str) -> bool:
        p = Params(self.db.dialect)
        sql = (
            f"DELETE FROM alert_states WHERE org_id = {p.add(org_id)} AND alert_id = {p.add(alert_id)} "
            f"AND group_key = {p.add(group)}"
        )
        return await self.db.execute(org_id, sql, p.values) == 1

    async def add_history(self, entry: HistoryEntry) -> None:
        p = Params(self.db.dialect)
        values = [
            p.add(entry.id),
            p.add(entry.org_id),
            p.add(entry.alert_id),
            p.add(self.db.dialect.timestamp(entry.at)),
            p.add(entry.state),
            p.add(entry.group),
            p.add(float(entry.value)),
            p.add(float(entry.threshold)),
            p.add(entry.requests),
            p.add(entry.requests_url),
        ]
        sql = f"INSERT INTO alert_history ({_HISTORY_COLUMNS}) VALUES ({', '.join(values)})"
        await self.db.execute(entry.org_id, sql, p.values)

    async def history(self, org_id: str, alert_id: str, *, limit: int = 50) -> Sequence[HistoryEntry]:
        p = Params(self.db.dialect)
        sql = (
            f"SELECT {_HISTORY_COLUMNS} FROM alert_history WHERE org_id = {p.add(org_id)} "
            f"AND alert_id = {p.add(alert_id)} ORDER BY at DESC, id LIMIT {p.add(limit)}"
        )
        return [
            HistoryEntry(
                id=row["id"],
                org_id=row["org_id"],
                alert_id=row["alert_id"],
                at=_instant(row["at"]),
                state=cast(Literal["triggered", "resolved"], row["state"]),
                group=row["group_key"],
                value=float(row["value"]),
                threshold=float(row["threshold"]),
                requests=int(row["requests"]),
                requests_url=row["requests_url"],
            )
            for row in await self.db.fetch(org_id, sql, p.values)
        ]

    async def mark_evaluated(self, org_id: str, alert_id: str, at: datetime, error: str | None) -> None:
        p = Params(self.db.dialect)
        sql = (
            f"UPDATE alerts SET last_evaluated_at = {p.add(self.db.dialect.timestamp(at))}, "
            f"last_error = {p.add(error)} WHERE org_id = {p.add(org_id)} AND id = {p.add(alert_id)}"
        )
        await self.db.execute(org_id, sql, p.values)

    async def aclose(self) -> None:
        await self.db.aclose()
