"""``/v1/alerts``: heliport's own alerts API over the alert store (``heliport.alerts``).

Helicone configures alerts in its web UI only, so the routes are heliport's (the contract the dashboard
builds on): create, list, get, patch, delete, the trigger history, a test notification to every channel,
and a preview of the metric over a window (the dashboard's form shows it live, with nothing stored).
Every handler works in the calling key's organisation only (the store names it in every statement;
row-level security on PostgreSQL), so another organisation's alert is a 404 like a missing one.

Slack URLs are credentials: answers show them masked (``alerts.channels.mask_url``), and a channel sent
back masked, unchanged, keeps the stored URL. New URLs obey the rules of every caller-chosen URL (https,
public address, or a trusted origin), checked here so a bad one is a 400 naming ``channels[i].url``.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import msgspec

from heliport.alerts import (
    AGGREGATED_METRICS,
    Alert,
    AlertQuery,
    Channel,
    EmailChannel,
    SlackChannel,
)
from heliport.alerts.channels import mask_url, send_notification
from heliport.alerts.index import AlertIndex
from heliport.alerts.messages import Notice, message_for, requests_url
from heliport.alerts.metrics import measure, statement
from heliport.alerts.store import QueryAlertStore
from heliport.api import schemas as s
from heliport.api.database import QueryDb
from heliport.api.dialect import Params, js_iso
from heliport.api.endpoint import Call
from heliport.config import Settings
from heliport.errors import RequestError, RouteNotFoundError
from heliport.outbox import FinalDelivery, Outbox, RetryableDelivery

_T = TypeVar("_T")

__all__ = ["AlertContext", "create", "delete", "get", "history", "listed", "patch", "preview", "test"]

#: Most history entries one call returns.
MAX_HISTORY = 500
#: Most groups a preview lists (the highest values first).
MAX_PREVIEW_GROUPS = 1000


class AlertContext(Protocol):
    """What these handlers use of the API: the log database and the deployment's settings."""

    @property
    def db(self) -> QueryDb: ...

    @property
    def trusted_origins(self) -> frozenset[str]: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def outbox(self) -> Outbox | None: ...

    @property
    def alert_index(self) -> AlertIndex | None: ...


def _settings(ctx: AlertContext) -> Settings:
    """The settings, with the API's own trusted origins (the ones its URL checks use)."""
    return dataclasses.replace(ctx.settings, trusted_origins=ctx.trusted_origins)


def _channel_answer(channel: Channel) -> dict[str, Any]:
    if isinstance(channel, SlackChannel):
        return {"type": "slack", "url": mask_url(channel.url)}
    return {"type": "email", "address": channel.address}


def _answer(alert: Alert) -> dict[str, Any]:
    q = alert.query
    return {
        "id": alert.id,
        "created_at": js_iso(alert.created_at),
        "updated_at": js_iso(alert.updated_at),
        "name": alert.name,
        "metric": q.metric,
        "threshold": alert.threshold,
        "windowMinutes": q.window_minutes,
        "minimumRequests": q.minimum_requests,
        "groupBy": q.group_by,
        "aggregation": q.aggregation if q.metric in AGGREGATED_METRICS else None,
        "filter": q.filter,
        "channels": [_channel_answer(c) for c in alert.channels],
        "enabled": alert.enabled,
        "state": "triggered" if alert.triggered_groups else "ok",
        "triggeredGroups": list(alert.triggered_groups),
        "lastEvaluatedAt": None if alert.last_evaluated_at is None else js_iso(alert.last_evaluated_at),
        "lastError": alert.last_error,
    }


def _checked_query(ctx: AlertContext, query: AlertQuery) -> AlertQuery:
    """``query`` once its filter compiles (a 400 naming ``filter.<path>`` otherwise)."""
    now = datetime.now(UTC)
    statement("", query, Params(ctx.db.dialect), now, now)
    return query


