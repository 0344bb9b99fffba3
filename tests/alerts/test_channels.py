"""Sending notifications: Slack to a stand-in receiver, e-mail through a real SMTP server and through
Amazon SES (moto's server), and the local outbox's retries. Only the outside is stood in for."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from heliport.alerts import Alert, AlertQuery, EmailChannel, SlackChannel
from heliport.alerts.channels import mask_url, send_notification
from heliport.alerts.messages import Notice, message_for, messages_for
from heliport.alerts.outbox import DirectOutbox
from heliport.config import Settings
from heliport.outbox import EmailMessage, FinalDelivery, RetryableDelivery, SlackMessage
from tests.alerts.smtp import SmtpServer
from tests.aws import REGION
from tests.faults import closed_port
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.anyio

NAME = "Errors <b>& friends</b>"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


def _notice(*channels: SlackChannel | EmailChannel, state: str = "triggered") -> Notice:
    now = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
    alert = Alert(
        id=str(uuid.uuid4()),
        org_id="org-1",
        created_at=now,
        updated_at=now,
        name=NAME,
        query=AlertQuery(metric="error_rate", window_minutes=30, group_by="model"),
        threshold=5.0,
        channels=channels,
    )
    url = "https://heliport.example/dashboard/#/requests?model=gpt-4o"
    return Notice(alert, state, "gpt-4o", 12.5, 40, now - timedelta(minutes=30), now, url)  # type: ignore[arg-type]


def _settings(tmp_path: Path, slack: Receiver | None = None, **more: object) -> Settings:
    trusted = frozenset({slack.url}) if slack is not None else frozenset()
    return Settings(data_dir=tmp_path, trusted_origins=trusted, **more)  # type: ignore[arg-type]


async def test_slack_gets_text_and_blocks_with_every_fact_escaped(tmp_path: Path, slack: Receiver) -> None:
    notice = _notice(SlackChannel(slack.url + "/services/T1/B1/secret1234"))
    (message,) = messages_for(notice)
    assert isinstance(message, SlackMessage)
    await send_notification(message, _settings(tmp_path, slack))
    (delivery,) = slack.received("/services/T1/B1/secret1234")
    assert delivery.headers["content-type"] == "application/json"
    body = delivery.body
    assert body["text"].startswith("Triggered: Errors &lt;b&gt;&amp; friends&lt;/b&gt;")
    blocks = json.dumps(body["blocks"])
    for fact in ("Error rate", "12.50%", "threshold 5.00%", "last 30 minutes", "40 requests", "model = gpt-4o"):
        assert fact in blocks, fact
    assert "<https://heliport.example/dashboard/#/requests?model=gpt-4o|View the matching requests>" in blocks
    # mrkdwn is escaped; the header is plain_text, which Slack never reads as markup.
    assert body["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": f"Triggered: {NAME}"}}
    assert "<b>" not in json.dumps([body["text"], body["blocks"][1:]])


async def test_slack_answers_decide_retry_or_not(tmp_path: Path, slack: Receiver) -> None:
    settings = _settings(tmp_path, slack)
    slack.script("/down", [503])
    slack.script("/gone", [404])
    with pytest.raises(RetryableDelivery) as retry:
        await send_notification(message_for(_notice(), SlackChannel(slack.url + "/down")), settings)
    assert retry.value.status == 503
    with pytest.raises(FinalDelivery) as final:
        await send_notification(message_for(_notice(), SlackChannel(slack.url + "/gone")), settings)
    assert final.value.status == 404
    # Nothing listening: worth another attempt.
    closed = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(RetryableDelivery):
        await send_notification(
            message_for(_notice(), SlackChannel(closed + "/x")),
            Settings(data_dir=tmp_path, trusted_origins=frozenset({closed})),
        )


@pytest.mark.parametrize(
    "url",
    ["http://hooks.slack.com/services/T/B/abcd", "https://127.0.0.1/services/x", "https://10.1.2.3/hook"],
)
async def test_a_slack_url_the_address_rules_refuse_is_final_and_never_shown_whole(tmp_path: Path, url: str) -> None:
    with pytest.raises(FinalDelivery) as refused:
        await send_notification(message_for(_notice(), SlackChannel(url)), _settings(tmp_path))
    assert url not in str(refused.value) and mask_url(url) in str(refused.value)


def test_a_slack_url_is_masked_to_its_last_four_characters() -> None:
    assert mask_url("https://hooks.slack.com/services/T0/B0/XXXXabcd") == "https://hooks.slack.com/****abcd"


async def test_email_through_a_real_smtp_server(tmp_path: Path, smtp: SmtpServer) -> None:
    notice = _notice(EmailChannel("ops@example.com"), state="resolved")
    (message,) = messages_for(notice)
    assert isinstance(message, EmailMessage)
    await send_notification(message, _settings(tmp_path, smtp_url=smtp.url, alert_email_from="alerts@heliport.test"))
    ((sender, recipients, mail),) = smtp.messages()
    assert sender == "alerts@heliport.test" and recipients == ["ops@example.com"]
    assert mail["Subject"] == f"[heliport] Resolved: {NAME} (model = gpt-4o)"
    text = mail.get_body("plain")
    html = mail.get_body("html")
    assert text is not None and html is not None
    assert "Value: 12.50% (threshold 5.00%)" in text.get_content()
    assert "https://heliport.example/dashboard/#/requests?model=gpt-4o" in text.get_content()
    content = html.get_content()
    assert "Errors &lt;b&gt;&amp; friends&lt;/b&gt;" in content and "<b>&" not in content


async def test_smtp_refusals_are_final_or_retryable_by_their_code(tmp_path: Path, smtp: SmtpServer) -> None:
    settings = _settings(tmp_path, smtp_url=smtp.url)
    with pytest.raises(FinalDelivery, match="550"):
        await send_notification(message_for(_notice(), EmailChannel("refused@example.com")), settings)
    with pytest.raises(RetryableDelivery, match="451"):
        await send_notification(message_for(_notice(), EmailChannel("busy@example.com")), settings)
    unreachable = _settings(tmp_path, smtp_url=f"smtp://127.0.0.1:{closed_port()}")
    with pytest.raises(RetryableDelivery, match="could not be reached"):
        await send_notification(message_for(_notice(), EmailChannel("ops@example.com")), unreachable)
    assert smtp.messages() == []


async def test_email_without_smtp_or_ses_is_final(tmp_path: Path) -> None:
    with pytest.raises(FinalDelivery, match="not configured"):
        await send_notification(message_for(_notice(), EmailChannel("ops@example.com")), _settings(tmp_path))


async def test_email_through_amazon_ses(tmp_path: Path, aws_endpoint: str) -> None:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    sender = f"alerts-{uuid.uuid4().hex[:8]}@heliport.example"
    settings = _settings(tmp_path, alert_email_from=sender, aws_region=REGION, aws_endpoint_url=aws_endpoint)
    message = message_for(_notice(), EmailChannel("ops@example.com"))
    # SES refuses a sender that is not a verified identity: final.
    with pytest.raises(FinalDelivery, match="MessageRejected"):
        await send_notification(message, settings)
    boto3.client("ses", region_name=REGION, endpoint_url=aws_endpoint).verify_email_identity(EmailAddress=sender)
    await send_notification(message, settings)
    sent = [m for m in ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages if m.source == sender]
    assert len(sent) == 1
    assert sent[0].destinations["ToAddresses"] == ["ops@example.com"]
    assert sent[0].subject == f"[heliport] Triggered: {NAME} (model = gpt-4o)"
    assert "View the matching requests" in sent[0].body


async def test_the_local_outbox_retries_then_delivers_once(tmp_path: Path, slack: Receiver, smtp: SmtpServer) -> None:
    slack.script("/flaky", [500, 429, 200])
    slack.script("/dead", [404])
    settings = _settings(tmp_path, slack, smtp_url=smtp.url)
    outbox = DirectOutbox(settings, backoff=0.01, attempts=3)
    notice = _notice(
        SlackChannel(slack.url + "/flaky"), SlackChannel(slack.url + "/dead"), EmailChannel("ops@example.com")
    )
    await outbox.put(messages_for(notice))
    await outbox.aclose()
    assert [d.status for d in slack.received("/flaky")] == [500, 429, 200]
    assert [d.status for d in slack.received("/dead")] == [404]  # final: not tried again
    assert len(smtp.messages()) == 1
    errors = sorted(error or "" for _, error in outbox.outcomes)
    assert errors[0] == "" and errors[1] == "" and "404" in errors[2]
