"""The evaluator on SQLite and PostgreSQL: alerts fire once, stay quiet while over, resolve once, and a
Slack stand-in (a trusted origin on 127.0.0.1) receives each notification through the local outbox."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from heliport.alerts import UNGROUPED, Alert
from heliport.alerts.evaluate import AlertEvaluator
from heliport.alerts.outbox import DirectOutbox
from heliport.alerts.store import QueryAlertStore
from heliport.config import Settings
from heliport.outbox_sqs import SqsOutbox
from tests.alerts.conftest import Database
from tests.alerts.seeds import AGGREGATIONS, METRICS, ORG, OTHER, alert_for, expected_groups, rows
from tests.faults import closed_port
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.anyio

PUBLIC = "https://heliport.example"


def _settings(tmp_path: Path, slack: Receiver) -> Settings:
    return Settings(data_dir=tmp_path, trusted_origins=frozenset({slack.url}), public_url=PUBLIC)


def _evaluator(database: Database, tmp_path: Path, slack: Receiver) -> AlertEvaluator:
    settings = _settings(tmp_path, slack)
    outbox = DirectOutbox(settings, backoff=0.01)
    return AlertEvaluator(database.queries, QueryAlertStore(database.queries), outbox, settings)


async def test_every_metric_and_aggregation_fires_once_and_resolves_once(
    database: Database, tmp_path: Path, slack: Receiver
) -> None:
    now = datetime.now(UTC)
    seeded = rows(ORG, now)
    await database.seed([*seeded, *rows(OTHER, now), *rows(OTHER, now)])
    evaluator = _evaluator(database, tmp_path, slack)
    store = QueryAlertStore(database.queries)
    # One alert per (metric, aggregation, grouping), its threshold the value of one group (so that group
    # is over, and any other group exactly when its own value reaches it).
    expected: dict[str, tuple[Alert, dict[str, tuple[int, float | None]]]] = {}
    for metric in METRICS:
        for aggregation in AGGREGATIONS if metric not in ("error_rate", "count") else ("sum",):
            for group_by in (None, "model"):
                groups = expected_groups(seeded, metric, aggregation, group_by)
                reference = groups["*" if group_by is None else "b"][1]
                assert reference is not None
                threshold = reference - 1e-9 * max(1.0, abs(reference))
                path = f"/hook/{len(expected)}"
                alert = alert_for(
                    ORG, slack.url + path, threshold, metric=metric, aggregation=aggregation, group_by=group_by
                )
                await store.create(alert)
                over = {k: v for k, v in groups.items() if v[1] is not None and v[1] >= threshold}
                expected[path] = (alert, over)

    report = await evaluator.run(now)
    assert report.failed == 0 and report.evaluated == len(expected)
    for path, (alert, over) in expected.items():
        received = slack.wait_for(path, len(over))
        assert len(received) == len(over), (alert.name, [d.body["text"] for d in received])
        assert all(d.body["text"].startswith("Triggered: ") for d in received)
        stored = await store.get(ORG, alert.id)
        assert stored is not None
        want = sorted(UNGROUPED if alert.query.group_by is None else k for k in over)
        assert list(stored.triggered_groups) == want, alert.name
        history = await store.history(ORG, alert.id)
        assert sorted((h.group or UNGROUPED) for h in history) == want
        for entry in history:
            requests, value = over[entry.group or "*"]
            assert entry.state == "triggered" and entry.requests == requests
            assert value is not None and math.isclose(entry.value, value, rel_tol=1e-9, abs_tol=1e-12)
            assert entry.requests_url.startswith(PUBLIC + "/dashboard/#/requests?")

    # Still over a minute later: nothing new.
    again = await evaluator.run(now + timedelta(minutes=1))
    assert again.transitions == [] and again.failed == 0
    # Out of the window: every group resolves, once.
    later = await evaluator.run(now + timedelta(hours=1))
    assert len(later.transitions) == sum(len(over) for _, over in expected.values())
    assert {t.state for t in later.transitions} == {"resolved"}
    for path, (alert, over) in expected.items():
        received = slack.wait_for(path, 2 * len(over))
        assert len(received) == 2 * len(over)
        assert all(d.body["text"].startswith("Resolved: ") for d in received[len(over) :])
        stored = await store.get(ORG, alert.id)
        assert stored is not None and stored.triggered_groups == () and stored.last_evaluated_at is not None
    assert (await evaluator.run(now + timedelta(hours=2))).transitions == []
    await evaluator.outbox.aclose()


async def test_minimum_requests_and_the_filter_are_respected(
    database: Database, tmp_path: Path, slack: Receiver
) -> None:
    now = datetime.now(UTC)
    await database.seed(rows(ORG, now))
    evaluator = _evaluator(database, tmp_path, slack)
    store = QueryAlertStore(database.queries)
    # Count >= 1 per model with at least 4 requests: only b (5 requests); a has 3, c has 1.
    busy = alert_for(ORG, slack.url + "/busy", 1, metric="count", group_by="model", minimum_requests=4)
    # Errors among model a only: 1 of 3 (33.3 %) is not 50 %; among b, 2 of 5 (40 %) would not be either,
    # but the filter keeps b's rows out of a 30 % alert on a.
    on_a = alert_for(
        ORG, slack.url + "/on-a", 30, metric="error_rate", filter={"request_response_rmt": {"model": {"equals": "a"}}}
    )
    not_a = alert_for(
        ORG, slack.url + "/not-a", 34, metric="error_rate", filter={"request_response_rmt": {"model": {"equals": "a"}}}
    )
    for alert in (busy, on_a, not_a):
        await store.create(alert)
    report = await evaluator.run(now)
    got = sorted((t.alert_id, t.group) for t in report.transitions)
    assert got == sorted([(busy.id, "b"), (on_a.id, None)])
    assert len(slack.wait_for("/busy", 1)) == 1 and "model = b" in slack.received("/busy")[0].body["text"]
    assert len(slack.wait_for("/on-a", 1)) == 1
    # The requests page takes no filter AST from a link, so the message spells the filter out.
    assert 'Filter {"request_response_rmt":{"model":{"equals":"a"}}}' in slack.received("/on-a")[0].body["text"]
    assert slack.received("/not-a") == []
    await evaluator.outbox.aclose()


async def test_organisations_never_mix(database: Database, tmp_path: Path, slack: Receiver) -> None:
    now = datetime.now(UTC)
    # OTHER has three times ORG's rows; ORG's count alert at exactly its own 9 rows must see 9.
    await database.seed([*rows(ORG, now), *rows(OTHER, now), *rows(OTHER, now), *rows(OTHER, now)])
    evaluator = _evaluator(database, tmp_path, slack)
    store = QueryAlertStore(database.queries)
    mine = alert_for(ORG, slack.url + "/mine", 9, metric="count")
    theirs = alert_for(OTHER, slack.url + "/theirs", 28, metric="count")  # 27 rows: never over
    for alert in (mine, theirs):
        await store.create(alert)
    assert sorted(await store.organisations()) == sorted([ORG, OTHER])
    report = await evaluator.run(now)
    assert [(t.alert_id, t.value) for t in report.transitions] == [(mine.id, 9.0)]
    assert slack.wait_for("/mine", 1)[0].body["text"].startswith("Triggered: ")
    assert slack.received("/theirs") == []
    # The store never answers for another organisation's alert.
    assert await store.get(OTHER, mine.id) is None
    assert await store.history(OTHER, mine.id) == []
    assert not await store.delete(OTHER, mine.id)
    assert [a.id for a in await store.list(OTHER)] == [theirs.id]
    await evaluator.outbox.aclose()


async def test_a_failing_alert_does_not_stop_the_others(database: Database, tmp_path: Path, slack: Receiver) -> None:
    now = datetime.now(UTC)
    await database.seed(rows(ORG, now))
    evaluator = _evaluator(database, tmp_path, slack)
    store = QueryAlertStore(database.queries)
    # Stored directly, past the API's check: a filter that no longer compiles.
    broken = alert_for(ORG, slack.url + "/broken", 1, metric="count", filter={"request_response_rmt": {"bogus": {}}})
    working = alert_for(ORG, slack.url + "/working", 1, metric="count")
    for alert in (broken, working):
        await store.create(alert)
    report = await evaluator.run(now)
    assert report.failed == 1 and report.evaluated == 1
    assert [t.alert_id for t in report.transitions] == [working.id]
    assert len(slack.wait_for("/working", 1)) == 1
    failed = await store.get(ORG, broken.id)
    assert failed is not None and failed.last_error is not None and "bogus" in failed.last_error
    ok = await store.get(ORG, working.id)
    assert ok is not None and ok.last_error is None
    await evaluator.outbox.aclose()


async def test_two_evaluators_at_once_notify_a_transition_once(
    database: Database, tmp_path: Path, slack: Receiver
) -> None:
    now = datetime.now(UTC)
    await database.seed(rows(ORG, now))
    store = QueryAlertStore(database.queries)
    alerts = [alert_for(ORG, slack.url + f"/race/{i}", 1, metric="count", group_by="model") for i in range(5)]
    for alert in alerts:
        await store.create(alert)
    first, second = _evaluator(database, tmp_path, slack), _evaluator(database, tmp_path, slack)
    reports = await asyncio.gather(first.run(now), second.run(now))
    # Three models per alert, each triggered by exactly one of the two evaluators.
    assert sum(len(r.transitions) for r in reports) == 3 * len(alerts)
    for i in range(len(alerts)):
        assert len(slack.wait_for(f"/race/{i}", 3)) == 3
    resolved = await asyncio.gather(first.run(now + timedelta(hours=1)), second.run(now + timedelta(hours=1)))
    assert sum(len(r.transitions) for r in resolved) == 3 * len(alerts)
    for i in range(len(alerts)):
        assert len(slack.wait_for(f"/race/{i}", 6)) == 6
    await first.outbox.aclose()
    await second.outbox.aclose()


async def test_a_notification_the_outbox_refuses_is_tried_again_next_run(
    database: Database, tmp_path: Path, slack: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    await database.seed(rows(ORG, now))
    settings = _settings(tmp_path, slack)
    store = QueryAlertStore(database.queries)
    alert = alert_for(ORG, slack.url + "/later", 1, metric="count")
    await store.create(alert)

    # The SQS outbox with nothing listening at its endpoint: SQS unreachable, as from a VPC without a route.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    unreachable = SqsOutbox(
        "https://sqs.us-east-1.amazonaws.com/123456789012/outbox",
        region="us-east-1",
        endpoint_url=f"http://127.0.0.1:{closed_port()}",
        attempts=1,
    )
    failing = AlertEvaluator(database.queries, store, unreachable, settings)
    report = await failing.run(now)
    await unreachable.aclose()
    assert report.failed == 1 and report.transitions == []
    stored = await store.get(ORG, alert.id)
    assert stored is not None and stored.triggered_groups == () and stored.last_error is not None
    assert await store.history(ORG, alert.id) == []
    working = _evaluator(database, tmp_path, slack)
    assert [t.state for t in (await working.run(now)).transitions] == ["triggered"]
    assert len(slack.wait_for("/later", 1)) == 1
    await working.outbox.aclose()