def _channels(
    ctx: AlertContext, bodies: list[s.SlackChannelBody | s.EmailChannelBody], stored: tuple[Channel, ...] = ()
) -> tuple[Channel, ...]:
    from heliport.proxy.targets import TargetResolver

    resolver = TargetResolver(_settings(ctx))
    kept = {mask_url(c.url): c.url for c in stored if isinstance(c, SlackChannel)}
    channels: list[Channel] = []
    for index, body in enumerate(bodies):
        if isinstance(body, s.EmailChannelBody):
            channels.append(EmailChannel(body.address))
            continue
        field = f"channels[{index}].url"
        url = body.url.strip()
        if url in kept:
            channels.append(SlackChannel(kept[url]))
            continue
        if "/****" in url:
            raise RequestError(
                f"Invalid {field}: a masked URL must be one of this alert's Slack URLs, unchanged.", param=field
            )
        # Raises TargetRefusedError, a 400 naming the field, for what sending would refuse.
        resolver.checked_callback(url, field)
        channels.append(SlackChannel(url))
    return tuple(channels)


async def _found(store: QueryAlertStore, call: Call) -> Alert:
    alert_id = call.path("alertId")
    alert = await store.get(call.org_id, alert_id)
    if alert is None:
        raise RouteNotFoundError(f"No alert {alert_id} in this organisation.")
    return alert


def _has_enabled(store: QueryAlertStore, org_id: str) -> Callable[[], Awaitable[bool]]:
    async def has_enabled() -> bool:
        return bool(await store.list(org_id, enabled_only=True))

    return has_enabled


async def _indexed(ctx: AlertContext, store: QueryAlertStore, alert: Alert, write: Awaitable[_T]) -> _T:
    """Run ``write`` (storing ``alert``) with the AWS alert index kept a superset of the truth
    (:mod:`heliport.alerts.index`): an enabled alert's organisation is marked before and after the
    write, a disabled one's unmarked after it when no enabled alert is left."""
    index = ctx.alert_index
    if index is None:
        return await write
    if alert.enabled:
        await index.mark(alert.org_id)
    done = await write
    if alert.enabled:
        await index.mark(alert.org_id)
    else:
        await index.unmark_if(alert.org_id, _has_enabled(store, alert.org_id))
    return done


async def create(ctx: AlertContext, call: Call) -> dict[str, Any]:
    body = call.parsed(s.AlertCreateBody)
    query = _checked_query(
        ctx,
        AlertQuery(
            metric=body.metric,
            window_minutes=body.windowMinutes,
            minimum_requests=body.minimumRequests,
            group_by=body.groupBy,
            aggregation=body.aggregation,
            filter=body.filter,
        ),
    )
    now = datetime.now(UTC)
    alert = Alert(
        id=str(uuid.uuid4()),
        org_id=call.org_id,
        created_at=now,
        updated_at=now,
        name=body.name,
        query=query,
        threshold=body.threshold,
        channels=_channels(ctx, list(body.channels)),
        enabled=body.enabled,
    )
    store = QueryAlertStore(ctx.db)
    await _indexed(ctx, store, alert, store.create(alert))
    return _answer(alert)


async def listed(ctx: AlertContext, call: Call) -> list[dict[str, Any]]:
    return [_answer(a) for a in await QueryAlertStore(ctx.db).list(call.org_id)]


async def get(ctx: AlertContext, call: Call) -> dict[str, Any]:
    return _answer(await _found(QueryAlertStore(ctx.db), call))


async def patch(ctx: AlertContext, call: Call) -> dict[str, Any]:
    body = call.parsed(s.AlertPatchBody)
    given = body.model_fields_set
    store = QueryAlertStore(ctx.db)
    alert = await _found(store, call)
    q = alert.query
    query = AlertQuery(
        metric=body.metric if body.metric is not None else q.metric,
        window_minutes=body.windowMinutes if body.windowMinutes is not None else q.window_minutes,
        minimum_requests=body.minimumRequests if body.minimumRequests is not None else q.minimum_requests,
        group_by=body.groupBy if "groupBy" in given else q.group_by,
        aggregation=body.aggregation if body.aggregation is not None else q.aggregation,
        filter=body.filter if body.filter is not None else q.filter,
    )
    if query != q:
        _checked_query(ctx, query)
    updated = msgspec.structs.replace(
        alert,
        name=body.name if body.name is not None else alert.name,
        query=query,
        threshold=body.threshold if body.threshold is not None else alert.threshold,
        channels=_channels(ctx, list(body.channels), alert.channels) if body.channels is not None else alert.channels,
        enabled=body.enabled if body.enabled is not None else alert.enabled,
        updated_at=datetime.now(UTC),
    )
    if not await _indexed(ctx, store, updated, store.replace(updated)):
        raise RouteNotFoundError(f"No alert {alert.id} in this organisation.")
    if query != q or updated.threshold != alert.threshold or updated.enabled != alert.enabled:
        # A new definition is judged afresh: its groups start ok, and one still over notifies again.
        await store.clear_state(call.org_id, alert.id)
    return _answer(await _found(store, call))


