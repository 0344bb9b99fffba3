"""Sending one alert notification: Slack incoming webhooks and e-mail.

:func:`send_notification` is what every sender calls (the local outbox, the API's test route, and in
AWS the delivery function that drains the outbox queue). It raises
:class:`~heliport.outbox.RetryableDelivery` for an outcome worth another attempt and
:class:`~heliport.outbox.FinalDelivery` for one that is not.

* **Slack**: the payload is POSTed to the incoming-webhook URL through heliport's upstream transport,
  under the rules of every caller-chosen URL (``TargetResolver.checked_callback``: https on the
  default port, no credentials, a public address, names checked again at connect time by the guarded
  resolver; origins in ``HELIPORT_TRUSTED_ORIGINS`` skip them). The URL is a credential: errors and logs
  name it masked (:func:`mask_url`).
* **E-mail**: with ``HELIPORT_SMTP_URL`` set (``heliport serve``), through that SMTP server; otherwise,
  when ``HELIPORT_ALERT_EMAIL_FROM`` is set and an AWS region is known, Amazon SES v2 ``SendEmail``
  (aioboto3, imported on first use). SMTP uses the standard library's ``smtplib`` in a worker thread:
  it is the local path only, a handful of messages a minute, and needs no dependency in the Lambda
  bundles (STARTTLS when the server offers it, or ``smtps://`` for TLS from the start).
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from email.message import EmailMessage as MimeMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote, urlsplit

from heliport.config import Settings, Timeouts
from heliport.errors import TargetRefusedError, UpstreamError
from heliport.outbox import EmailMessage, FinalDelivery, RetryableDelivery, SlackMessage

if TYPE_CHECKING:
    from heliport.proxy.transport import UpstreamTransport

__all__ = ["SEND_TIMEOUT", "email_configured", "mask_url", "send_notification"]

logger = logging.getLogger("heliport.alerts")

#: Seconds one attempt may take, Slack or e-mail.
SEND_TIMEOUT: Final = 30.0
#: SMTP reply codes worth another attempt (4xx: transient) are told from the rest by their first digit.
_SMTP_DEFAULT_PORTS: Final = {"smtp": 25, "smtps": 465}


def mask_url(url: str) -> str:
    """A Slack URL as it may be shown: the origin, then only the last 4 characters
    (``https://hooks.slack.com/****abcd``)."""
    try:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.hostname}" if parts.scheme and parts.hostname else ""
    except ValueError:
        origin = ""
    return f"{origin}/****{url[-4:]}"


def email_configured(settings: Settings) -> bool:
    return settings.smtp_url is not None or (settings.alert_email_from is not None and _aws(settings))


def _aws(settings: Settings) -> bool:
    return settings.aws_region is not None or settings.table_name is not None


async def send_notification(
    message: SlackMessage | EmailMessage, settings: Settings, transport: UpstreamTransport | None = None
) -> None:
    """Send ``message`` once. ``transport`` (heliport's upstream transport) is used for Slack; one is
    made for this call and closed after it when none is given."""
    if isinstance(message, SlackMessage):
        await _send_slack(message, settings, transport)
    elif settings.smtp_url is not None:
        await _send_smtp(message, settings, settings.smtp_url)
    elif settings.alert_email_from is not None and _aws(settings):
        await _send_ses(message, settings, settings.alert_email_from)
    else:
        raise FinalDelivery(
            "e-mail is not configured: set HELIPORT_SMTP_URL (locally) or HELIPORT_ALERT_EMAIL_FROM (Amazon SES)"
        )


# --- Slack -----------------------------------------------------------------------------------------------


async def _send_slack(message: SlackMessage, settings: Settings, transport: UpstreamTransport | None) -> None:
    from heliport.proxy.targets import TargetResolver
    from heliport.proxy.transport import AiohttpTransport, UpstreamRequest

    shown = mask_url(message.url)
    try:
        url, guarded = TargetResolver(settings).checked_callback(message.url, "url")
    except TargetRefusedError as exc:
        raise FinalDelivery(f"Slack URL {shown} refused: {exc}") from None
    own = transport is None
    upstream = transport or AiohttpTransport(
        Timeouts(connect=min(settings.timeouts.connect, SEND_TIMEOUT), read=SEND_TIMEOUT)
    )
    request = UpstreamRequest(
        method="POST",
        url=url,
        headers=(("content-type", "application/json"), ("user-agent", "heliport-alerts")),
        body=message.payload.encode(),
        guarded=guarded,
    )
    try:
        async with asyncio.timeout(SEND_TIMEOUT):
            response = await upstream.send(request)
            try:
                async for _ in response.chunks():  # Slack answers "ok" or an error word; not kept
                    pass
            finally:
                response.close()
    except TargetRefusedError as exc:  # the guarded resolver found a non-public address
        raise FinalDelivery(f"Slack URL {shown} refused: {exc}") from None
    except TimeoutError:
        raise RetryableDelivery(f"Slack ({shown}) did not answer within {SEND_TIMEOUT:g} s") from None
    except UpstreamError as exc:
        raise RetryableDelivery(f"Slack ({shown}) unreachable: {exc}") from None
    finally:
        if own:
            await upstream.aclose()
    status = response.status
    if 200 <= status < 300:
        return
    if status >= 500 or status == 429:
        raise RetryableDelivery(f"Slack ({shown}) answered {status}", status)
    raise FinalDelivery(f"Slack ({shown}) answered {status}", status)


