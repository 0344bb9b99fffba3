"""The webhook store over the query API's reader of the log database (``api/database.py``).

Every statement names its organisation in its own text and runs through :class:`QueryDb`, which on
PostgreSQL drops to the ``heliport_api`` role with ``heliport.org_id`` set, so row-level security
(migration 0009) confines it a second time. The consumer's deliveries use the same reader, per
organisation, so one module holds every statement on these tables. Values are bind parameters only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from heliport.api.database import QueryDb
from heliport.api.dialect import Params
from heliport.webhooks import DeadLetter, DeliveryLog, Webhook, WebhookConfig

__all__ = ["QueryWebhookStore"]

_config_decoder = msgspec.json.Decoder(WebhookConfig)
_encoder = msgspec.json.Encoder()

_WEBHOOK_COLUMNS = (
    "id, org_id, created_at, destination, version, config, include_data, hmac_key, base_url, "
    "delivered, failed, last_status, last_error, last_attempt_at"
)


def _instant(value: object) -> datetime:
    """A stored instant (asyncpg datetime, or SQLite's fixed-width UTC text) as an aware datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"not a timestamp: {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _webhook(row: dict[str, Any]) -> Webhook:
    last = row["last_attempt_at"]
    return Webhook(
        id=row["id"],
        org_id=row["org_id"],
        created_at=_instant(row["created_at"]),
        destination=row["destination"],
        version=row["version"],
        config=_config_decoder.decode(row["config"]),
        include_data=bool(row["include_data"]),
        hmac_key=row["hmac_key"],
        base_url=row["base_url"],
        log=DeliveryLog(
            delivered=int(row["delivered"]),
            failed=int(row["failed"]),
            last_status=row["last_status"],
            last_error=row["last_error"],
            last_attempt_at=None if last is None else _instant(last),
        ),
    )


class QueryWebhookStore:
    """:class:`~heliport.webhooks.WebhookStore` on PostgreSQL or SQLite, through a :class:`QueryDb`."""

    def __init__(self, db: QueryDb) -> None:
        self.db = db

    async def create(self, webhook: Webhook) -> None:
        p = Params(self.db.dialect)
        values = [
            p.add(webhook.id),
            p.add(webhook.org_id),
            p.add(self.db.dialect.timestamp(webhook.created_at)),
            p.add(webhook.destination),
            p.add(webhook.version),
            p.add(_encoder.encode(webhook.config).decode()),
            p.add(webhook.include_data),
            p.add(webhook.hmac_key),
            p.add(webhook.base_url),
        ]
        sql = (
            "INSERT INTO webhooks (id, org_id, created_at, destination, version, config, include_data, "
            f"hmac_key, base_url) VALUES ({', '.join(values)})"
        )
        await self.db.execute(webhook.org_id, sql, p.values)

    async def list(self, org_id: str) -> list[Webhook]:
        p = Params(self.db.dialect)
        sql = f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks WHERE org_id = {p.add(org_id)} ORDER BY created_at, id"
        return [_webhook(row) for row in await self.db.fetch(org_id, sql, p.values)]

    async def get(self, org_id: str, webhook_id: str) -> Webhook | None:
        p = Params(self.db.dialect)
        sql = f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks WHERE org_id = {p.add(org_id)} AND id = {p.add(webhook_id)}"
        rows = await self.db.fetch(org_id, sql, p.values)
        return _webhook(rows[0]) if rows else None

    async def delete(self, org_id: str, webhook_id: str) -> bool:
        p = Params(self.db.dialect)
        sql = f"DELETE FROM webhooks WHERE org_id = {p.add(org_id)} AND id = {p.add(webhook_id)}"
        if await self.db.execute(org_id, sql, p.values) == 0:
            return False
        p = Params(self.db.dialect)
        sql = f"DELETE FROM webhook_dead_letters WHERE org_id = {p.add(org_id)} AND webhook_id = {p.add(webhook_id)}"
        await self.db.execute(org_id, sql, p.values)
        return True

    async def record_outcome(
        self, org_id: str, webhook_id: str, *, delivered: bool, status: int | None, error: str | None, at: datetime
    ) -> None:
        counter = "delivered" if delivered else "failed"  # one of two fixed column names, never input
        p = Params(self.db.dialect)
        sql = (
            f"UPDATE webhooks SET {counter} = {counter} + 1, last_status = {p.add(status)}, "
            f"last_error = {p.add(error)}, last_attempt_at = {p.add(self.db.dialect.timestamp(at))} "
            f"WHERE org_id = {p.add(org_id)} AND id = {p.add(webhook_id)}"
        )
        await self.db.execute(org_id, sql, p.values)

    async def add_dead_letter(self, letter: DeadLetter) -> None:
        p = Params(self.db.dialect)
        values = [
            p.add(letter.id),
            p.add(letter.org_id),
            p.add(letter.webhook_id),
            p.add(letter.request_id),
            p.add(self.db.dialect.timestamp(letter.failed_at)),
            p.add(letter.attempts),
            p.add(letter.status),
            p.add(letter.error),
            p.add(letter.payload),
        ]
        sql = (
            "INSERT INTO webhook_dead_letters (id, org_id, webhook_id, request_id, failed_at, attempts, status, "
            f"error, payload) VALUES ({', '.join(values)})"
        )
        await self.db.execute(letter.org_id, sql, p.values)

    async def list_dead_letters(self, org_id: str, webhook_id: str, *, limit: int = 100) -> Sequence[DeadLetter]:
        p = Params(self.db.dialect)
        sql = (
            "SELECT id, org_id, webhook_id, request_id, failed_at, attempts, status, error, payload "
            f"FROM webhook_dead_letters WHERE org_id = {p.add(org_id)} AND webhook_id = {p.add(webhook_id)} "
            f"ORDER BY failed_at DESC, id LIMIT {p.add(limit)}"
        )
        return [
            DeadLetter(
                id=row["id"],
                org_id=row["org_id"],
                webhook_id=row["webhook_id"],
                request_id=row["request_id"],
                failed_at=_instant(row["failed_at"]),
                attempts=int(row["attempts"]),
                status=row["status"],
                error=row["error"],
                payload=bytes(row["payload"]),
            )
            for row in await self.db.fetch(org_id, sql, p.values)
        ]

    async def aclose(self) -> None:
        await self.db.aclose()