async def delete(ctx: AlertContext, call: Call) -> dict[str, bool]:
    alert_id = call.path("alertId")
    store = QueryAlertStore(ctx.db)
    if not await store.delete(call.org_id, alert_id):
        raise RouteNotFoundError(f"No alert {alert_id} in this organisation.")
    if ctx.alert_index is not None:
        await ctx.alert_index.unmark_if(call.org_id, _has_enabled(store, call.org_id))
    return {"deleted": True}


async def history(ctx: AlertContext, call: Call) -> list[dict[str, Any]]:
    raw = call.request.query_params.get("limit", "50")
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_HISTORY:
        raise RequestError(f"Invalid limit: must be an integer from 1 to {MAX_HISTORY}.", param="limit")
    store = QueryAlertStore(ctx.db)
    alert = await _found(store, call)
    return [
        {
            "id": entry.id,
            "alertId": entry.alert_id,
            "at": js_iso(entry.at),
            "state": entry.state,
            "group": entry.group,
            "value": entry.value,
            "threshold": entry.threshold,
            "requests": entry.requests,
            "requestsUrl": entry.requests_url,
        }
        for entry in await store.history(call.org_id, alert.id, limit=limit)
    ]


async def test(ctx: AlertContext, call: Call) -> list[dict[str, Any]]:
    """A test notification to each channel now; one result each.

    Sent from here where this process reaches the internet (``heliport serve``). In AWS the API runs in
    the VPC without a route out, so the notifications are queued for the delivery function (outside the
    VPC) instead, and each result says ``queued``: the outcome is in the delivery function's log.
    """
    alert = await _found(QueryAlertStore(ctx.db), call)
    settings = _settings(ctx)
    now = datetime.now(UTC)
    url = requests_url(settings, alert, None, now, now)
    notice = Notice(alert, "test", None, None, 0, now, now, url)
    outbox = ctx.outbox
    if outbox is not None:
        await outbox.put([message_for(notice, channel) for channel in alert.channels])
    results: list[dict[str, Any]] = []
    for channel in alert.channels:
        error: str | None = None
        if outbox is None:
            try:
                await send_notification(message_for(notice, channel), settings)
            except (RetryableDelivery, FinalDelivery) as exc:
                error = str(exc)
        slack = isinstance(channel, SlackChannel)
        results.append(
            {
                "channel": "slack" if slack else "email",
                "target": mask_url(channel.url) if isinstance(channel, SlackChannel) else channel.address,
                "ok": error is None,
                "error": error,
                "queued": outbox is not None,
            }
        )
    return results


async def preview(ctx: AlertContext, call: Call) -> dict[str, Any]:
    body = call.parsed(s.AlertPreviewBody)
    query = AlertQuery(
        metric=body.metric,
        window_minutes=body.windowMinutes,
        minimum_requests=body.minimumRequests,
        group_by=body.groupBy,
        aggregation=body.aggregation,
        filter=body.filter,
    )
    measured = await measure(ctx.db, call.org_id, query, datetime.now(UTC))
    threshold = body.threshold
    groups = sorted(measured.groups, key=lambda g: (g.value is None, -(g.value or 0.0), g.group or ""))
    return {
        "groups": [
            {
                "group": g.group,
                "value": g.value,
                "requests": g.requests,
                "over": threshold is not None and g.over(threshold, query.minimum_requests),
            }
            for g in groups[:MAX_PREVIEW_GROUPS]
        ],
        "from": js_iso(measured.start),
        "to": js_iso(measured.end),
    }