# --- e-mail ----------------------------------------------------------------------------------------------


def _mime(message: EmailMessage, sender: str) -> MimeMessage:
    mime = MimeMessage()
    mime["From"] = sender
    mime["To"] = ", ".join(message.to)
    mime["Subject"] = message.subject
    mime["Date"] = formatdate(localtime=False)
    mime["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    mime.set_content(message.text)
    if message.html is not None:
        mime.add_alternative(message.html, subtype="html")
    return mime


def _smtp_send(url: str, mime: MimeMessage) -> None:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _SMTP_DEFAULT_PORTS or not parts.hostname:
        raise FinalDelivery("HELIPORT_SMTP_URL must be smtp://host[:port] or smtps://host[:port]")
    port = parts.port or _SMTP_DEFAULT_PORTS[scheme]
    context = ssl.create_default_context()
    client: smtplib.SMTP = (
        smtplib.SMTP_SSL(parts.hostname, port, timeout=SEND_TIMEOUT, context=context)
        if scheme == "smtps"
        else smtplib.SMTP(parts.hostname, port, timeout=SEND_TIMEOUT)
    )
    with client:
        client.ehlo()
        if scheme == "smtp" and client.has_extn("starttls"):
            client.starttls(context=context)
            client.ehlo()
        if parts.username:
            client.login(unquote(parts.username), unquote(parts.password or ""))
        client.send_message(mime)


async def _send_smtp(message: EmailMessage, settings: Settings, url: str) -> None:
    sender = settings.alert_email_from or "heliport@localhost"
    try:
        await asyncio.to_thread(_smtp_send, url, _mime(message, sender))
    except FinalDelivery:
        raise
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        text = f"the SMTP server refused the recipients ({', '.join(map(str, codes))})"
        if all(400 <= code < 500 for code in codes):
            raise RetryableDelivery(text) from None
        raise FinalDelivery(text) from None
    except smtplib.SMTPAuthenticationError as exc:
        raise FinalDelivery(f"the SMTP server refused the login ({exc.smtp_code})") from None
    except smtplib.SMTPResponseException as exc:
        text = f"the SMTP server answered {exc.smtp_code}"
        if 400 <= exc.smtp_code < 500:
            raise RetryableDelivery(text, exc.smtp_code) from None
        raise FinalDelivery(text, exc.smtp_code) from None
    except (smtplib.SMTPException, OSError) as exc:  # connection refused, reset, timed out, TLS failure
        raise RetryableDelivery(f"the SMTP server could not be reached: {type(exc).__name__}: {exc}") from None


async def _send_ses(message: EmailMessage, settings: Settings, sender: str) -> None:
    import aioboto3
    from botocore.exceptions import BotoCoreError, ClientError

    from heliport.store.aws import retryable_error

    body: dict[str, object] = {"Text": {"Data": message.text, "Charset": "UTF-8"}}
    if message.html is not None:
        body["Html"] = {"Data": message.html, "Charset": "UTF-8"}
    session = aioboto3.Session()
    try:
        async with session.client(
            "sesv2", region_name=settings.aws_region, endpoint_url=settings.aws_endpoint_url
        ) as ses:
            await ses.send_email(
                FromEmailAddress=sender,
                Destination={"ToAddresses": list(message.to)},
                Content={"Simple": {"Subject": {"Data": message.subject, "Charset": "UTF-8"}, "Body": body}},
            )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        text = f"Amazon SES refused the message: {code}"
        if retryable_error(exc) or code in ("TooManyRequestsException", "LimitExceededException"):
            raise RetryableDelivery(text, status) from None
        raise FinalDelivery(text, status) from None
    except BotoCoreError as exc:  # no connection, timed out
        raise RetryableDelivery(f"Amazon SES could not be reached: {type(exc).__name__}") from None
