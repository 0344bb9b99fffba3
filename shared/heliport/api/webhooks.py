"""``/v1/webhooks``: Helicone's Webhooks API over the webhook store (``heliport.webhooks``).

Create, list and delete, as Helicone's reference has them (``seeds/docs/rest__webhooks__*.md``), in
the API's ``{data, error}`` envelope, plus heliport's own: the dead letters of a webhook, and the
signed link a delivery's ``request_response_url`` points at. Every handler works in the calling key's
organisation only (the store names it in every statement; row-level security on PostgreSQL), so
another organisation's webhook is indistinguishable from a missing one (404).

The destination is checked when the webhook is made, by the same rules deliveries apply
(``webhooks.delivery.checked_destination``): a refused one is a 400 naming ``destination``. The
trusted origins are the deployment's (``HELIPORT_TRUSTED_ORIGINS``), given to the API as the
consumer gets them.

The store is the API's ``webhook_store`` (``webhooks.factory.open_webhook_store``: DynamoDB in AWS,
where the delivery function records outcomes; the SQL store over the API's own reader of the log
database for ``heliport serve``).

``POST /v1/webhooks/{webhookId}/test`` sends one signed sample body (a made-up request whose id starts
with ``test-``) to the destination now, one attempt of at most :data:`TEST_TIMEOUT` seconds, and
answers how it went; it is not counted in the delivery log. Where the API cannot reach the internet
(AWS: the query API runs in the VPC, which has no NAT gateway), the context offers an ``outbox`` and the
sample goes through it instead, sent by the delivery function: the answer then says ``queued`` and the
outcome shows in the webhook's delivery log.
"""

from __future__ import annotations

import hmac
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import msgspec
from pydantic import BaseModel
from starlette.responses import JSONResponse, Response

from heliport.api import requests
from heliport.api import schemas as s
from heliport.api.bodies import BodyLinks
from heliport.api.database import QueryDb
from heliport.api.dialect import Params, js_iso
from heliport.api.endpoint import Call
from heliport.config import Settings
from heliport.errors import RouteNotFoundError
from heliport.outbox import FinalDelivery, Outbox, RetryableDelivery, WebhookDelivery
from heliport.webhooks import VERSION, PropertyFilter, Webhook, WebhookConfig, WebhookStore
from heliport.webhooks.delivery import Metadata, Payload, WebhookPoster, checked_destination
from heliport.webhooks.signing import link_signature, new_hmac_key, sign

__all__ = [
    "TEST_TIMEOUT",
    "WebhookContext",
    "WebhookTestResult",
    "bodies",
    "create",
    "dead_letters",
    "delete",
    "listed",
    "test_delivery",
]

#: Seconds the test route waits for the receiver: below API Gateway's 29 s limit on an answer.
TEST_TIMEOUT: Final = 20.0

_encoder = msgspec.json.Encoder()


class WebhookContext(Protocol):
    """What these handlers use of the API: the webhook store, the log database and (for the signed link)
    the body reader, and the outbox test sends go through where the API cannot reach the internet."""

    @property
    def db(self) -> QueryDb: ...

    @property
    def webhook_store(self) -> WebhookStore: ...

    @property
    def outbox(self) -> Outbox | None: ...

    @property
    def links(self) -> BodyLinks: ...

    @property
    def trusted_origins(self) -> frozenset[str]: ...


class WebhookTestResult(BaseModel):
    """How the test delivery went: ``ok`` on a 2xx; ``status`` the receiver's (null when no answer came);
    ``queued`` when it was handed to the delivery function instead (its outcome then in the delivery log)."""

    ok: bool
    status: int | None
    error: str | None
    queued: bool = False


def _store(ctx: WebhookContext) -> WebhookStore:
    return ctx.webhook_store


def _answer(webhook: Webhook) -> dict[str, Any]:
    log = webhook.log
    return {
        "id": webhook.id,
        "created_at": js_iso(webhook.created_at),
        "destination": webhook.destination,
        "version": webhook.version,
        "config": _encoder.encode(webhook.config).decode(),
        "hmac_key": webhook.hmac_key,
        "includeData": webhook.include_data,
        "delivery": {
            "delivered": log.delivered,
            "failed": log.failed,
            "last_status": log.last_status,
            "last_error": log.last_error,
            "last_attempt_at": None if log.last_attempt_at is None else js_iso(log.last_attempt_at),
        },
    }


async def create(ctx: WebhookContext, call: Call) -> dict[str, Any]:
    body = call.parsed(s.WebhookCreateBody)
    from heliport.proxy.targets import TargetResolver

    # Raises TargetRefusedError, a 400 naming `destination`, for what a delivery would refuse.
    checked_destination(TargetResolver(Settings(trusted_origins=ctx.trusted_origins)), body.destination)
    webhook = Webhook(
        id=str(uuid.uuid4()),
        org_id=call.org_id,
        created_at=datetime.now(UTC),
        destination=body.destination.strip(),
        version=VERSION,
        config=WebhookConfig(
            sample_rate=float(body.config.sampleRate),
            property_filters=tuple(PropertyFilter(f.key.lower(), f.value) for f in body.config.propertyFilters),
        ),
        include_data=body.includeData,
        hmac_key=new_hmac_key(),
        base_url=str(call.request.base_url).rstrip("/"),
    )
    await _store(ctx).create(webhook)
    return _answer(webhook)


