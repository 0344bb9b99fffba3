"""The prompt store the deployment's settings name: DynamoDB when they name a table (AWS), else a
SQLite file in the data directory (``heliport serve``), beside the key store, as the lead decided."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from heliport.config import Settings
    from heliport.prompts.store import PromptStore

__all__ = ["open_prompt_store"]


def open_prompt_store(settings: Settings) -> PromptStore:
    """Opens nothing on the network: the DynamoDB client is made on the first call, and the adapters
    are imported here, so a process that never serves prompts never imports them."""
    if settings.table_name:
        from heliport.prompts.store import DynamoPromptStore

        return DynamoPromptStore(
            settings.table_name, region=settings.aws_region, endpoint_url=settings.aws_endpoint_url
        )
    from heliport.prompts.store import SqlitePromptStore

    return SqlitePromptStore(settings.data_dir / "prompts.sqlite3")
