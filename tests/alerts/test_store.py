"""The alert store on both databases, and PostgreSQL's second wall: row-level security hides one
organisation's alerts, states and history from a statement run for another, even one naming none."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from heliport.alerts import EmailChannel, HistoryEntry
from heliport.alerts.store import QueryAlertStore
from heliport.api.database import PostgresQueries
from heliport.store.logdb_postgres import PostgresLogDb
from tests.alerts.conftest import Database
from tests.alerts.seeds import ORG, OTHER, alert_for
from tests.postgres import throwaway_database

pytestmark = pytest.mark.anyio


async def test_a_transition_is_claimed_once(database: Database) -> None:
    store = QueryAlertStore(database.queries)
    alert = alert_for(ORG, "https://hooks.slack.com/services/T/B/abcd", 1, metric="count")
    await store.create(alert)
    now = datetime.now(UTC)
    assert await store.claim_trigger(ORG, alert.id, "gpt-4o", now)
    assert not await store.claim_trigger(ORG, alert.id, "gpt-4o", now)
    stored = await store.get(ORG, alert.id)
    assert stored is not None and stored.triggered_groups == ("gpt-4o",)
    assert await store.claim_resolve(ORG, alert.id, "gpt-4o")
    assert not await store.claim_resolve(ORG, alert.id, "gpt-4o")


async def test_row_level_security_hides_other_organisations_alerts() -> None:
    async with throwaway_database() as dsn:
        writer = PostgresLogDb(dsn, max_size=1)
        await writer.migrate()
        await writer.aclose()
        queries = PostgresQueries(dsn)
        store = QueryAlertStore(queries)
        alert = msgspec.structs.replace(
            alert_for(ORG, "https://hooks.slack.com/services/T/B/abcd", 1, metric="count"),
            channels=(EmailChannel("a@b.co"),),
        )
        await store.create(alert)
        now = datetime.now(UTC)
        assert await store.claim_trigger(ORG, alert.id, "*", now)
        await store.add_history(
            HistoryEntry(
                id="h1", org_id=ORG, alert_id=alert.id, at=now, state="triggered", group=None,
                value=2.0, threshold=1.0, requests=2, requests_url="https://x/dashboard/#/requests",
            )
        )  # fmt: skip
        for table in ("alerts", "alert_states", "alert_history"):
            # A statement that names no organisation still sees only the one set for the call.
            assert await queries.fetch(OTHER, f"SELECT org_id FROM {table}", []) == []
            assert [r["org_id"] for r in await queries.fetch(ORG, f"SELECT org_id FROM {table}", [])] == [ORG]
        # Writing a row of another organisation is refused by the policy's WITH CHECK.
        with pytest.raises(Exception, match="row-level security"):
            await queries.execute(
                OTHER,
                "INSERT INTO alert_states (org_id, alert_id, group_key, since) VALUES ($1, $2, $3, now())",
                [ORG, alert.id, "sneaky"],
            )
        # The evaluator's worklist names the organisation without showing its rows.
        assert await store.organisations() == [ORG]
        await queries.aclose()
