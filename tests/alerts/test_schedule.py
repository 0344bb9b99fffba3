"""``heliport serve``'s alert timer: it runs the evaluator every interval, survives a failing run, and
stops cleanly (its outbox and reader closed); ``create_app`` starts one only with the local pipeline."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from heliport.alerts.schedule import local_timer
from heliport.alerts.store import QueryAlertStore
from heliport.app import create_app
from heliport.config import Settings
from heliport.store.logdb_sqlite import SqliteLogDb
from tests.alerts.seeds import ORG, alert_for, rows
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.anyio


async def test_the_timer_evaluates_every_interval_and_stops(tmp_path: Path, slack: Receiver) -> None:
    writer = SqliteLogDb(tmp_path / "logs.sqlite3")
    await writer.migrate()
    await writer.insert_requests(rows(ORG, datetime.now(UTC)))
    await writer.aclose()
    settings = Settings(data_dir=tmp_path, trusted_origins=frozenset({slack.url}), alert_interval=0.05)
    timer = local_timer(settings)
    store = QueryAlertStore(timer.evaluator.db)
    await store.create(alert_for(ORG, slack.url + "/timer", 1, metric="count"))
    await timer.start()
    for _ in range(400):
        if slack.received("/timer"):
            break
        await asyncio.sleep(0.025)
    await asyncio.sleep(0.2)  # several more runs: the alert stays over, so no second message
    await timer.stop()
    assert len(slack.received("/timer")) == 1
    await timer.stop()  # idempotent


async def test_runs_that_fail_do_not_stop_the_timer(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(data_dir=tmp_path, alert_interval=0.02)
    timer = local_timer(settings)
    await QueryAlertStore(timer.evaluator.db).organisations()  # the schema is made
    # Then the alerts table goes away under the timer: every run fails to read it, and is logged.
    with sqlite3.connect(tmp_path / "logs.sqlite3") as conn:
        conn.execute("DROP TABLE alerts")
    await timer.start()
    for _ in range(200):
        if caplog.text.count("could not list the organisations") >= 3:
            break
        await asyncio.sleep(0.02)
    await timer.stop()
    assert caplog.text.count("could not list the organisations") >= 3


def test_create_app_runs_the_timer_only_with_the_local_pipeline(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert create_app(settings, local_pipeline=True).alert_timer is not None
    assert create_app(settings).alert_timer is None
