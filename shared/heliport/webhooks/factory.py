"""The webhook store the deployment's settings name: DynamoDB when they name a table (AWS, where the
delivery function outside the VPC records outcomes), else the log database through the query API's
per-organisation reader (``heliport serve``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from heliport.api.database import QueryDb
    from heliport.config import Settings
    from heliport.webhooks import WebhookStore

__all__ = ["open_webhook_store"]


def open_webhook_store(settings: Settings, db: QueryDb | None = None) -> WebhookStore:
    """Opens nothing on the network. ``db`` is a reader the caller already has (the query API's own),
    used instead of opening another when the store is the SQL one; closing the store closes it."""
    if settings.table_name:
        from heliport.webhooks.dynamo_store import DynamoWebhookStore

        return DynamoWebhookStore(
            settings.table_name, region=settings.aws_region, endpoint_url=settings.aws_endpoint_url
        )
    from heliport.webhooks.store import QueryWebhookStore

    if db is None:
        from heliport.store.factory import open_query_db

        db = open_query_db(settings)
    return QueryWebhookStore(db)
