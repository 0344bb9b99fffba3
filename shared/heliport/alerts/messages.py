"""What an alert notification says, for Slack (text + Block Kit blocks) and e-mail (subject, text, html).

Both carry the same facts: the alert's name, the metric and its aggregation, the value against the
threshold, the group, the window, whether it triggered or resolved, and a link to the matching
requests in the dashboard. Text from the organisation (the alert's name, a group's value) is escaped
for each medium (Slack's ``&``, ``<``, ``>``; HTML's entities), so it cannot become markup or a link.

The link is ``<public url>/dashboard/#/requests?...`` with the window (``from``, ``to``, ISO instants),
the group as the requests page's own filter fields (``model``, ``provider``, ``user``, or ``propKey`` and
``propValue``) and ``alert`` (the alert's id, whose filter the page can load); the alert's filter, when
it has one, is also spelled out in the message. Without a public URL (``HELIPORT_PUBLIC_URL``) the link
points at the local server's own address.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import urlencode

from heliport.alerts import AGGREGATED_METRICS, Alert, Channel, EmailChannel, SlackChannel
from heliport.api.dialect import js_iso
from heliport.config import Settings
from heliport.outbox import EmailMessage, SlackMessage

__all__ = ["Notice", "messages_for", "public_base", "requests_url", "shown_value"]

_METRIC_NAMES = {
    "error_rate": "Error rate",
    "cost": "Cost",
    "latency": "Latency",
    "total_tokens": "Total tokens",
    "prompt_tokens": "Prompt tokens",
    "completion_tokens": "Completion tokens",
    "prompt_cache_read_tokens": "Prompt cache read tokens",
    "prompt_cache_write_tokens": "Prompt cache write tokens",
    "count": "Request count",
}
_GROUP_FIELDS = {"user": "user", "model": "model", "provider": "provider"}


@dataclass(frozen=True, slots=True)
class Notice:
    """One thing to tell the alert's channels."""

    alert: Alert
    state: Literal["triggered", "resolved", "test"]
    group: str | None
    value: float | None
    requests: int
    start: datetime
    end: datetime
    url: str


def public_base(settings: Settings) -> str:
    return settings.public_url or f"http://{settings.host}:{settings.port}"


def requests_url(settings: Settings, alert: Alert, group: str | None, start: datetime, end: datetime) -> str:
    """The dashboard's requests page, narrowed to the window and the group (see the module docstring)."""
    query: dict[str, str] = {"from": js_iso(start), "to": js_iso(end)}
    grouping = alert.query.group_by
    if grouping is not None and group is not None:
        if grouping.startswith("property:"):
            query["propKey"] = grouping[len("property:") :]
            query["propValue"] = group
        else:
            query[_GROUP_FIELDS[grouping]] = group
    query["alert"] = alert.id
    return f"{public_base(settings)}/dashboard/#/requests?{urlencode(query)}"


def metric_label(alert: Alert) -> str:
    q = alert.query
    name = _METRIC_NAMES[q.metric]
    if q.metric in AGGREGATED_METRICS:
        return f"{name} ({q.aggregation})"
    return name


def shown_value(metric: str, value: float | None) -> str:
    if value is None:
        return "no value"
    if metric == "error_rate":
        return f"{value:.2f}%"
    if metric == "cost":
        return f"${value:,.4f}"
    number = f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"
    return f"{number} ms" if metric == "latency" else number


def window_text(minutes: int) -> str:
    if minutes % 1440 == 0:
        n, unit = minutes // 1440, "day"
    elif minutes % 60 == 0:
        n, unit = minutes // 60, "hour"
    else:
        n, unit = minutes, "minute"
    return f"{n} {unit}{'s' if n != 1 else ''}"


def _group_text(alert: Alert, group: str | None) -> str | None:
    grouping = alert.query.group_by
    if grouping is None or group is None:
        return None
    label = grouping[len("property:") :] if grouping.startswith("property:") else grouping
    return f"{label} = {group}"


def _headline(notice: Notice) -> str:
    verb = {"triggered": "Triggered", "resolved": "Resolved", "test": "Test notification"}[notice.state]
    return f"{verb}: {notice.alert.name}"


def _facts(notice: Notice) -> list[tuple[str, str]]:
    alert = notice.alert
    metric = alert.query.metric
    facts = [
        ("Metric", metric_label(alert)),
        ("Value", f"{shown_value(metric, notice.value)} (threshold {shown_value(metric, alert.threshold)})"),
        ("Window", f"last {window_text(alert.query.window_minutes)} ({notice.requests} requests)"),
    ]
    group = _group_text(alert, notice.group)
    if group is not None:
        facts.append(("Group", group))
    if alert.query.filter not in ("all", {}):
        # The requests page cannot yet take a filter AST from its link: the filter is spelled out here.
        shown = json.dumps(alert.query.filter, ensure_ascii=False, separators=(",", ":"))
        facts.append(("Filter", shown if len(shown) <= 300 else shown[:297] + "..."))
    facts.append(("State", notice.state))
    return facts


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(notice: Notice) -> str:
    headline = _headline(notice)
    facts = _facts(notice)
    lines = [f"*{_slack_escape(name)}:* {_slack_escape(value)}" for name, value in facts]
    blocks: list[dict[str, object]] = [
        {"type": "header", "text": {"type": "plain_text", "text": headline[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"<{_slack_escape(notice.url)}|View the matching requests>"},
        },
    ]
    text = f"{headline}: " + "; ".join(f"{name} {value}" for name, value in facts)
    return json.dumps({"text": _slack_escape(text), "blocks": blocks}, ensure_ascii=False)


def email_parts(notice: Notice) -> tuple[str, str, str]:
    """(subject, text, html)."""
    headline = _headline(notice)
    facts = _facts(notice)
    text = "\n".join([headline, "", *(f"{name}: {value}" for name, value in facts), "", notice.url, ""])
    rows = "".join(
        f"<tr><th align='left'>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>" for name, value in facts
    )
    body = (
        f"<html><body><h2>{html.escape(headline)}</h2><table>{rows}</table>"
        f'<p><a href="{html.escape(notice.url, quote=True)}">View the matching requests</a></p></body></html>'
    )
    subject = f"[heliport] {headline}"
    group = _group_text(notice.alert, notice.group)
    if group is not None:
        subject += f" ({group})"
    return subject.replace("\r", " ").replace("\n", " ")[:200], text, body


def message_for(notice: Notice, channel: Channel) -> SlackMessage | EmailMessage:
    alert = notice.alert
    if isinstance(channel, SlackChannel):
        return SlackMessage(org_id=alert.org_id, alert_id=alert.id, url=channel.url, payload=slack_payload(notice))
    assert isinstance(channel, EmailChannel)
    subject, text, body = email_parts(notice)
    return EmailMessage(
        org_id=alert.org_id, alert_id=alert.id, to=(channel.address,), subject=subject, text=text, html=body
    )


def messages_for(notice: Notice) -> list[SlackMessage | EmailMessage]:
    """One message per channel of the notice's alert."""
    return [message_for(notice, channel) for channel in notice.alert.channels]
