"""The evaluator's Lambda entry, run as Lambda would: handler(event, context) with EventBridge
Scheduler's event, against real PostgreSQL, its notifications put on an SQS queue (moto's server)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from heliport.alerts import Alert, AlertQuery, EmailChannel, SlackChannel
from heliport.alerts.store import QueryAlertStore
from heliport.api.database import PostgresQueries
from heliport.outbox import EmailMessage, SlackMessage, decode
from heliport.store.logdb_postgres import PostgresLogDb
from tests.alerts.seeds import ORG, OTHER, rows
from tests.aws import REGION
from tests.harness import load_entry

#: What EventBridge Scheduler sends a Lambda target (the evaluator reads nothing of it).
SCHEDULE_EVENT = {
    "version": "0",
    "id": "5b0f2a34-1111-2222-3333-444455556666",
    "detail-type": "Scheduled Event",
    "source": "aws.scheduler",
    "account": "123456789012",
    "time": "2026-12-06T03:00:00Z",
    "region": REGION,
    "resources": ["arn:aws:scheduler:us-east-1:123456789012:schedule/default/heliport-alerts"],
    "detail": "{}",
}


async def _seed(dsn: str, alerts: list[Alert]) -> None:
    now = datetime.now(UTC)
    writer = PostgresLogDb(dsn, max_size=1)
    await writer.insert_requests([*rows(ORG, now), *rows(OTHER, now)])
    await writer.aclose()
    queries = PostgresQueries(dsn)
    store = QueryAlertStore(queries)
    for alert in alerts:
        await store.create(alert)
    await queries.aclose()


def _alert(org_id: str, threshold: float, *channels: SlackChannel | EmailChannel, metric: str = "error_rate") -> Alert:
    made = datetime.now(UTC) - timedelta(hours=1)
    return Alert(
        id=str(uuid.uuid4()),
        org_id=org_id,
        created_at=made,
        updated_at=made,
        name=f"errors of {org_id}",
        query=AlertQuery(metric=metric, window_minutes=15, group_by="model"),  # type: ignore[arg-type]
        threshold=threshold,
        channels=channels,
    )


def _drain(sqs: object, queue_url: str) -> list[SlackMessage | EmailMessage]:
    got: list[SlackMessage | EmailMessage] = []
    while True:
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)  # type: ignore[attr-defined]
        messages = answer.get("Messages", [])
        if not messages:
            return got
        for message in messages:
            decoded = decode(message["Body"])
            assert isinstance(decoded, SlackMessage | EmailMessage)
            got.append(decoded)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])  # type: ignore[attr-defined]


def test_a_scheduled_invocation_migrates_evaluates_and_queues_the_notifications(
    pg_dsn_sync: str, aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=aws_endpoint)
    queue_url = sqs.create_queue(QueueName=f"outbox-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    for name, value in {
        "HELIPORT_DATABASE_URL": pg_dsn_sync,
        "HELIPORT_OUTBOX_QUEUE_URL": queue_url,
        "HELIPORT_AWS_ENDPOINT_URL": aws_endpoint,
        "HELIPORT_AWS_REGION": REGION,
        "HELIPORT_PUBLIC_URL": "https://heliport.example/",
    }.items():
        monkeypatch.setenv(name, value)

    module = load_entry("alerts")
    # The first invocation of an environment migrates an empty database; there is nothing to evaluate.
    assert module.handler(SCHEDULE_EVENT, None) == {"evaluated": 0, "failed": 0, "transitions": 0}

    slack_url = "https://hooks.slack.com/services/T000/B000/XXXXabcd"
    # Model a: 1 error in 3 (33 %); model b: 2 in 5 (40 %); c: none. Over 35 %: b only.
    mine = _alert(ORG, 35, SlackChannel(slack_url), EmailChannel("ops@example.com"))
    # The other organisation has 5 rows of model b: its alert at 6 would fire only if it saw ORG's rows.
    theirs = _alert(OTHER, 6, SlackChannel(slack_url), metric="count")
    asyncio.run(_seed(pg_dsn_sync, [mine, theirs]))

    assert module.handler(SCHEDULE_EVENT, None) == {"evaluated": 2, "failed": 0, "transitions": 1}
    queued = _drain(sqs, queue_url)
    assert sorted(type(m).__name__ for m in queued) == ["EmailMessage", "SlackMessage"]
    assert {(m.org_id, m.alert_id) for m in queued} == {(ORG, mine.id)}
    slack = next(m for m in queued if isinstance(m, SlackMessage))
    assert slack.url == slack_url and "model = b" in slack.payload
    assert "https://heliport.example/dashboard/#/requests?" in slack.payload
    email = next(m for m in queued if isinstance(m, EmailMessage))
    assert email.to == ("ops@example.com",) and "40.00%" in email.text

    # A minute later the group is still over: nothing more is queued.
    assert module.handler(SCHEDULE_EVENT, None) == {"evaluated": 2, "failed": 0, "transitions": 0}
    assert _drain(sqs, queue_url) == []


def test_with_no_organisation_in_the_alert_index_aurora_is_not_touched(
    pg_dsn_sync: str, aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deployed evaluator reads the alert index first: empty, it returns without a connection (here
    the database cannot even be reached), so an idle Aurora stays paused; once an organisation is marked,
    the same environment evaluates over the database."""
    from heliport.alerts.index import DynamoAlertIndex
    from heliport.store.aws import create_table
    from heliport.store.logdb_postgres import DatabaseUnavailableError

    table = f"heliport-{uuid.uuid4().hex[:12]}"
    asyncio.run(create_table(table, region=REGION, endpoint_url=aws_endpoint))
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=aws_endpoint)
    queue_url = sqs.create_queue(QueueName=f"outbox-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    for name, value in {
        "HELIPORT_DATABASE_URL": "postgresql://postgres@127.0.0.1:9/nowhere",  # nothing listens on port 9
        "HELIPORT_TABLE": table,
        "HELIPORT_OUTBOX_QUEUE_URL": queue_url,
        "HELIPORT_AWS_ENDPOINT_URL": aws_endpoint,
        "HELIPORT_AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    module = load_entry("alerts")
    assert module.handler(SCHEDULE_EVENT, None) == {"evaluated": 0, "failed": 0, "transitions": 0}

    async def mark() -> None:
        index = DynamoAlertIndex(table, region=REGION, endpoint_url=aws_endpoint)
        await index.mark(ORG)
        await index.aclose()

    asyncio.run(mark())
    with pytest.raises(DatabaseUnavailableError):  # now it goes to the database, which is not there
        module.handler(SCHEDULE_EVENT, None)