async def listed(ctx: WebhookContext, call: Call) -> list[dict[str, Any]]:
    return [_answer(w) for w in await _store(ctx).list(call.org_id)]


async def delete(ctx: WebhookContext, call: Call) -> None:
    webhook_id = call.path("webhookId")
    if not await _store(ctx).delete(call.org_id, webhook_id):
        raise RouteNotFoundError(f"No webhook {webhook_id} in this organisation.")


async def dead_letters(ctx: WebhookContext, call: Call) -> list[dict[str, Any]]:
    webhook_id = call.path("webhookId")
    store = _store(ctx)
    if await store.get(call.org_id, webhook_id) is None:
        raise RouteNotFoundError(f"No webhook {webhook_id} in this organisation.")
    return [
        {
            "id": letter.id,
            "webhook_id": letter.webhook_id,
            "request_id": letter.request_id,
            "failed_at": js_iso(letter.failed_at),
            "attempts": letter.attempts,
            "status": letter.status,
            "error": letter.error,
            "payload": letter.payload.decode("utf-8", "replace"),
        }
        for letter in await store.list_dead_letters(call.org_id, webhook_id)
    ]


def sample_body(webhook: Webhook) -> bytes:
    """A made-up delivery body, shaped as a real one for this webhook (``includeData`` fields too)."""
    payload = Payload(
        request_id=f"test-{uuid.uuid4()}",
        request_body='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"This is a heliport test."}]}',
        response_body='{"choices":[{"message":{"role":"assistant","content":"Test received."}}]}',
    )
    if webhook.include_data:
        payload.request_response_url = None  # no stored request behind a test
        payload.model = "gpt-4o-mini"
        payload.provider = "OPENAI"
        payload.metadata = Metadata(cost=0.0, prompt_tokens=12, completion_tokens=3, total_tokens=15, latency_ms=0.0)
    return _encoder.encode(payload)


async def test_delivery(ctx: WebhookContext, call: Call) -> dict[str, Any]:
    """A :class:`WebhookTestResult` (documented as the route's ``data``)."""
    webhook_id = call.path("webhookId")
    webhook = await _store(ctx).get(call.org_id, webhook_id)
    if webhook is None:
        raise RouteNotFoundError(f"No webhook {webhook_id} in this organisation.")
    body = sample_body(webhook)
    signature = sign(webhook.hmac_key, body)
    outbox = ctx.outbox
    if outbox is not None:
        request_id = msgspec.json.decode(body)["request_id"]
        await outbox.put(
            [
                WebhookDelivery(
                    org_id=webhook.org_id,
                    webhook_id=webhook.id,
                    request_id=request_id,
                    destination=webhook.destination,
                    signature=signature,
                    body=body.decode(),
                )
            ]
        )
        return WebhookTestResult(ok=True, status=None, error=None, queued=True).model_dump()
    poster = WebhookPoster(Settings(trusted_origins=ctx.trusted_origins), attempt_timeout=TEST_TIMEOUT)
    try:
        status = await poster.post(webhook.destination, body, signature)
    except (RetryableDelivery, FinalDelivery) as exc:
        return WebhookTestResult(ok=False, status=exc.status, error=str(exc)).model_dump()
    finally:
        await poster.aclose()
    return WebhookTestResult(ok=True, status=status, error=None).model_dump()


async def bodies(ctx: WebhookContext, call: Call) -> Response:
    """A delivery's ``request_response_url``: the full bodies, no key needed, until the link expires.

    The link is signed with the webhook's own key (``webhooks.signing.link_signature``); a forged,
    expired or altered link, a deleted webhook or an unknown request is the same 404, revealing nothing.
    """
    query = call.request.query_params
    org_id, webhook_id, request_id = query.get("org", ""), call.path("webhookId"), call.path("requestId")
    missing = RouteNotFoundError("This body URL is invalid or has expired.")
    try:
        expires = int(query.get("expires", ""))
    except ValueError:
        raise missing from None
    if not org_id or expires < time.time():
        raise missing
    webhook = await _store(ctx).get(org_id, webhook_id)
    if webhook is None:
        raise missing
    expected = link_signature(webhook.hmac_key, org_id, webhook_id, request_id, expires)
    if not hmac.compare_digest(expected.encode(), query.get("signature", "").encode("utf-8", "replace")):
        raise missing
    try:
        key = requests.parse_request_id(request_id)
    except RouteNotFoundError:
        raise missing from None
    params = Params(ctx.db.dialect)
    found = await ctx.db.rows(org_id, requests.one_sql(org_id, params, key), params.values)
    if not found:
        raise missing
    request_body, response_body = await ctx.links.read(found[0])
    return JSONResponse({"request": request_body, "response": response_body})
